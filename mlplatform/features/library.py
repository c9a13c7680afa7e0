"""Reusable feature transformations shared by training and serving.

Every function here is plain pandas/numpy so the same code runs inside Dagster assets, in tests
and behind the serving endpoint. `FeatureEngineer` bundles them as an sklearn transformer so the
learnt state (frequency maps, reference date) is pickled together with the model.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

MISSING_CATEGORY = "__missing__"
_DEFAULT_NAME = "value"
_ONE_DAY = pd.Timedelta(days=1)

__all__ = [
    "MISSING_CATEGORY",
    "FeatureEngineer",
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


def _as_columns(value: Iterable[Hashable] | None, param: str) -> list[Hashable]:
    if value is None:
        return []
    if isinstance(value, str):
        # A bare string would otherwise be iterated character by character.
        raise TypeError(f"FeatureEngineer.{param} must be a list of column names, got {value!r}")
    return list(value)


class FeatureEngineer(TransformerMixin, BaseEstimator):
    """sklearn transformer that applies the feature library to named DataFrame columns.

    Output columns, in order: the ``passthrough`` columns unchanged, ``<col>_sin`` and
    ``<col>_cos`` for each ``cyclical`` column, ``<col>_freq`` for each ``frequency`` column
    and ``<col>_days_since`` for each ``days_since`` column. The output is a DataFrame with the
    input's index, so a following ColumnTransformer can select columns by name.

    Args:
        cyclical: Mapping from column name to its period (e.g. ``{"hour": 24}``).
        frequency: Columns to frequency-encode with fractions learnt in `fit`; categories
            unseen during fit encode as 0.0.
        days_since: Date columns turned into days before the latest date seen in `fit`.
        passthrough: Columns copied to the output as they are.

    Attributes:
        frequency_maps_: Column name to the mapping from `fit_frequencies`.
        reference_date_: ISO string of the latest (naive UTC) date over all ``days_since`` columns seen in
            `fit`, or None when there was none; days_since outputs are then all NaN.
        feature_names_in_: Columns of the DataFrame passed to `fit`.
        n_features_in_: Number of those columns.
    """

    def __init__(
        self,
        cyclical: dict[str, float] | None = None,
        frequency: tuple | list = (),
        days_since: tuple | list = (),
        passthrough: tuple | list = (),
    ) -> None:
        self.cyclical = cyclical
        self.frequency = frequency
        self.days_since = days_since
        self.passthrough = passthrough

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Inputs are named DataFrame columns with strings, categories and gaps.
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        return tags

    def _cyclical_items(self) -> list[tuple[Hashable, float]]:
        if self.cyclical is None:
            return []
        if not isinstance(self.cyclical, Mapping):
            raise TypeError(
                "FeatureEngineer.cyclical must map column names to periods, "
                f"got {type(self.cyclical).__name__}"
            )
        return [(column, _check_period(period, column)) for column, period in self.cyclical.items()]

    def _required_columns(self) -> list[Hashable]:
        required: list[Hashable] = []
        for column in (
            *_as_columns(self.passthrough, "passthrough"),
            *(column for column, _ in self._cyclical_items()),
            *_as_columns(self.frequency, "frequency"),
            *_as_columns(self.days_since, "days_since"),
        ):
            if column not in required:
                required.append(column)
        return required

    def _output_names(self) -> list[str]:
        names: list[Any] = list(_as_columns(self.passthrough, "passthrough"))
        for column, _ in self._cyclical_items():
            names += [f"{column}_sin", f"{column}_cos"]
        names += [f"{column}_freq" for column in _as_columns(self.frequency, "frequency")]
        names += [f"{column}_days_since" for column in _as_columns(self.days_since, "days_since")]
        duplicates = sorted({str(n) for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"FeatureEngineer would produce duplicate output columns {duplicates}")
        return names

    def _check_input(self, X: Any, method: str) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"FeatureEngineer.{method} needs a pandas DataFrame (columns are selected by "
                f"name), got {type(X).__name__}"
            )
        missing = [column for column in self._required_columns() if column not in X.columns]
        if missing:
            raise ValueError(
                f"FeatureEngineer.{method}: input is missing column(s) {missing}; "
                f"available columns: {list(X.columns)}"
            )

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEngineer:
        """Learn frequency maps and the reference date from training data.

        Args:
            X: Training features.
            y: Ignored; accepted for sklearn compatibility.

        Returns:
            self.

        Raises:
            TypeError: If ``X`` is not a DataFrame, a cyclical column is not numeric or a
                parameter has the wrong type.
            ValueError: If ``X`` lacks a configured column, a period is invalid or two
                outputs would share a name.
        """
        self._check_input(X, "fit")
        self._output_names()
        for column, _ in self._cyclical_items():
            _check_numeric(X[column], column)

        self.frequency_maps_ = {
            column: fit_frequencies(X[column])
            for column in _as_columns(self.frequency, "frequency")
        }

        latest = [
            _parse_dates(X[column]).max() for column in _as_columns(self.days_since, "days_since")
        ]
        latest = [value for value in latest if not pd.isna(value)]
        # Kept as an ISO string: MLflow's skops format cannot rebuild a pandas Timestamp.
        self.reference_date_ = max(latest).isoformat() if latest else None

        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Build the feature frame.

        Args:
            X: Features with at least the configured columns; extra columns are ignored.

        Returns:
            New DataFrame with the columns of `get_feature_names_out`, indexed like ``X``.

        Raises:
            sklearn.exceptions.NotFittedError: If called before `fit`.
            TypeError: If ``X`` is not a DataFrame or a cyclical column is not numeric.
            ValueError: If ``X`` lacks a configured column.
        """
        check_is_fitted(self, ["frequency_maps_", "reference_date_"])
        self._check_input(X, "transform")

        parts: list[pd.DataFrame | pd.Series] = []
        passthrough = _as_columns(self.passthrough, "passthrough")
        if passthrough:
            parts.append(X[passthrough].copy())
        for column, period in self._cyclical_items():
            parts.append(cyclical_encode(X[column], period))
        for column in _as_columns(self.frequency, "frequency"):
            parts.append(apply_frequencies(X[column], self.frequency_maps_[column]))
        for column in _as_columns(self.days_since, "days_since"):
            if self.reference_date_ is None:
                parts.append(
                    pd.Series(
                        np.nan,
                        index=X.index,
                        dtype="float64",
                        name=f"{column}_days_since",
                    )
                )
            else:
                parts.append(compute_days_since_reference(X[column], self.reference_date_))

        if not parts:
            return pd.DataFrame(index=X.index)
        return pd.concat(parts, axis=1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the columns `transform` returns, in order.

        Args:
            input_features: Optional input column names (as passed by a Pipeline); when given
                they must contain every configured column.

        Returns:
            Object array of output column names.

        Raises:
            ValueError: If ``input_features`` lacks a configured column.
        """
        check_is_fitted(self, ["frequency_maps_", "reference_date_"])
        if input_features is not None:
            available = list(input_features)
            missing = [c for c in self._required_columns() if c not in available]
            if missing:
                raise ValueError(f"input_features is missing column(s) {missing}")
        return np.asarray(self._output_names(), dtype=object)
