"""Records in the active MLflow run exactly which data a model was trained and judged on."""

from __future__ import annotations

import warnings

import mlflow
import mlflow.data
import pandas as pd

TRAINING = "training"
HOLDOUT = "holdout"


def log_dataset(
    frame: pd.DataFrame, *, name: str, digest: str, source: str, context: str, targets: str
) -> None:
    """Logs a frame as an MLflow dataset input of the active run.

    The digest is the platform's own content hash (the Dagster data version), so the MLflow
    run, the Dagster asset and the holdout snapshot all name the data the same way.

    Args:
        frame: The rows.
        name: Dataset name shown in MLflow, e.g. ``synthetic_churn-train``.
        digest: Content hash of ``frame``.
        source: Where the rows came from (file, generator, snapshot path, window).
        context: Role in the run: ``training`` or ``holdout``.
        targets: The label column.
    """
    with warnings.catch_warnings():
        # MLflow resolves a local path source two equivalent ways and warns that it picked one.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        # Non-nullable integer columns are int64 on purpose (see ml.training.model_input).
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        dataset = mlflow.data.from_pandas(
            frame, source=source, name=name, digest=digest, targets=targets
        )
        mlflow.log_input(dataset, context=context)


def log_training_window(window: str, day_versions: dict[str, str], holdout_path: str) -> None:
    """Logs the days a model was trained on with their data versions, and the holdout itself.

    The day versions tie the MLflow run to the Dagster validated_data partitions; the holdout
    parquet travels with the run, so the model can be judged again after the holdout is reset.

    Args:
        window: Description of the training window.
        day_versions: Data version of each validated day in the window.
        holdout_path: The frozen holdout snapshot (parquet).
    """
    mlflow.log_dict({"window": window, "days": day_versions}, "lineage/training_window.json")
    if holdout_path:
        mlflow.log_artifact(holdout_path, artifact_path="lineage")
