from contextlib import contextmanager

import dagster as dg
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import Field

from mlplatform.ml.registry import ensure_experiment
from mlplatform.ml.retry import RetryPolicy, bound_mlflow_http_retries, call_with_retry
from mlplatform.ml.store_calls import RetryingClient, retry_registration
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
    retries: str = Field(
        default="5",
        description="Attempts of a store call that failed without effect (server down, SQLite "
        "locked, HTTP 503/429); worst-case times in mlplatform.ml.retry.",
    )
    retry_seconds: str = Field(
        default="1.0", description="First back-off between attempts; doubles, at most 30 s."
    )

    @property
    def resolved_uri(self) -> str:
        return resolve_tracking_uri(self.tracking_uri)

    def model_name(self, dataset_name: str) -> str:
        return f"{self.model_name_prefix}{dataset_name}"

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.retries, self.retry_seconds)

    def client(self) -> RetryingClient:
        """A registry client whose idempotent calls are retried while the store is down."""
        uri = self.resolved_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        bound_mlflow_http_retries(uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return RetryingClient(client, store_uri=uri, policy=self.retry_policy())

    def retrying(self, operation: str, call):
        """``call()``, retried while it fails without effect (see mlplatform.ml.retry)."""
        return call_with_retry(
            operation, call, store_uri=self.resolved_uri, policy=self.retry_policy()
        )

    def register_once(self, register, model_name: str, run_id: str):
        """``register()`` retried while the store is down, never creating a second version."""
        return retry_registration(
            register,
            client=self.client(),
            model_name=model_name,
            run_id=run_id,
            store_uri=self.resolved_uri,
            policy=self.retry_policy(),
        )

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str] | None = None):
        client = self.client()
        root = self.artifact_root
        location = str(resolve_in_project(root)) if root and "://" not in root else root
        experiment_id = self.retrying(
            f"find or create experiment {self.experiment_name}",
            lambda: ensure_experiment(self.experiment_name, location),
        )
        run = self.retrying(
            f"start MLflow run {run_name}",
            lambda: mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags),
        )
        try:
            yield run
        except BaseException as failure:
            try:
                mlflow.end_run("FAILED")
            except MlflowException as end_error:
                # The failure that ended the run is the one to report; this one rides along.
                failure.add_note(f"MLflow run {run.info.run_id} not marked FAILED: {end_error}")
            raise
        # mlflow.end_run leaves the run before writing its status, so the write that may
        # meet an unavailable store is done (and retried) first.
        client.set_terminated(run.info.run_id, "FINISHED")
        mlflow.end_run()


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "mlflow_tracking": MLflowResource(
                tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
                artifact_root=dg.EnvVar("MLFLOW_ARTIFACT_ROOT"),
                retries=dg.EnvVar("MLPLATFORM_MLFLOW_RETRIES"),
                retry_seconds=dg.EnvVar("MLPLATFORM_MLFLOW_RETRY_SECONDS"),
            )
        }
    )
