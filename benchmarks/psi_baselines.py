"""The PSI computations ``benchmarks/psi.py`` measures ``feature_psi`` against.

Naive pandas (per tick from the raw reference, and on the profile's cached edges), Evidently's
legacy PSI stat test, and ``feature_psi`` with numpy counting instead of the kernels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import mlplatform.monitoring.drift as drift_module
from mlplatform.monitoring.counting import as_float, bin_counts
from mlplatform.monitoring.drift import feature_psi, psi


def numpy_feature_psi(profile, frame: pd.DataFrame):
    """``feature_psi`` with numeric columns counted by numpy (one pass per edge), not the kernels."""

    def numpy_counts(values: pd.Series, edges: np.ndarray) -> np.ndarray:
        return bin_counts(as_float(values), edges, "compare")

    original, drift_module.column_counts = drift_module.column_counts, numpy_counts
    try:
        return feature_psi(profile, frame)
    finally:
        drift_module.column_counts = original


def naive_psi(reference: pd.DataFrame, frame: pd.DataFrame, profile) -> dict[str, float]:
    """PSI the common pandas way, with no cached profile: everything from the raw reference."""
    out = {}
    for name in profile.numeric:
        ref = reference[name].astype("float64")  # as build_profile: np.quantile of the floats
        edges = ref.quantile(np.arange(1, profile.bins) / profile.bins).unique()
        expected, actual = (
            _cut_shares(values, edges) for values in (ref, frame[name].astype("float64"))
        )
        out[name] = psi(expected, actual)
    for name in profile.categorical:
        categories = sorted(reference[name].dropna().unique(), key=str)
        expected, actual = (
            _category_shares(values, categories) for values in (reference[name], frame[name])
        )
        out[name] = psi(expected, actual)
    return out


def naive_cached_psi(profile, frame: pd.DataFrame) -> dict[str, float]:
    """Information only: the same on the profile's cached edges and categories (current only)."""
    out = {}
    for name, p in profile.numeric.items():
        out[name] = psi(p.proportions, _cut_shares(frame[name].astype("float64"), p.edges))
    for name, p in profile.categorical.items():
        out[name] = psi(p.proportions, _category_shares(frame[name], list(p.categories)))
    return out


def _cut_shares(values: pd.Series, edges) -> list[float]:
    """Shares of the buckets [-inf, e_1), ..., [e_m, inf), then of NaN (pd.cut + value_counts)."""
    cut = pd.cut(values, [-np.inf, *edges, np.inf], right=False)
    shares = cut.value_counts(normalize=True, dropna=False, sort=False)
    return [shares.get(b, 0.0) for b in cut.cat.categories] + [
        float(shares[shares.index.isna()].sum())
    ]


def _category_shares(values: pd.Series, categories: list) -> list[float]:
    """Shares of each reference category, of unseen ones, then of missing values."""
    shares = values.value_counts(normalize=True, dropna=False)
    known = shares[shares.index.isin(categories)]
    missing = float(shares[shares.index.isna()].sum())
    unseen = max(1.0 - known.sum() - missing, 0.0)
    return [float(known.get(c, 0.0)) for c in categories] + [unseen, missing]


def evidently_psi(reference: pd.DataFrame, frame: pd.DataFrame, numeric, categorical):
    """Evidently's PSI per feature (it needs the raw reference every time)."""
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    out = {}
    for name in numeric:
        ref, cur = reference[name].dropna(), frame[name].dropna()
        out[name] = _psi(ref, cur, ColumnType.Numerical, 0.2)[0]
    for name in categorical:
        out[name] = _psi(reference[name], frame[name], ColumnType.Categorical, 0.2)[0]
    return out
