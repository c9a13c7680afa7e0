from contextlib import contextmanager

import dagster as dg
import mlflow
from mlflow import MlflowClient
from pydantic import Field

from mlplatform.ml.registry import ensure_experiment
from mlplatform.paths import resolve_in_project, resolve_tracking_uri


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking server and model registry (a local SQLite store by default)."""

    tracking_uri: str = Field(
        default="sqlite:///.mlflow/mlflow.db",
        description="MLflow tracking URI; a relative sqlite:/// path is under the repo root.",
    )
    artifact_root: str = Field(
        default=".mlflow/artifacts",
        description="Artifact root for a new experiment (ignored for an existing one).",
    )
    experiment_name: str = Field(default="mlplatform", description="MLflow experiment.")
    model_name_prefix: str = Field(
        default="mlplatform-", description="Registered model name = prefix + data-set name."
    )

    @property
    def resolved_uri(self) -> str:
        return resolve_tracking_uri(self.tracking_uri)

    def model_name(self, dataset_name: str) -> str:
        return f"{self.model_name_prefix}{dataset_name}"

    def client(self) -> MlflowClient:
        mlflow.set_tracking_uri(self.resolved_uri)
        mlflow.set_registry_uri(self.resolved_uri)
        return MlflowClient(tracking_uri=self.resolved_uri, registry_uri=self.resolved_uri)

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str] | None = None):
        self.client()
        root = self.artifact_root
        location = str(resolve_in_project(root)) if root and "://" not in root else root
        experiment_id = ensure_experiment(self.experiment_name, location)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
            yield run


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "mlflow_tracking": MLflowResource(
                tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
                artifact_root=dg.EnvVar("MLFLOW_ARTIFACT_ROOT"),
            )
        }
    )
