import dagster as dg
import mlflow

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.evaluation.resources import GatePolicy
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.features.sets import FeatureSet
from mlplatform.ml.evaluation import evaluate_on_holdout
from mlplatform.ml.registry import CHAMPION, RegisteredModel, load_pipeline, version_for_alias
from mlplatform.ml.training import churn_scores, labels, model_input


@dg.asset(group_name="evaluation", kinds={"mlflow"}, code_version="1")
def evaluation(
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
    challenger_scores = churn_scores(load_pipeline(name, challenger_model.version), holdout_inputs)
    champion_version = version_for_alias(client, name, CHAMPION)
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
    with mlflow.start_run(run_id=challenger_model.run_id):
        mlflow.log_metrics(
            {
                "holdout_auc": result.challenger.auc,
                "holdout_auc_ci_low": result.challenger.low,
                "holdout_auc_ci_high": result.challenger.high,
            }
        )
        if result.difference is not None:
            mlflow.log_metric("delta_vs_champion", result.difference.delta)
    client.set_model_version_tag(
        name, challenger_model.version, "holdout_auc", f"{result.challenger.auc:.4f}"
    )
    metadata = {
        "decision": dg.MetadataValue.md(result.markdown()),
        "challenger_version": challenger_model.version,
        "holdout_auc": result.challenger.auc,
        "holdout_auc_ci": result.challenger.describe(),
        "holdout_version": features.holdout_version,
        "should_promote": result.should_promote,
    }
    if result.champion is not None:
        metadata["champion_version"] = champion_version
        metadata["champion_auc"] = result.champion.auc
        metadata["delta_ci_low"] = result.difference.low
    return dg.Output(result, metadata=metadata)
