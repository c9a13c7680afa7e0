"""PSI drift check on 1M rows x (20 numeric + 5 categorical) features, against its alternatives.

In this one process, on seeded synthetic data (reference and a mildly drifted current batch, 2%
NaN in 4 numeric columns, object-dtype categoricals with 3..100 categories, unseen categories and
missing values in the current batch), it times (median of ``--repeats`` after one warm-up run):

* ``feature_psi``: ``mlplatform.monitoring.drift.feature_psi`` against a cached profile;
* ``floor``: one plain pass over the same data: ``np.sum`` of every numeric column plus
  ``value_counts(dropna=False)`` of every categorical one (any PSI has to hash each categorical
  value once; the numeric-only ``np.sum`` is printed too);
* ``naive pandas``: per feature ``pd.cut(col, edges)`` + ``value_counts(normalize=True)``, then
  ``psi`` on the same buckets (its PSI must equal ``feature_psi``'s within ``PSI_TOLERANCE``);
* ``evidently``: Evidently's legacy PSI stat test per feature (its own Sturges / category bins, so
  its values differ; it rebins the raw reference on every call: it has no cached profile);
* ``tick``: ``pd.read_pickle`` of the 1M-row current frame + ``feature_psi`` + ``fires()``.

Goals (exit 1 when one is missed): feature_psi <= ``MAX_FLOOR_RATIO`` x floor, naive pandas and
Evidently >= ``MIN_SPEEDUP`` x slower than feature_psi, the tick under ``MAX_TICK_SECONDS``.

Usage: ``python benchmarks/psi.py [--rows 1000000] [--repeats 3]`` (Evidently: ``pip install
-e .[bench]``; without it that row is skipped and reported as such).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from report import machine_line, verdict

import mlplatform.monitoring.reference as reference_module
from mlplatform.monitoring.drift import feature_psi, psi
from mlplatform.monitoring.reference import build_profile

MAX_FLOOR_RATIO = 3.0
MIN_SPEEDUP = 50.0
MAX_TICK_SECONDS = 2.0
PSI_TOLERANCE = 1e-9
CARDINALITIES = (3, 5, 10, 30, 100)


def make_frame(rows: int, seed: int, shift: float) -> pd.DataFrame:
    """20 numeric columns (normal, lognormal with NaN, Poisson and rounded gamma) + 5 categorical."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for i in range(8):
        data[f"normal_{i}"] = rng.normal(shift * i / 8, 1.0, rows)
    for i in range(4):
        values = rng.lognormal(np.log(60.0) + shift / 4, 0.5, rows)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"lognormal_{i}"] = values
    for i in range(4):
        data[f"poisson_{i}"] = rng.poisson(1.0 + i + shift, rows)
    for i in range(4):
        data[f"gamma_int_{i}"] = np.round(rng.gamma(1.6, 14.0 * (1 + shift), rows)).astype(np.int64)
    for k in CARDINALITIES:
        # Zipf-like shares; the current batch has 1% unseen and 1% missing values.
        names = np.array([f"c{k}_{j}" for j in range(k)] + [f"new_{k}", None], dtype=object)
        weights = np.append(1.0 / np.arange(1, k + 1), [0.0, 0.0])
        weights = weights / weights.sum() * (1 - 2 * shift / 10)
        weights[-2:] = shift / 10
        data[f"cat_{k}"] = names[rng.choice(len(names), rows, p=weights / weights.sum())]
    return pd.DataFrame(data)


