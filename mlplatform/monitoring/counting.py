"""Bucket counts of a batch's columns: quantile buckets of numeric ones, categories of the rest.

Exact counts, the same for every column dtype validation may store (float64, nullable Int64,
category): from ``KERNEL_MIN_ROWS`` rows on they come from the numba kernels (``kernels``),
below from numpy, which answers a small batch before numba would even have loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Integer columns are compared as integers against ceil(edge), which equals comparing their float
# values with the edge while |edge| < 2**53 (beyond, neighbouring integers share one float).
_EXACT_INTEGER_EDGE = 2.0**53
# Below this many rows numpy's passes cost well under a millisecond a column, less than loading
# numba and its cached machine code (~0.5 s per process) costs a process that profiles a small
# training set; from it on the kernels are ~3x faster (benchmarks/psi.py).
KERNEL_MIN_ROWS = 100_000


def as_float(values: pd.Series) -> np.ndarray:
    """The column as float64 with NaN for missing; no copy for a float64 column."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "fiub":
        return values.to_numpy(dtype=np.float64, copy=False)
    if pd.api.types.is_numeric_dtype(values.dtype):
        # Nullable Int64 / Float64 / boolean (how validation stores integers): one cast, masked
        # values as NaN, ~20x cheaper than going through pd.to_numeric.
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _kernels():
    """The numba kernels, imported on first use: numba's import alone costs ~0.3 s, which every
    process that loads the Dagster definitions would otherwise pay."""
    from mlplatform.monitoring import kernels

    return kernels


def column_counts(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    """``bin_counts`` of a column, counted in its own dtype (integers without a float copy).

    Args:
        values: The column (any numeric dtype; other values are parsed, unparseable ones NaN).
        edges: Sorted distinct finite edges, float64.

    Returns:
        int64 counts of the m + 1 buckets of the m edges, then of missing values.
    """
    data, mask = _signed_integers(values)
    if (
        data is None
        or len(values) < KERNEL_MIN_ROWS
        or not np.all(np.abs(edges) < _EXACT_INTEGER_EDGE)
    ):
        return bin_counts(as_float(values), edges)
    # Counted as they are, ~3x cheaper than a float64 copy with NaN for missing values first.
    # For integers x, x >= e exactly when x > ceil(e) - 1.
    below = np.ceil(edges).astype(np.int64) - 1
    missing = 0 if mask is None else int(np.count_nonzero(mask))
    if missing:
        at_least = _kernels().masked_integers_above(data, mask, below)
    else:  # the common case, ~1.4x faster without reading the mask
        at_least = _kernels().integers_above(data, below)
    return _buckets(values.size - missing, at_least, missing)


def _signed_integers(values: pd.Series) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(values, missing-mask or None) of a signed integer column, (None, None) for other dtypes.

    Validation stores integers as nullable Int64: a pandas ``IntegerArray`` keeps its values and
    its missing-mask as two numpy arrays, read here without a copy.
    """
    if isinstance(values.dtype, np.dtype):
        return (values.to_numpy(), None) if values.dtype.kind == "i" else (None, None)
    array = values.array
    if isinstance(array, pd.arrays.IntegerArray) and array.dtype.kind == "i":
        return array._data, array._mask
    return None, None


def bin_counts(values: np.ndarray, edges: np.ndarray, method: str = "auto") -> np.ndarray:
    """Counts of the buckets (-inf, e_1), [e_1, e_2), ..., [e_m, inf) of a float array, then NaN.

    Args:
        values: 1-D float64 array.
        edges: Sorted distinct finite edges e_1 < ... < e_m, float64.
        method: "kernel" (one read of the values, see ``kernels``), the numpy references
            "compare" (one counting pass per edge) and "searchsorted" (a binary search per
            value, then a bincount), or "auto": the kernel from ``KERNEL_MIN_ROWS`` values on,
            else "compare". All give identical counts.

    Returns:
        int64 array of m + 2 counts.

    Raises:
        ValueError: An unknown ``method``.
    """
    if method not in ("auto", "kernel", "compare", "searchsorted"):
        raise ValueError(f"unknown counting method {method!r}")
    if method == "auto":
        method = "kernel" if values.size >= KERNEL_MIN_ROWS else "compare"
    if method == "kernel":
        counts = _kernels().float_at_least(values, edges)
        nan = int(counts[-1])
        return _buckets(values.size - nan, counts[:-1], nan)
    nan = int(np.count_nonzero(np.isnan(values)))
    if method == "compare":
        # NaN compares False, so it is in no "x >= e" count.
        at_least = [np.count_nonzero(values >= edge) for edge in edges]
        return _buckets(values.size - nan, np.asarray(at_least, dtype=np.int64), nan)
    # side="right" puts x == e_i into bucket i ([e_i, e_i+1)); NaN sorts last, so it lands in the
    # top bucket and is moved to its own.
    codes = np.searchsorted(edges, values, side="right")
    counts = np.bincount(codes, minlength=edges.size + 1).astype(np.int64)
    counts[-1] -= nan
    return np.append(counts, nan)


def _buckets(present: int, at_least: np.ndarray, missing: int) -> np.ndarray:
    """Bucket counts from the rows at or above each sorted edge: m + 1 buckets, then missing."""
    # at_least[i] = rows in buckets i.. ; the differences are the buckets.
    bounds = np.concatenate(([present], at_least, [0])).astype(np.int64)
    return np.append(-np.diff(bounds), missing)


def category_counts(values: pd.Series, categories: tuple[Any, ...]) -> np.ndarray:
    """Counts per categorical bucket of a column.

    Args:
        values: The column, category dtype or any other.
        categories: The reference categories (JSON scalars).

    Returns:
        int64 counts of each reference category, then of unseen values, then of missing ones.
    """
    index = {c: i for i, c in enumerate(categories)}
    unseen, missing = len(categories), len(categories) + 1
    counts = np.zeros(len(categories) + 2, dtype=np.int64)
    if isinstance(values.dtype, pd.CategoricalDtype):
        # Category dtype (validation's): a count of the codes, missing values coded -1.
        codes, dtype_categories = values.cat.codes.to_numpy(), values.cat.categories
        if codes.size >= KERNEL_MIN_ROWS:
            per_code = _kernels().code_counts(codes, len(dtype_categories))
        else:
            per_code = np.bincount(codes.astype(np.intp) + 1, minlength=len(dtype_categories) + 1)
        counts[missing] = per_code[0]
        for value, count in zip(dtype_categories, per_code[1:].tolist(), strict=True):
            counts[index.get(json_scalar(value), unseen)] += count
        return counts
    # One hashing pass (value_counts) then a lookup over the few distinct values. This gives the
    # same buckets as pd.Categorical(values, categories).codes at about a third of its cost, and
    # tells missing values apart from unseen ones (Categorical codes both as -1).
    for value, count in values.value_counts(dropna=False, sort=False).items():
        bucket = missing if pd.isna(value) else index.get(json_scalar(value), unseen)
        counts[bucket] += count
    return counts


def json_scalar(value: Any) -> Any:
    """numpy scalars as Python ones, so categories are JSON scalars and compare as such."""
    return value.item() if isinstance(value, np.generic) else value
