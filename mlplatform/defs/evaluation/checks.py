import dagster as dg

from mlplatform.ml.evaluation import Evaluation


@dg.asset_check(asset="evaluation", blocking=True)
def challenger_auc_above_threshold(evaluation: Evaluation) -> dg.AssetCheckResult:
    """The lower 95% bound of the challenger's holdout AUC clears the configured minimum."""
    estimate = evaluation.challenger
    return dg.AssetCheckResult(
        passed=evaluation.clears_auc_threshold,
        severity=dg.AssetCheckSeverity.ERROR,
        description=evaluation.reason,
        metadata={
            "holdout_auc": estimate.auc,
            "ci_low": estimate.low,
            "ci_high": estimate.high,
            "min_auc": evaluation.min_auc,
            "summary": estimate.describe(),
        },
    )
