import dataclasses

import dagster as dg
import mlflow
import mlflow.pyfunc
import numpy as np

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.evaluation.resources import GatePolicy
from mlplatform.defs.training.assets import FOLLOW_THROUGH_GATES
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.features.sets import FeatureSet
from mlplatform.ml.evaluation import evaluate_on_holdout
from mlplatform.ml.integrity import verify_model_uri
from mlplatform.ml.plots import markdown_image, png_bytes, roc_figure
from mlplatform.ml.registry import CHAMPION, RegisteredModel, load_pipeline, version_for_alias
from mlplatform.ml.test_report import run_model_tests
from mlplatform.ml.training import churn_scores, labels, model_input


@dg.asset(
    group_name="evaluation",
    kinds={"mlflow"},
    code_version="2",
    automation_condition=FOLLOW_THROUGH_GATES,
)
def evaluation(
    context: dg.AssetExecutionContext,
    challenger_model: RegisteredModel,
    features: FeatureSet,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
    gates: GatePolicy,
) -> dg.Output:
    """Challenger versus champion on the same fixed holdout, with DeLong confidence intervals."""
    spec = dataset.spec()
    client = mlflow_tracking.client()
    name = challenger_model.name
    holdout_inputs = model_input(features.holdout, spec)
    challenger_pipeline = load_pipeline(name, challenger_model.version)
    challenger_scores = churn_scores(challenger_pipeline, holdout_inputs)
    champion_version = version_for_alias(client, name, CHAMPION)
    if champion_version is not None:
        judged_on = client.get_model_version(name, champion_version).tags.get("holdout_version")
        if judged_on and judged_on != features.holdout_version:
            # After reset-holdout the champion may have trained on rows now in the holdout,
            # which flatters it: the comparison still runs, but nobody should miss this.
            context.log.warning(
                f"champion v{champion_version} was trained with holdout {judged_on}; the "
                f"current holdout is {features.holdout_version}: its AUC may be optimistic"
            )
    champion_scores = None
    if champion_version is not None and champion_version != challenger_model.version:
        champion_scores = churn_scores(load_pipeline(name, champion_version), holdout_inputs)
    else:
        champion_version = None
    result = evaluate_on_holdout(
        labels(features.holdout, spec),
        challenger_scores,
        champion_scores,
        model_name=name,
        challenger_version=challenger_model.version,
        champion_version=champion_version,
        holdout_version=features.holdout_version,
        min_auc=gates.min_auc_value,
        min_delta=gates.min_delta_value,
    )
    holdout_labels = labels(features.holdout, spec)
    # Coverage goes through the registered pyfunc, the way serving loads the model.
    served = mlflow.pyfunc.load_model(verify_model_uri(client, challenger_model.model_uri))
    report = run_model_tests(
        lambda rows: churn_scores(challenger_pipeline, model_input(rows, spec)),
        holdout_inputs,
        holdout_labels,
        challenger_scores,
        spec,
        result.challenger,
        result.difference,
        min_delta=gates.min_delta_value,
        min_slice_auc=gates.min_slice_auc,
        min_slice_rows=gates.min_slice_rows,
        max_ece=gates.max_calibration_error,
        served_predict=lambda rows: np.asarray(served.predict(model_input(rows, spec)))[:, 1],
    )
    result = dataclasses.replace(result, tests=report)
    curves = {f"challenger v{challenger_model.version}": (challenger_scores, result.challenger)}
    if result.champion is not None:
        curves[f"champion v{champion_version}"] = (champion_scores, result.champion)
    figure = roc_figure(holdout_labels, curves)
    roc_png = png_bytes(figure)
    with mlflow.start_run(run_id=challenger_model.run_id):
        mlflow.log_metrics(
            {
                "holdout_auc": result.challenger.auc,
                "holdout_auc_ci_low": result.challenger.low,
                "holdout_auc_ci_high": result.challenger.high,
            }
        )
        if result.difference is not None:
            mlflow.log_metrics(
                {
                    "delta_vs_champion": result.difference.delta,
                    "delta_vs_champion_ci_low": result.difference.low,
                    "delta_vs_champion_p_value": result.difference.p_value,
                    "gate_p_value": result.gate_p_value,
                }
            )
        mlflow.log_figure(figure, "evaluation/roc.png")
        mlflow.log_text(result.markdown(), "evaluation/decision.md")
    # The decision travels with the model version: the registry alone tells why it was
    # (or was not) promoted, against which champion, on which holdout.
    decision_tags = {
        "holdout_auc": f"{result.challenger.auc:.4f}",
        "holdout_auc_ci": f"[{result.challenger.low:.4f}, {result.challenger.high:.4f}]",
        "holdout_version": features.holdout_version,
        "decision": result.decision,
        "decision_reason": result.reason[:4900],
        "compared_with_champion": champion_version or "none",
        "min_auc": str(result.min_auc),
        "min_delta": str(result.min_delta),
        "failed_model_tests": "; ".join(result.failed_tests)[:4900] or "none",
    }
    if result.difference is not None:
        decision_tags["delta_ci"] = f"[{result.difference.low:+.4f}, {result.difference.high:+.4f}]"
        decision_tags["gate_p_value"] = f"{result.gate_p_value:.4g}"
        decision_tags["champion_auc"] = f"{result.champion.auc:.4f}"
    for key, value in decision_tags.items():
        client.set_model_version_tag(name, challenger_model.version, key, value)
    metadata = {
        "decision": dg.MetadataValue.md(
            result.markdown() + "\n\n" + markdown_image(roc_png, "ROC curves")
        ),
        "challenger_version": challenger_model.version,
        "holdout_auc": result.challenger.auc,
        "holdout_auc_ci": result.challenger.describe(),
        "holdout_version": features.holdout_version,
        "should_promote": result.should_promote,
        "slices": dg.MetadataValue.md(report.slices_markdown()),
        "behaviours": dg.MetadataValue.md(report.behaviours_markdown()),
        "prediction_coverage": dg.MetadataValue.md(report.coverage_markdown()),
        "calibration": dg.MetadataValue.md(report.calibration_markdown()),
        "brier": report.calibration.brier,
        "ece": report.calibration.ece,
        "minimum_detectable_delta": report.power.minimum_detectable_delta,
    }
    if result.champion is not None:
        metadata["champion_version"] = champion_version
        metadata["champion_auc"] = result.champion.auc
        metadata["delta_ci_low"] = result.difference.low
        metadata["delta_p_value"] = result.difference.p_value
        metadata["gate_p_value"] = result.gate_p_value
    return dg.Output(result, metadata=metadata)
