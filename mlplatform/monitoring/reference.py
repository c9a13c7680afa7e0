"""The reference profile of a model's training data: bins and category shares, JSON-ready.

Computed once per model version (at training) so that each drift check only bins new rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.monitoring.counting import as_float, category_counts, column_counts, json_scalar

NAN_LABEL = "NaN"
UNSEEN_LABEL = "<unseen>"
MISSING_LABEL = "<missing>"
WATCH_PSI = 0.1
DRIFT_PSI = 0.2


@dataclass(frozen=True)
class NumericProfile:
    """Reference bins of one numeric feature.

    Attributes:
        edges: Sorted distinct finite inner edges e_1 < ... < e_m; buckets (-inf, e_1), [e_i,
            e_i+1), ..., [e_m, inf), so every number falls in one.
        proportions: Reference share of each of the m + 1 buckets, then of NaN.
    """

    edges: tuple[float, ...]
    proportions: tuple[float, ...]

    def labels(self) -> list[str]:
        """Human-readable bucket labels, in the order of ``proportions``."""
        bounds = [-math.inf, *self.edges, math.inf]
        pairs = zip(bounds, bounds[1:], strict=False)
        return [*(f"[{lo:g}, {hi:g})" for lo, hi in pairs), NAN_LABEL]


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference categories of one categorical feature.

    Attributes:
        categories: Categories seen in the reference (JSON scalars), sorted by their text.
        proportions: Reference share of each category, then of unseen ones (0), then missing.
    """

    categories: tuple[Any, ...]
    proportions: tuple[float, ...]

    def labels(self) -> list[str]:
        """Human-readable bucket labels, in the order of ``proportions``."""
        return [str(c) for c in self.categories] + [UNSEEN_LABEL, MISSING_LABEL]


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything needed to compute PSI against the training data, JSON-serialisable.

    Attributes:
        rows: Reference (training) rows the profile was built from.
        bins: Requested quantile bins per numeric feature (discrete columns may get fewer).
        numeric: Numeric feature name -> its bins.
        categorical: Categorical feature name -> its categories.
    """

    rows: int
    bins: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``json.dumps`` (floats round-trip exactly through JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ReferenceProfile:
        """Inverse of ``to_dict`` (also accepts the dict after a JSON round trip)."""

        def load(kind, fields: dict[str, list]):
            return kind(**{key: tuple(value) for key, value in fields.items()})

        num = {n: load(NumericProfile, p) for n, p in raw["numeric"].items()}
        cat = {n: load(CategoricalProfile, p) for n, p in raw["categorical"].items()}
        return cls(int(raw["rows"]), int(raw["bins"]), num, cat)


def build_profile(
    frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], bins: int = 10
) -> ReferenceProfile:
    """Profiles the reference (training) data once.

    Args:
        frame: Reference rows.
        numeric: Columns binned at the 1/bins ... (bins-1)/bins quantiles of their finite values
            (equal edges of discrete columns are merged, so they may get fewer bins).
        categorical: Categorical columns.
        bins: Quantile bins per numeric feature.

    Raises:
        ValueError: A column is missing, the frame is empty or bins < 2.
    """
    missing = [c for c in (*numeric, *categorical) if c not in frame.columns]
    if missing:
        raise ValueError(f"reference frame lacks feature columns: {', '.join(missing)}")
    if len(frame) == 0 or bins < 2:
        raise ValueError(
            f"need a non-empty reference and bins >= 2 (rows {len(frame)}, bins {bins})"
        )
    rows = len(frame)
    numeric_profiles = {}
    for name in numeric:
        values = as_float(frame[name])
        finite = values[np.isfinite(values)]
        inner = np.quantile(finite, np.arange(1, bins) / bins) if finite.size else np.array([])
        edges = np.unique(inner)
        shares = column_counts(frame[name], edges) / rows
        numeric_profiles[name] = NumericProfile(tuple(edges.tolist()), tuple(shares.tolist()))
    categorical_profiles = {}  # categories sorted by their text, for a stable order
    for name in categorical:
        seen = frame[name].dropna().unique()
        categories = tuple(sorted({json_scalar(v) for v in seen}, key=str))
        shares = category_counts(frame[name], categories) / rows
        categorical_profiles[name] = CategoricalProfile(categories, tuple(shares.tolist()))
    return ReferenceProfile(rows, bins, numeric_profiles, categorical_profiles)


def build_profile_for_spec(frame: pd.DataFrame, spec, bins: int = 10) -> ReferenceProfile:
    """``build_profile`` of ``model_input(frame, spec)``: numeric, categorical and (as
    two-category features) boolean features of a ``DatasetSpec``."""
    # Imported here so the monitoring module stays light (training pulls in scikit-learn).
    from mlplatform.ml.training import model_input

    feats = spec.features
    categorical = (*feats.categorical, *feats.boolean)
    return build_profile(model_input(frame, spec), feats.numeric, categorical, bins)