def median_of(repeats: int, run: Callable[[], object]) -> float:
    """Median wall-clock seconds of ``repeats`` runs after one untimed warm-up run."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def floor_pass(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
    """The least work any PSI needs: read every numeric value and hash every categorical one."""
    for name in numeric:
        np.sum(frame[name].to_numpy())
    for name in categorical:
        frame[name].value_counts(dropna=False)


def naive_psi(profile, frame: pd.DataFrame) -> dict[str, float]:
    """PSI the common pandas way, on the profile's own buckets."""
    out = {}
    for name, p in profile.numeric.items():
        cut = pd.cut(frame[name], [-np.inf, *p.edges, np.inf], right=False)
        shares = cut.value_counts(normalize=True, dropna=False, sort=False)
        current = [shares.get(b, 0.0) for b in cut.cat.categories] + [shares.iloc[-1:].sum()]
        if not cut.isna().any():
            current[-1] = 0.0
        out[name] = psi(p.proportions, current)
    for name, p in profile.categorical.items():
        shares = frame[name].value_counts(normalize=True, dropna=False)
        known = shares[shares.index.isin(p.categories)]
        missing = float(shares[shares.index.isna()].sum())
        unseen = 1.0 - known.sum() - missing
        current = [float(known.get(c, 0.0)) for c in p.categories] + [max(unseen, 0.0), missing]
        out[name] = psi(p.proportions, current)
    return out


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(machine_line(numpy=np.__version__, pandas=pd.__version__))
    reference = make_frame(args.rows, args.seed, shift=0.0)
    current = make_frame(args.rows, args.seed + 1, shift=0.1)
    numeric = [c for c in current.columns if not c.startswith("cat_")]
    categorical = [c for c in current.columns if c.startswith("cat_")]
    started = time.perf_counter()
    profile = build_profile(reference, numeric, categorical)
    print(
        f"data: {args.rows} rows x {len(numeric)} numeric + {len(categorical)} categorical; "
        f"profile built once in {time.perf_counter() - started:.2f} s"
    )

    ours = median_of(args.repeats, lambda: feature_psi(profile, current))
    floor = median_of(args.repeats, lambda: floor_pass(current, numeric, categorical))
    numeric_sum = median_of(args.repeats, lambda: floor_pass(current, numeric, []))
    original, reference_module._COMPARE_MAX_EDGES = reference_module._COMPARE_MAX_EDGES, -1
    searchsorted = median_of(args.repeats, lambda: feature_psi(profile, current))
    reference_module._COMPARE_MAX_EDGES = original
    naive = median_of(args.repeats, lambda: naive_psi(profile, current))
    try:
        import evidently

        evident = median_of(
            args.repeats, lambda: evidently_psi(reference, current, numeric, categorical)
        )
        evident_note = f"evidently {evidently.__version__}, legacy PSI stat test"
    except ImportError:
        evident, evident_note = None, "SKIPPED: evidently not installed (pip install -e .[bench])"

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "current.pkl"
        current.to_pickle(path)

        def tick() -> tuple[bool, str]:
            return feature_psi(profile, pd.read_pickle(path)).fires()

        tick_seconds = median_of(args.repeats, tick)
        decision = tick()

    report = feature_psi(profile, current)
    reference_psi = naive_psi(profile, current)
    error = max(abs(f.psi - reference_psi[n]) for n, f in report.features.items())

    rows = [
        ("method", "seconds", "x floor", "note"),
        ("(a) feature_psi", f"{ours:.4f}", f"{ours / floor:.2f}", "cached profile; auto binning"),
        (
            "    same, searchsorted",
            f"{searchsorted:.4f}",
            f"{searchsorted / floor:.2f}",
            "np.searchsorted + np.bincount for every numeric column",
        ),
        ("(b) floor", f"{floor:.4f}", "1.00", "np.sum numeric + value_counts categorical"),
        ("    numeric np.sum only", f"{numeric_sum:.4f}", f"{numeric_sum / floor:.2f}", ""),
        ("(c) naive pandas", f"{naive:.4f}", f"{naive / floor:.2f}", "pd.cut + value_counts"),
        (
            "(d) evidently",
            "-" if evident is None else f"{evident:.4f}",
            "-" if evident is None else f"{evident / floor:.2f}",
            evident_note,
        ),
        ("(e) tick", f"{tick_seconds:.4f}", f"{tick_seconds / floor:.2f}", "read_pickle + PSI"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]))
    speedups = f"naive / feature_psi: {naive / ours:.0f}x"
    if evident is not None:
        speedups += f", evidently / feature_psi: {evident / ours:.0f}x"
    print(speedups + f", feature_psi / numeric np.sum: {ours / numeric_sum:.0f}x")
    # No implementation can beat the floor, so naive / floor bounds any PSI's speed-up over naive.
    print(
        f"best possible speed-up at the floor: naive {naive / floor:.1f}x"
        + ("" if evident is None else f", evidently {evident / floor:.1f}x")
    )
    print(f"max |PSI(feature_psi) - PSI(naive pandas)|: {error:.2e}")
    print(f"tick decision: fires={decision[0]}: {decision[1]}")

    problems = []
    if ours > MAX_FLOOR_RATIO * floor:
        problems.append(f"feature_psi costs {ours / floor:.2f}x the floor > {MAX_FLOOR_RATIO:g}x")
    if naive < MIN_SPEEDUP * ours:
        problems.append(f"naive pandas is only {naive / ours:.0f}x slower than feature_psi")
    if evident is not None and evident < MIN_SPEEDUP * ours:
        problems.append(f"evidently is only {evident / ours:.0f}x slower than feature_psi")
    if tick_seconds >= MAX_TICK_SECONDS:
        problems.append(f"tick takes {tick_seconds:.2f} s >= {MAX_TICK_SECONDS:g} s")
    if error > PSI_TOLERANCE:
        problems.append(f"PSI differs from naive pandas by {error:.2e}")
    return verdict(problems)


if __name__ == "__main__":
    sys.exit(main())
