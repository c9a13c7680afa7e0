"""The training-data profile every model version carries, so drift is measured against it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from mlplatform.datasets.spec import DatasetSpec
from mlplatform.monitoring.reference import ReferenceProfile, build_profile

PROFILE_ARTIFACT = "drift/reference_profile.json"


def profile_columns(spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """The model inputs drift is measured on: (numeric, categorical incl. boolean)."""
    feats = spec.features
    numeric = list(dict.fromkeys([*feats.numeric, *feats.cyclical]))
    categorical = list(dict.fromkeys([*feats.categorical, *feats.boolean]))
    return numeric, categorical


def log_reference_profile(train: pd.DataFrame, spec: DatasetSpec, bins: int = 10):
    """Builds the training rows' profile and logs it to the active MLflow run.

    Returns:
        The profile.
    """
    numeric, categorical = profile_columns(spec)
    profile = build_profile(train, numeric, categorical, bins=bins)
    mlflow.log_dict(profile.to_dict(), PROFILE_ARTIFACT)
    return profile


_CACHE: dict[tuple[str, str], ReferenceProfile] = {}


def load_reference_profile(client: MlflowClient, run_id: str) -> ReferenceProfile:
    """The profile logged with a model's training run (read once per process and run).

    Raises:
        FileNotFoundError: The run has no profile (a model trained before profiles existed).
    """
    key = (client.tracking_uri, run_id)
    if key not in _CACHE:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(run_id, PROFILE_ARTIFACT, tmp)
            except Exception as exc:  # MLflow raises several types for a missing artifact
                raise FileNotFoundError(
                    f"run {run_id} has no {PROFILE_ARTIFACT}: retrain the champion so drift "
                    "can be measured against its training data"
                ) from exc
            _CACHE[key] = ReferenceProfile.from_dict(json.loads(Path(path).read_text()))
    return _CACHE[key]
