import dagster as dg

from mlplatform.ml.evaluation import Evaluation


@dg.asset_check(asset="evaluation", blocking=True)
def challenger_auc_above_threshold(evaluation: Evaluation) -> dg.AssetCheckResult:
    """The lower 95% bound of the challenger's holdout AUC clears the configured minimum."""
    estimate = evaluation.challenger
    return dg.AssetCheckResult(
        passed=evaluation.clears_auc_threshold,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"challenger v{evaluation.challenger_version} {estimate.describe()}: lower bound "
            f"{estimate.low:.3f} {'>=' if evaluation.clears_auc_threshold else 'is below'} "
            f"{evaluation.min_auc:.3f}"
        ),
        metadata={
            "holdout_auc": estimate.auc,
            "ci_low": estimate.low,
            "ci_high": estimate.high,
            "min_auc": evaluation.min_auc,
            "summary": estimate.describe(),
        },
    )


def _gate(passed: bool, problems: list[str], metadata: dict) -> dg.AssetCheckResult:
    """A blocking model-test result: ERROR severity, the problems as its description."""
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or None,
        metadata=metadata,
    )


def _report(evaluation: Evaluation):
    if evaluation.tests is None:
        raise ValueError(f"evaluation of v{evaluation.challenger_version} ran no model tests")
    return evaluation.tests


@dg.asset_check(asset="evaluation", blocking=True)
def slice_auc_above_threshold(evaluation: Evaluation) -> dg.AssetCheckResult:
    """No slice of the spec is credibly below the slice AUC threshold (Holm across slices)."""
    report = _report(evaluation)
    failed = report.failed_slices

    def line(s, verdict):
        return (
            f"{s.column}={s.value}: AUC {s.estimate.auc:.3f} [{s.estimate.low:.3f}, "
            f"{s.estimate.high:.3f}] {verdict} {report.min_slice_auc} "
            f"(Holm p {s.adjusted_p_value:.3g})"
        )

    lines = [line(s, "credibly below") for s in failed] + [
        line(s, "below, not significantly,") for s in report.weak_slices
    ]
    return _gate(
        not failed,
        lines,
        {
            "slices": dg.MetadataValue.md(report.slices_markdown()),
            "tested": sum(1 for s in report.slices if not s.skipped),
            "skipped": sum(1 for s in report.slices if s.skipped),
            "failed": len(failed),
            "below_not_significant": len(report.weak_slices),
        },
    )


@dg.asset_check(asset="evaluation", blocking=True)
def behavioural_expectations(evaluation: Evaluation) -> dg.AssetCheckResult:
    """The spec's directional and invariance expectations hold on the holdout rows."""
    report = _report(evaluation)
    failed = report.failed_behaviours
    problems = [
        f"{b.name}: {b.fraction:.1%} of {b.rows_tested} rows {b.expect}, "
        f"{b.min_fraction:.0%} required" + (f" ({b.skipped})" if b.skipped else "")
        for b in failed
    ]
    return _gate(
        not failed, problems, {"behaviours": dg.MetadataValue.md(report.behaviours_markdown())}
    )


@dg.asset_check(asset="evaluation", blocking=True)
def prediction_coverage(evaluation: Evaluation) -> dg.AssetCheckResult:
    """Every holdout row gets a probability in [0, 1], also with unseen or missing values."""
    report = _report(evaluation)
    failed = report.failed_coverage
    problems = [
        f"{c.variant}: {c.invalid} of {c.rows} rows without a valid probability, e.g. rows "
        f"{list(c.examples)}" + (f" ({c.error})" if c.error else "")
        for c in failed
    ]
    return _gate(
        not failed, problems, {"coverage": dg.MetadataValue.md(report.coverage_markdown())}
    )


@dg.asset_check(asset="evaluation")
def calibration(evaluation: Evaluation) -> dg.AssetCheckResult:
    """Predicted probabilities match observed churn rates (Brier score, expected calibration error)."""
    report = _report(evaluation)
    c = report.calibration
    return dg.AssetCheckResult(
        passed=report.well_calibrated,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if report.well_calibrated
        else f"ECE {c.ece:.4f} above {report.max_ece} (Brier {c.brier:.4f})",
        metadata={
            "brier": c.brier,
            "ece": c.ece,
            "reliability": dg.MetadataValue.md(report.calibration_markdown()),
        },
    )


@dg.asset_check(asset="evaluation")
def holdout_power(evaluation: Evaluation) -> dg.AssetCheckResult:
    """The holdout resolves AUC differences of min_delta (80% power of the paired test)."""
    power = _report(evaluation).power
    summary = (
        f"smallest AUC improvement detectable at 80% power: {power.minimum_detectable_delta:.4f} "
        f"(SE of the difference {power.se_diff:.4f}"
        + (", assumed: no champion yet" if power.assumed else ", paired")
        + f"); min_delta {power.min_delta}"
    )
    # Without a champion the paired SE is a guess (correlation 0.5): report it, do not warn.
    warn = power.warn and not power.assumed
    return dg.AssetCheckResult(
        passed=not warn,
        severity=dg.AssetCheckSeverity.WARN,
        description=summary
        + f"; the gate passes with 80% power at a true delta of {power.delta_for_power_at_gate:.4f}"
        + (": the holdout is too small for the decision it is asked to make" if warn else ""),
        metadata={
            "minimum_detectable_delta": power.minimum_detectable_delta,
            "se_diff": power.se_diff,
            "min_delta": power.min_delta,
            "delta_for_80pct_power_at_gate": power.delta_for_power_at_gate,
        },
    )
