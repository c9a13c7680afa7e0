"""The fitted feature and preprocessing steps of a churn pipeline rebuilt as plain numpy.

Each ``compile_*`` function reads one fitted step of the pipeline ``build_pipeline`` makes and
returns a function that computes what the step's ``transform`` computes, with the same
floating-point operations in the same order, or None when the step is not exactly one of the
kinds understood here (the model is in :mod:`mlplatform.serving.fast_path_models`). Inputs the
step would treat differently from what is rebuilt here (other dtypes, other Python types,
infinities where scikit-learn raises) raise :class:`FastPathUnsupported`, so the caller can use
the pipeline.
Nothing here is trusted on its own: :mod:`mlplatform.serving.fast_path` checks every compiled
pipeline against the real one before it is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlplatform.features.engineer import FeatureEngineer
from mlplatform.features.library import MISSING_CATEGORY, compute_days_since_reference
from mlplatform.ml.training import as_float

# Only the types the pipeline itself gets from a request: anything else goes to the pipeline.
INTEGER_KINDS = "iu"
DATE_CACHE_SIZE = 4096
DIGITS = frozenset("0123456789")

Columns = dict[str, np.ndarray]


class FastPathUnsupported(Exception):
    """Rows the fast path does not take as they are; the pipeline scores them."""


def _numeric(values: np.ndarray, name: str) -> np.ndarray:
    """A column as float64, as pandas and scikit-learn convert it (ints and float64 only)."""
    kind = values.dtype.kind
    if kind in INTEGER_KINDS or values.dtype == np.float64:
        return values.astype(np.float64)
    raise FastPathUnsupported(f"column {name!r} has dtype {values.dtype}")


def _strings(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype != object:
        raise FastPathUnsupported(f"column {name!r} has dtype {values.dtype}, not object")
    return values


def is_nan(value) -> bool:
    """Whether a Python value is a float NaN (None and strings are not)."""
    return isinstance(value, float) and math.isnan(value)


@dataclass
class _DaysSince:
    """``compute_days_since_reference`` per date string, memoised for ISO-looking strings.

    The library function parses each value on its own (ISO 8601, coerced), so calling it on one
    value gives what it gives for that value inside any batch; only the call overhead is saved.
    Strings not starting with a digit are not memoised: pandas reads "now" and "today" as the
    current time.
    """

    column: str
    reference: str | None
    cache: dict

    def _days(self, value: str) -> float:
        series = pd.Series([value], dtype=object, name=self.column)
        return float(compute_days_since_reference(series, self.reference).iloc[0])

    def __call__(self, columns: Columns) -> np.ndarray:
        values = _strings(columns[self.column], self.column)
        out = np.empty(len(values), dtype=np.float64)
        for i, value in enumerate(values):
            if self.reference is None or value is None or is_nan(value):
                out[i] = np.nan
            elif type(value) is not str:
                raise FastPathUnsupported(f"column {self.column!r} holds a {type(value).__name__}")
            elif value[:1] not in DIGITS:
                out[i] = self._days(value)
            else:
                days = self.cache.get(value)
                if days is None:
                    if len(self.cache) >= DATE_CACHE_SIZE:
                        self.cache.clear()
                    days = self.cache[value] = self._days(value)
                out[i] = days
        return out


def _cyclical(column: str, period: float, wave: Callable) -> Callable[[Columns], np.ndarray]:
    def encode(columns: Columns) -> np.ndarray:
        values = _numeric(columns[column], column)
        # The same operations as mlplatform.features.library.cyclical_encode.
        with np.errstate(invalid="ignore"):
            phase = np.mod(values, period)
            phase[phase >= period] = 0.0
            angle = 2.0 * np.pi * (phase / period)
        return wave(angle)

    return encode


def _frequency(column: str, table: dict[str, float]) -> Callable[[Columns], np.ndarray]:
    missing = table.get(MISSING_CATEGORY, 0.0)

    def encode(columns: Columns) -> np.ndarray:
        out = []
        for value in _strings(columns[column], column):
            if type(value) is str:
                out.append(table.get(value, 0.0))
            elif value is None or is_nan(value):
                out.append(missing)
            else:
                raise FastPathUnsupported(f"column {column!r} holds a {type(value).__name__}")
        return np.asarray(out, dtype=np.float64)

    return encode


def compile_features(step) -> tuple[list[str], dict[str, Callable]] | None:
    """The FeatureEngineer's required input columns and one function per output column."""
    if type(step) is not FeatureEngineer or not hasattr(step, "frequency_maps_"):
        return None
    try:
        step.get_feature_names_out()  # refuses duplicate outputs, as transform would
        cyclical = dict(step._cyclical_items())
        required = list(step._required_columns())
    except (TypeError, ValueError):
        return None
    if not all(isinstance(c, str) for c in (*required, *cyclical)):
        return None
    producers: dict[str, Callable] = {c: (lambda cols, c=c: cols[c]) for c in step.passthrough}
    for column, period in cyclical.items():
        producers[f"{column}_sin"] = _cyclical(column, period, np.sin)
        producers[f"{column}_cos"] = _cyclical(column, period, np.cos)
    for column in step.frequency:
        mapping = step.frequency_maps_[column]
        if not all(type(k) is str and isinstance(v, float) for k, v in mapping.items()):
            return None
        # A NaN frequency becomes 0.0 (fillna with the unseen value), as in apply_frequencies.
        table = {k: 0.0 if math.isnan(v) else float(v) for k, v in mapping.items()}
        producers[f"{column}_freq"] = _frequency(column, table)
    for column in step.days_since:
        producers[f"{column}_days_since"] = _DaysSince(column, step.reference_date_, {})
    return required, producers


