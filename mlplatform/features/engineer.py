"""`FeatureEngineer`: the feature library as an sklearn transformer, the pipeline's first step.

Its learnt state (frequency maps, reference date) is saved with the model, so serving computes
exactly the features training saw.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from mlplatform.features.library import (
    _check_numeric,
    _check_period,
    _parse_dates,
    apply_frequencies,
    compute_days_since_reference,
    cyclical_encode,
    fit_frequencies,
)

__all__ = ["FeatureEngineer"]


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
