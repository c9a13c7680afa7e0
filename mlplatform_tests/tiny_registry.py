"""A real sqlite MLflow registry holding a few versions of a tiny model, built once and copied.

Creating MLflow's tables and logging models takes seconds; a module builds the template once
(:func:`build_template`) and each test works on a private copy (:func:`copy_registry`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils
from sklearn.linear_model import LogisticRegression

from mlplatform.deployment.approvals import GATE_TAG_PREFIX, REQUIRED_GATES, TRIGGERED_BY_TAG


def build_template(root: Path, name: str, versions: int, monkeypatch) -> Path:
    """Registers ``versions`` versions of a tiny model under ``name``; returns the db path.

    Every version records a trainer ("carol"), an evaluation that passed and passed deploy
    gates, so tests change only what they are about. MLflow's process-global URIs are put back.
    """
    uri = f"sqlite:///{root}/mlflow.db"
    previous_uri, previous_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
    with monkeypatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            experiment = mlflow.create_experiment("tiny", (root / "artifacts").as_uri())
            x, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
            for _ in range(versions):
                with mlflow.start_run(experiment_id=experiment):
                    mlflow.sklearn.log_model(
                        LogisticRegression().fit(x, y),
                        name="model",
                        registered_model_name=name,
                        pip_requirements=["scikit-learn"],  # no requirement inference: fast
                    )
        finally:
            mlflow.set_tracking_uri(previous_uri)
            registry_utils._registry_uri = previous_registry
    client = MlflowClient(uri, uri)
    for version in range(1, versions + 1):
        client.set_model_version_tag(name, str(version), "decision", "PROMOTE")
        client.set_model_version_tag(name, str(version), TRIGGERED_BY_TAG, "carol")
        for gate in REQUIRED_GATES:
            client.set_model_version_tag(name, str(version), GATE_TAG_PREFIX + gate, "passed")
    return root / "mlflow.db"


def copy_registry(template: Path, directory: Path) -> str:
    """A private copy of the template registry; returns its tracking URI."""
    shutil.copy(template, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"