@dataclass(frozen=True)
class Block:
    """One ColumnTransformer entry: its input columns, output width and computation."""

    columns: tuple[str, ...]
    width: int
    compute: Callable[[list[np.ndarray]], np.ndarray]
    probes: dict[str, list] = field(default_factory=dict)


def _fill_values(imputer) -> np.ndarray | None:
    """The numeric values a fitted SimpleImputer puts in place of NaN, or None."""
    if type(imputer) is not SimpleImputer or imputer.add_indicator:
        return None
    if not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)):
        return None
    if imputer._fit_dtype != np.float64 or imputer._fill_dtype != np.float64:
        return None
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    # NaN statistics drop columns (or, kept, fill 0): not rebuilt here.
    return fill if np.all(np.isfinite(fill)) else None


def _scaler(step) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    if type(step) is not StandardScaler:
        return None
    mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
    scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
    return mean, scale


def _numeric_block(columns: tuple[str, ...], steps: list) -> Block | None:
    from_booleans = type(steps[0]) is FunctionTransformer
    if from_booleans:
        convert = steps.pop(0)
        if convert.func is not as_float or convert.kw_args or convert.validate:
            return None
    fill = _fill_values(steps.pop(0)) if steps else None
    scaling = _scaler(steps.pop(0)) if steps else (None, None)
    if fill is None or scaling is None or steps or len(fill) != len(columns):
        return None
    mean, scale = scaling

    def compute(values: list[np.ndarray]) -> np.ndarray:
        if from_booleans:  # np.asarray(frame, float64) of bool, int or float columns
            values = [v.astype(np.float64) if v.dtype.kind == "b" else v for v in values]
        block = np.column_stack([_numeric(v, c) for v, c in zip(values, columns, strict=True)])
        if np.isinf(block).any():  # SimpleImputer raises on infinity
            raise FastPathUnsupported("infinite value")
        block = np.where(np.isnan(block), fill, block)
        if mean is not None:
            block -= mean
        if scale is not None:
            block /= scale
        return block

    return Block(
        columns, len(columns), compute, dict(zip(columns, [[v] for v in fill], strict=True))
    )


def _one_hot_block(columns: tuple[str, ...], steps: list) -> Block | None:
    if len(steps) != 2 or type(steps[0]) is not SimpleImputer:
        return None
    imputer, encoder = steps
    fills = list(imputer.statistics_)
    if imputer.strategy != "constant" or imputer.add_indicator or imputer._fit_dtype.kind != "O":
        return None
    if not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)):
        return None
    if type(encoder) is not OneHotEncoder or encoder.handle_unknown != "ignore":
        return None
    if encoder.drop is not None or encoder._infrequent_enabled or encoder.sparse_output:
        return None
    if encoder.dtype not in (np.float64, float) or len(encoder.categories_) != len(columns):
        return None
    if not all(type(f) is str for f in fills):
        return None
    lookups, offsets, width = [], [], 0
    for categories in encoder.categories_:
        if not all(type(c) is str or c is None for c in categories):
            return None
        lookups.append({c: i for i, c in enumerate(categories)})
        offsets.append(width)
        width += len(categories)

    def compute(values: list[np.ndarray]) -> np.ndarray:
        block = np.zeros((len(values[0]), width), dtype=np.float64)
        for j, column in enumerate(values):
            lookup, fill, offset = lookups[j], fills[j], offsets[j]
            for i, value in enumerate(_strings(column, columns[j])):
                # The imputer replaces NaN only (None != None is False); unknown: all zeros.
                if is_nan(value):
                    value = fill
                elif type(value) is not str and value is not None:
                    raise FastPathUnsupported(f"column {columns[j]!r} holds a {type(value)}")
                index = lookup.get(value)
                if index is not None:
                    block[i, offset + index] = 1.0
        return block

    probes = {
        column: [*(c for c in categories if c is not None), fills[j]]
        for j, (column, categories) in enumerate(zip(columns, encoder.categories_, strict=True))
    }
    return Block(columns, width, compute, probes)


def compile_block(transformer, columns) -> Block | None:
    """One fitted ColumnTransformer entry (a Pipeline over named columns) as a Block."""
    if type(transformer) is not Pipeline or not all(isinstance(c, str) for c in columns):
        return None
    steps = [step for _, step in transformer.steps if step not in (None, "passthrough")]
    if not steps:
        return None
    if type(steps[0]) is SimpleImputer and steps[0].strategy == "constant" and len(steps) == 2:
        return _one_hot_block(tuple(columns), steps)
    return _numeric_block(tuple(columns), steps)
