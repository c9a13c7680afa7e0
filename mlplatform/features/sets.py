"""The modelling data set: training rows, the frozen holdout, and the engineered features."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mlplatform.datasets.spec import DatasetSpec
from mlplatform.features.engineer import FeatureEngineer


@dataclass(frozen=True)
class FeatureSet:
    """What training and evaluation read.

    Attributes:
        dataset: Data-set name.
        train: Validated training rows (never overlapping the holdout).
        holdout: The frozen holdout rows.
        train_version: Content hash of ``train``.
        holdout_version: Content hash of ``holdout``.
        engineered_train: The engineered features the model pipeline computes for ``train``.
        window: The training window the rows came from, e.g. "2026-01-01..2026-01-30 (...)".
        holdout_path: Where the holdout snapshot is stored.
        window_versions: Data version of each validated day in the window.
    """

    dataset: str
    train: pd.DataFrame
    holdout: pd.DataFrame
    train_version: str
    holdout_version: str
    engineered_train: pd.DataFrame
    window: str = ""
    holdout_path: str = ""
    window_versions: dict[str, str] = field(default_factory=dict)


def spec_feature_engineer(spec: DatasetSpec, passthrough: bool = False) -> FeatureEngineer:
    """The unfitted FeatureEngineer a spec describes (the model pipeline's first step).

    Args:
        spec: Names the cyclical, frequency and days-since features.
        passthrough: Also copy the numeric, categorical and boolean inputs to the output.

    Returns:
        The transformer.
    """
    feats = spec.features
    kept = [*feats.numeric, *feats.categorical, *feats.boolean] if passthrough else []
    return FeatureEngineer(
        cyclical=dict(feats.cyclical),
        frequency=tuple(feats.frequency),
        days_since=tuple(feats.days_since),
        passthrough=tuple(dict.fromkeys(kept)),
    )


def engineer_features(spec: DatasetSpec, train: pd.DataFrame) -> pd.DataFrame:
    """The derived features (cyclical, frequency, days-since) the pipeline learns from ``train``.

    Args:
        spec: Names the derived features.
        train: Validated training rows.

    Returns:
        One row per training row with the derived feature columns.
    """
    return spec_feature_engineer(spec).fit(train).transform(train)
