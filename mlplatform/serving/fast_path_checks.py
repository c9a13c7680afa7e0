"""The proof a compiled fast path must give before it scores anything: the rows it is checked on
and the check itself.

The rows start from real model-input rows (the model's input example) and vary one column at a
time over values that exercise every rebuilt step: missing values, unseen and known categories,
the empty string, odd date strings, zero, negative zero, huge and tiny numbers, integers beyond
2**53, and for the trees every split threshold on a raw column with its two floating-point
neighbours (so ``<=`` against ``<`` shows). Random mixes of all those values follow.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from mlplatform.serving.fast_path_steps import FastPathUnsupported, is_nan

TOLERANCE = 1e-12
RANDOM_ROWS = 256
MAX_VALUES_PER_COLUMN = 1000
# Model calls spent locating the rows a batch fails on (each halving is one call).
MAX_BISECTIONS = 256
# Rows re-scored alone and in small batches: the server's batches are small.
SINGLE_ROW_STRIDE = 7
WINDOW = 5

DATE_PROBES = (
    "", "not a date", "2026-02-29", "2026-03-01", "2026-03-01T12:30:00+02:00",
    "2026-03-01T23:59:59Z", "2026-03-01 08:00", "20260301", "2026-13-01", "2026-03",
    "1677-09-21", "2262-04-12", "1900-01-01", "9999-12-31",
)  # fmt: skip
GENERIC_PROBES = {
    "f": [None, math.nan, 0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 5e-324, 1e300, -1e300, 2.0**53 + 2],
    "i": [0, 1, -1, 2**31, -(2**31), 2**53 + 1, -(2**53 + 1), 2**62, -(2**62)],
    "u": [0, 1, 2**53 + 1],
    "b": [True, False],
    "O": [None, math.nan, "", "__missing__", "__unseen__", "NORTH", " north"],
}


def _fits(value, dtype: np.dtype) -> list:
    """``value`` as it can appear in a column of ``dtype`` (floats round both ways into ints)."""
    kind = dtype.kind
    if kind == "b":
        return [bool(value)] if isinstance(value, bool | np.bool_) else []
    if isinstance(value, bool | np.bool_):
        return []
    if kind in "iu":
        if isinstance(value, float) and math.isfinite(value):
            candidates = {math.floor(value), math.ceil(value)}
        elif isinstance(value, int):
            candidates = {value}
        else:
            return []
        info = np.iinfo(dtype)
        return sorted(c for c in candidates if info.min <= c <= info.max)
    if kind == "f":
        if value is None:
            return [math.nan]
        return [float(value)] if isinstance(value, int | float) else []
    if kind == "O":
        return [value] if value is None or isinstance(value, str) or is_nan(value) else []
    return []


def _distinct(values: list) -> list:
    seen, out = set(), []
    for value in values:
        key = (type(value).__name__, repr(value))
        if key not in seen:
            seen.add(key)
            out.append(value)
    if len(out) > MAX_VALUES_PER_COLUMN:
        keep = np.linspace(0, len(out) - 1, MAX_VALUES_PER_COLUMN).round().astype(int)
        out = [out[i] for i in sorted(set(keep.tolist()))]
    return out


def verification_rows(sample: pd.DataFrame, probes: dict[str, list], seed: int = 0):
    """The sample rows, then one row per (column, probe value), then random mixes.

    Args:
        sample: Real model-input rows; their columns and dtypes are kept.
        probes: Extra values per column (categories, thresholds, dates).
        seed: Seed of the random mixes.

    Returns:
        A frame with the sample's columns and dtypes, the sample rows first.
    """
    base = sample.reset_index(drop=True)
    n_base = len(base)
    columns = {name: base[name].tolist() for name in base.columns}
    pools = {}
    row = 0
    for name in base.columns:
        dtype = base[name].dtype
        candidates = [*GENERIC_PROBES.get(dtype.kind, []), *probes.get(name, [])]
        values = _distinct([fit for value in candidates for fit in _fits(value, dtype)])
        pools[name] = values + columns[name][:n_base]
        for value in values:
            for other in base.columns:
                columns[other].append(value if other == name else columns[other][row % n_base])
            row += 1
    rng = np.random.default_rng(seed)
    for _ in range(RANDOM_ROWS):
        for name in base.columns:
            columns[name].append(pools[name][rng.integers(len(pools[name]))])
    return pd.DataFrame({name: pd.Series(v, dtype=base[name].dtype) for name, v in columns.items()})


class _Unverifiable(Exception):
    """Verification cannot conclude (the fast path misbehaved, or too many refused rows)."""


def _outcomes(score: Callable, rows: pd.DataFrame, budget: list[int], fast: bool) -> np.ndarray:
    """Per row: the probability, or NaN where scoring refuses it (found by halving a batch)."""
    try:
        out = np.asarray(score(rows), dtype=np.float64)
        if out.shape != (len(rows),):
            raise ValueError(f"{out.shape} probabilities for {len(rows)} rows")
        # Answers the server would refuse (NaN, outside [0, 1]) count as refusals.
        return np.where((out >= 0) & (out <= 1), out, np.nan)
    except FastPathUnsupported:
        pass
    except Exception as exc:  # noqa: BLE001 - the model's refusals; the fast path's bugs
        if fast:
            raise _Unverifiable(f"the fast path raised {type(exc).__name__}: {exc}") from exc
    if len(rows) == 1:
        return np.array([np.nan])
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unverifiable("too many rows refused to locate them")
    middle = len(rows) // 2
    halves = (rows.iloc[:middle], rows.iloc[middle:])
    return np.concatenate([_outcomes(score, half, budget, fast) for half in halves])


def _row(rows: pd.DataFrame, i: int) -> str:
    return f"row {i} {rows.iloc[i].to_dict()}"


def _compare(got: np.ndarray, expected: np.ndarray, rows: pd.DataFrame, what: str) -> str | None:
    answered = ~np.isnan(got)
    wrongly = np.flatnonzero(answered & np.isnan(expected))
    if len(wrongly):
        i = int(wrongly[0])
        return f"{what}: {_row(rows, i)} is refused by the model but answered {got[i]!r}"
    gap = np.where(answered, np.abs(got - expected), 0.0)
    if (gap > TOLERANCE).any():
        i = int(np.argmax(gap))
        return f"{what}: {_row(rows, i)} scores {got[i]!r}, the model {expected[i]!r}"
    return None


def same_features(preprocess: Callable, transform: Callable, rows: pd.DataFrame) -> str | None:
    """Checks the fast path's model input against the pipeline's, bit for bit (NaN equal).

    A difference too small to move a probability on these rows could still move one on others
    (a value on the other side of a split threshold), so the matrices must be identical.
    """
    got = preprocess(rows)
    expected = np.asarray(transform(rows), dtype=np.float64)
    if got.shape != expected.shape:
        return f"features: shape {got.shape}, the pipeline's {expected.shape}"
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    if not same.all():
        i, j = map(int, np.argwhere(~same)[0])
        return f"features: {_row(rows, i)} feature {j} is {got[i, j]!r}, not {expected[i, j]!r}"
    return None


def verify(score: Callable, reference: Callable, rows: pd.DataFrame, n_sample: int) -> str | None:
    """Checks the fast path against the model on ``rows``; None when it may be used.

    It may be used when every row both answer is within ``TOLERANCE``, no row the model refuses
    is answered, the first ``n_sample`` (real) rows are all answered, and the answers are the
    same for rows scored alone and in small batches. A row only the fast path refuses is fine:
    serving gives it to the model.

    Returns:
        None, or what failed (with the row).
    """
    try:
        expected = _outcomes(reference, rows, [MAX_BISECTIONS], fast=False)
        got = _outcomes(score, rows, [MAX_BISECTIONS], fast=True)
        problem = _compare(got, expected, rows, "batch")
        if problem:
            return problem
        unanswered = np.flatnonzero(np.isnan(got[:n_sample]))
        if len(unanswered):
            return f"the fast path refuses the real {_row(rows, int(unanswered[0]))}"
        picked = sorted({*range(n_sample), *range(0, len(rows), SINGLE_ROW_STRIDE)})
        singles = [_outcomes(score, rows.iloc[[i]], [0], fast=True)[0] for i in picked]
        problem = _compare(np.array(singles), expected[picked], rows.iloc[picked], "alone")
        if problem:
            return problem
        windows = [
            _outcomes(score, rows.iloc[start : start + WINDOW], [2 * WINDOW], fast=True)
            for start in range(0, min(len(rows), 40 * WINDOW), WINDOW)
        ]
        batched = np.concatenate(windows)
        return _compare(batched, expected[: len(batched)], rows, f"batches of {WINDOW}")
    except _Unverifiable as exc:
        return str(exc)
