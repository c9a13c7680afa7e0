"""Where the project lives and where the embedded default keeps its state."""

from __future__ import annotations

from pathlib import Path

from mlplatform.redaction import refuse_http_credentials

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resolve_in_project(path: str | Path) -> Path:
    """Absolute paths stay as they are; relative ones are taken from the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def resolve_tracking_uri(uri: str) -> str:
    """Makes a relative ``sqlite:///`` MLflow URI absolute against the project root.

    Other URIs (http, postgresql, absolute sqlite paths) are returned unchanged.

    Raises:
        ValueError: An http(s) URI with credentials in it, which MLflow would repeat in its
            error messages (see :func:`mlplatform.redaction.refuse_http_credentials`).
    """
    refuse_http_credentials(
        uri,
        "MLFLOW_TRACKING_URI",
        instead="MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
    )
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(resolve_in_project(uri[len(prefix) :]))
    return uri


def instance_name(dataset: str) -> str:
    """The embedded instance directory of a data set: its spec name or spec file stem."""
    return Path(dataset).stem or "synthetic_churn"


def embedded_defaults(dataset: str = "synthetic_churn") -> dict[str, str]:
    """Environment defaults for the embedded single-machine setup (no server to start).

    Each data set gets its own Dagster instance (``.dagster/<data set>``): run history, the
    partitions' status and the check results of one data set never mix with another's.
    """
    return {
        "DAGSTER_HOME": str(PROJECT_ROOT / ".dagster" / instance_name(dataset)),
        "MLPLATFORM_HOME": ".mlplatform",
        "MLPLATFORM_DATASET": dataset,
        "MLPLATFORM_DATA_PATH": "",
        "MLPLATFORM_STORAGE": "",
        "MLFLOW_TRACKING_URI": "sqlite:///.mlflow/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": ".mlflow/artifacts",
        # Every model load downloads and verifies the artefacts; no progress bar per load.
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLPLATFORM_MLFLOW_RETRIES": "5",
        "MLPLATFORM_MLFLOW_RETRY_SECONDS": "1.0",
        "MLPLATFORM_MIN_AUC": "0.80",
        "MLPLATFORM_MIN_DELTA": "0.005",
        "MLPLATFORM_APPROVERS": "reviewer",
        "MLPLATFORM_REQUIRE_APPROVAL": "true",
        "MLPLATFORM_SERVING_URL": "",
        "MLPLATFORM_CANARY_MIN_REQUESTS": "200",
        "MLPLATFORM_CANARY_MIN_DWELL_SECONDS": "60",
    }
