"""Reusable feature transformations shared by training and serving.

Every function here is plain pandas/numpy so the same code runs inside Dagster assets, in tests
and behind the serving endpoint; `mlplatform.features.engineer.FeatureEngineer` bundles them as
an sklearn transformer so the learnt state is saved together with the model.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd

MISSING_CATEGORY = "__missing__"
_DEFAULT_NAME = "value"
_ONE_DAY = pd.Timedelta(days=1)

__all__ = [
    "MISSING_CATEGORY",
    "apply_frequencies",
    "compute_days_since_reference",
    "cyclical_encode",
    "fit_frequencies",
    "frequency_encode",
]


def _base_name(series: pd.Series) -> Hashable:
    return _DEFAULT_NAME if series.name is None else series.name


def _check_period(period: float, name: Hashable) -> float:
    if isinstance(period, bool) or not isinstance(period, numbers.Real):
        raise TypeError(
            f"cyclical period for column {name!r} must be a real number, "
            f"got {type(period).__name__}: {period!r}"
        )
    value = float(period)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"cyclical period for column {name!r} must be finite and > 0, got {period!r}"
        )
    return value


def _check_numeric(series: pd.Series, name: Hashable) -> None:
    dtype = series.dtype
    # Booleans and complex numbers pass pandas' is_numeric_dtype but have no meaningful phase.
    if (
        not pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
    ):
        raise TypeError(
            f"cyclical_encode needs a numeric column, but column {name!r} has dtype {dtype}"
        )


def cyclical_encode(series: pd.Series, period: float) -> pd.DataFrame:
    """Encode a periodic quantity (hour, weekday, month...) as a point on the unit circle.

    Args:
        series: Numeric values; missing values stay NaN in both output columns.
        period: Length of one cycle, e.g. 24 for hours. Must be finite and > 0.

    Returns:
        DataFrame with columns ``<name>_sin`` and ``<name>_cos`` (``name`` is
        ``series.name`` or ``"value"``), float64, with the index of ``series``.

    Raises:
        ValueError: If ``period`` is not finite or not > 0.
        TypeError: If ``period`` is not a real number or ``series`` is not numeric.
    """
    name = _base_name(series)
    period_value = _check_period(period, name)
    _check_numeric(series, name)

    values = series.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        # Reducing first makes x and x + k*period give bit-identical angles (0 and 24 h) and
        # keeps x/period small, so huge inputs cannot overflow.
        phase = np.mod(values, period_value)
        # np.mod rounds tiny negative inputs up to exactly `period`; fold that onto 0.
        phase[phase >= period_value] = 0.0
        angle = 2.0 * np.pi * (phase / period_value)
    return pd.DataFrame(
        {f"{name}_sin": np.sin(angle), f"{name}_cos": np.cos(angle)},
        index=series.index,
    )


def _category_keys(series: pd.Series) -> pd.Series:
    # object dtype so categoricals accept the sentinel and map() behaves like a dict lookup.
    as_object = series.astype(object)
    return as_object.where(series.notna(), MISSING_CATEGORY)


def fit_frequencies(series: pd.Series, normalize: bool = True) -> dict[Hashable, float]:
    """Learn how often each category occurs, for later use with `apply_frequencies`.

    Missing values (None, NaN, NaT, pd.NA) are counted together as the category
    ``MISSING_CATEGORY`` ("__missing__"); a literal "__missing__" value is merged with them.

    Args:
        series: Categorical values (any hashable dtype).
        normalize: If True, frequencies are fractions of ``len(series)``; otherwise counts.

    Returns:
        Mapping from category to its frequency as a Python float. Empty for an empty series.
    """
    counts = _category_keys(series).value_counts(dropna=False, sort=False)
    total = len(series)
    if normalize and total:
        counts = counts / total
    return {key: float(value) for key, value in counts.items()}


def apply_frequencies(
    series: pd.Series, frequencies: Mapping[Hashable, float], unseen: float = 0.0
) -> pd.Series:
    """Replace each category by its learnt frequency.

    Args:
        series: Categorical values to encode.
        frequencies: Mapping returned by `fit_frequencies`.
        unseen: Value for categories absent from ``frequencies``; missing values use the
            mapping's ``"__missing__"`` entry when present and ``unseen`` otherwise.

    Returns:
        Float series named ``<name>_freq`` with the index of ``series``.
    """
    name = _base_name(series)
    # A plain dict lookup, so a dict subclass with __missing__ cannot change the semantics.
    lookup = dict(frequencies)
    encoded = _category_keys(series).map(lookup).astype("float64").fillna(float(unseen))
    encoded.name = f"{name}_freq"
    return encoded


def frequency_encode(series: pd.Series, normalize: bool = True) -> pd.Series:
    """Encode categories by how often they occur in ``series`` itself.

    Equivalent to ``apply_frequencies(series, fit_frequencies(series, normalize))``; use the
    two-step form when the mapping must be learnt on training data and reused at serving time.

    Args:
        series: Categorical values; missing values form their own category, so the result
            never contains NaN.
        normalize: If True, fractions of ``len(series)``; otherwise counts.

    Returns:
        Float series named ``<name>_freq`` with the index of ``series``.
    """
    return apply_frequencies(series, fit_frequencies(series, normalize=normalize))


def _parse_dates(dates: pd.Series) -> pd.Series:
    name = _base_name(dates)
    dtype = dates.dtype
    if pd.api.types.is_numeric_dtype(dtype):
        # pandas would silently read numbers as nanoseconds since 1970.
        raise TypeError(
            f"column {name!r} must hold datetimes or ISO date strings, got dtype {dtype}"
        )
    # format="ISO8601": without it pandas infers one format from the first string and
    # coerces every differently shaped ISO string (e.g. date vs date-time) to NaT.
    # utc=True converts aware values to UTC and treats naive ones as UTC.
    parsed = pd.to_datetime(dates, errors="coerce", utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None)


def _parse_reference(reference: Any) -> pd.Timestamp:
    try:
        parsed = pd.to_datetime(reference, utc=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference date {reference!r} cannot be parsed: {exc}") from exc
    if not isinstance(parsed, pd.Timestamp) or pd.isna(parsed):
        raise ValueError(f"reference date {reference!r} is not a single valid date")
    return parsed.tz_localize(None)


def compute_days_since_reference(dates: pd.Series, reference: Any) -> pd.Series:
    """Days elapsed from each date to a reference date.

    Timezone-aware values are converted to UTC and naive values are taken as UTC, so the
    two kinds can be mixed.

    Args:
        dates: Datetimes or ISO 8601 strings; unparseable values count as missing.
        reference: A date, datetime, ``pd.Timestamp``, ``np.datetime64`` or ISO string.

    Returns:
        Float series named ``<name>_days_since`` with the index of ``dates``: ``reference -
        date`` in (fractional) days, negative for dates after the reference, NaN where the
        date is missing or unparseable.

    Raises:
        TypeError: If ``dates`` has a numeric dtype.
        ValueError: If ``reference`` is missing or cannot be parsed.
    """
    name = _base_name(dates)
    reference_ts = _parse_reference(reference)
    days = (reference_ts - _parse_dates(dates)) / _ONE_DAY
    days = days.astype("float64")
    days.name = f"{name}_days_since"
    return days
