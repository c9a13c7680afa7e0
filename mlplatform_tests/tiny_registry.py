"""A real sqlite MLflow registry holding a few versions of a tiny model, built once and copied.

Creating MLflow's tables and logging models takes seconds; a module builds the template once
(:func:`build_template`) and each test works on a private copy (:func:`copy_registry`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlflow import MlflowClient
from registry_faults import build_registry

from mlplatform.deployment.approvals import GATE_TAG_PREFIX, REQUIRED_GATES, TRIGGERED_BY_TAG


def build_template(root: Path, name: str, versions: int) -> Path:
    """Registers ``versions`` versions of a tiny model under ``name``; returns the db path.

    Every version records a trainer ("carol"), an evaluation that passed and passed deploy
    gates, so tests change only what they are about. MLflow's process-global URIs are put back.
    """
    database, _ = build_registry(root, name, versions)
    uri = f"sqlite:///{database}"
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
