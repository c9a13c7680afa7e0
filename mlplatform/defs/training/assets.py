import getpass

import dagster as dg
import mlflow
from pydantic import Field

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.evaluation.resources import GatePolicy
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.deployment.approvals import TRIGGERED_BY_TAG, triggered_by
from mlplatform.features import engineer, library, sets
from mlplatform.features.sets import FeatureSet
from mlplatform.ml import training
from mlplatform.ml.lineage import HOLDOUT, TRAINING, log_dataset, log_training_window
from mlplatform.ml.metrics import auc_with_ci
from mlplatform.ml.provenance import code_version, environment_tags, source_digest
from mlplatform.ml.registry import CHALLENGER, RegisteredModel, log_and_register
from mlplatform.ml.training import TrainingParams, churn_scores, labels, model_input, train_pipeline
from mlplatform.monitoring.profiles import log_reference_profile
from mlplatform.paths import PROJECT_ROOT


class TrainingConfig(dg.Config):
    """Estimator and hyperparameters of the challenger pipeline."""

    estimator: str = Field(
        default="gradient_boosting", description="gradient_boosting or logistic_regression"
    )
    seed: int = 42
    learning_rate: float = 0.05
    max_iter: int = 300
    max_depth: int | None = 4
    l2_regularization: float = 1.0
    c: float = Field(default=1.0, description="Logistic regression inverse regularisation.")

    def params(self) -> TrainingParams:
        return TrainingParams(
            estimator=self.estimator,
            seed=self.seed,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_depth=self.max_depth,
            l2_regularization=self.l2_regularization,
            c=self.c,
        )


# Every run of the retrain path carries this tag; the run queue runs one at a time, so two
# triggers firing together (calendar, drift, code change) never race to move the aliases.
RETRAIN_RUN_TAGS = {"mlplatform/lane": "retrain"}

# Changes whenever the training or feature code does, so Dagster can see a code change.
TRAINING_CODE_VERSION = source_digest(training, engineer, library, sets)

# A new training code version makes the retrain path eligible, once, when its inputs are there
# and every blocking check upstream passed. Only this condition's own request settles it: a
# run of another trigger finishing in the same tick may have trained with the old code.
RETRAIN_ON_CODE_CHANGE = (
    dg.AutomationCondition.code_version_changed().since(dg.AutomationCondition.newly_requested())
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("retrain on a training code change")

# Evaluation and deployment follow a challenger that automation trained, never past a failed
# blocking check.
FOLLOW_THROUGH_GATES = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("follow the new challenger through its gates")


@dg.asset(
    group_name="training",
    kinds={"sklearn", "mlflow"},
    code_version=TRAINING_CODE_VERSION,
    automation_condition=RETRAIN_ON_CODE_CHANGE,
)
def challenger_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    features: FeatureSet,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
    gates: GatePolicy,
) -> dg.Output:
    """A newly trained preprocessing+model pipeline, registered in MLflow with the challenger alias."""
    # A bad gate setting would only surface at evaluation, after a version is registered.
    gates.check_thresholds()
    spec = dataset.spec()
    params = config.params()
    model_name = mlflow_tracking.model_name(spec.name)
    train = features.train
    tags = {
        "dataset": spec.name,
        "train_data_version": features.train_version,
        "holdout_version": features.holdout_version,
        "dagster_run_id": context.run.run_id,
        "seed": str(params.seed),
        # Four eyes: whoever started this training may not approve its deployment.
        TRIGGERED_BY_TAG: triggered_by(context.run.tags, getpass.getuser()),
        **code_version(PROJECT_ROOT),
        **environment_tags(),
    }
    with mlflow_tracking.start_run(run_name=f"train-{spec.name}", tags=tags) as run:
        mlflow.log_params({**params.as_dict(), "training_window": features.window})
        log_dataset(
            train,
            name=f"{spec.name}-train",
            digest=features.train_version,
            source=f"{dataset.source_description()}, validated_data days {features.window}",
            context=TRAINING,
            targets=spec.label_column,
        )
        log_dataset(
            features.holdout,
            name=f"{spec.name}-holdout",
            digest=features.holdout_version,
            source=features.holdout_path,
            context=HOLDOUT,
            targets=spec.label_column,
        )
        log_training_window(features.window, features.window_versions, features.holdout_path)
        pipeline = train_pipeline(train, spec, params)
        # What the drift sensor compares new days with while this version is champion.
        log_reference_profile(train, spec)
        train_inputs = model_input(train, spec)
        train_auc = auc_with_ci(labels(train, spec), churn_scores(pipeline, train_inputs))
        mlflow.log_metrics({"train_auc": train_auc.auc, "train_rows": len(train)})
        example = train_inputs.head(5)
        example_scores = churn_scores(pipeline, example)
        # Retried while the store is down, but a version is never registered twice.
        registered: RegisteredModel = mlflow_tracking.register_once(
            lambda: log_and_register(pipeline, example, example_scores, model_name),
            model_name,
            run.info.run_id,
        )
    # Retries each alias and tag write while the store is down (they are idempotent).
    client = mlflow_tracking.client()
    client.set_registered_model_alias(model_name, CHALLENGER, registered.version)
    version_tags = ("dataset", "train_data_version", "holdout_version", "code_version", "seed")
    for key in (*version_tags, TRIGGERED_BY_TAG):
        client.set_model_version_tag(model_name, registered.version, key, tags[key])
    return dg.Output(
        registered,
        metadata={
            "model_name": model_name,
            "model_version": registered.version,
            "model_uri": registered.model_uri,
            "mlflow_run_id": registered.run_id,
            "estimator": params.estimator,
            "train_rows": len(train),
            "train_auc": train_auc.auc,
            "train_data_version": features.train_version,
        },
    )
