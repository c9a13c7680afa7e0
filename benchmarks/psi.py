"""PSI drift check on 1M rows x (20 numeric + 5 categorical) features, against its alternatives.

In this one process, on seeded synthetic data (reference and a mildly drifted current batch, 2%
NaN in 4 numeric columns, categoricals with 3..100 categories, unseen categories and missing
values in the current batch), typed by the pipeline's own ``coerce_frame`` so every column has
the dtype the sensor reads from a validated day (integers ``Int64``, categories as validation
stores them), it times (median of ``--repeats`` after one warm-up run):

* ``feature_psi``: ``mlplatform.monitoring.drift.feature_psi`` against a cached profile, as the
  sensor calls it (columns counted by the numba kernels on one thread per CPU), on one thread,
  and with numpy counting the numeric columns (one pass per edge) instead of the kernels;
* ``floor``: one plain pass over the same data: ``np.sum`` of every numeric column plus
  ``value_counts(dropna=False)`` of every categorical one (the least a categorical count costs in
  its dtype; the numeric-only ``np.sum`` is printed too);
* ``naive pandas``: what a monitor without a cached profile does each tick: per numeric feature
  the reference's quantile edges, ``pd.cut`` of reference and current on them and
  ``value_counts(normalize=True)`` of each; per categorical one ``value_counts`` of both; then
  ``psi`` on the same buckets (its PSI must equal ``feature_psi``'s within ``PSI_TOLERANCE``).
  The same on the profile's cached edges (current batch only) is printed too, as information;
* ``evidently``: Evidently's legacy PSI stat test per feature (its own Sturges / category bins, so
  its values differ; it rebins the raw reference on every call: it has no cached profile);
* ``tick``: ``pd.read_pickle`` of the 1M-row validated frame + ``feature_psi`` + ``fires()``.

Goals (exit 1 when one is missed): feature_psi <= ``MAX_FLOOR_RATIO`` x floor, naive pandas (per
tick) and Evidently >= ``MIN_SPEEDUP`` x slower than feature_psi, the tick under
``MAX_TICK_SECONDS``, the PSI equal to naive pandas' within ``PSI_TOLERANCE``.

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
from types import SimpleNamespace

import numpy as np
import pandas as pd
from psi_baselines import evidently_psi, naive_cached_psi, naive_psi, numpy_feature_psi
from report import Figure, Recorder, ratio_figure

from mlplatform.datasets.spec import ColumnSpec
from mlplatform.datasets.validation import coerce_frame
from mlplatform.monitoring.drift import feature_psi
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
    return typed(pd.DataFrame(data))


def typed(raw: pd.DataFrame) -> pd.DataFrame:
    """The frame as validation stores a day: each column in its spec type (``coerce_frame``)."""
    kinds = {"normal": "float", "lognormal": "float", "poisson": "integer", "gamma": "integer"}
    columns = {}
    for name in raw.columns:
        kind = "category" if name.startswith("cat_") else kinds[name.split("_")[0]]
        columns[name] = ColumnSpec(name, kind, nullable=True)
    frame, violations = coerce_frame(raw, SimpleNamespace(columns=columns))
    assert not violations, violations
    return frame


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
    """The least work any PSI needs: read every numeric value, count every categorical one
    (``value_counts``: a hash per value for object dtype, a count of the codes for category)."""
    for name in numeric:
        np.sum(frame[name].to_numpy())
    for name in categorical:
        frame[name].value_counts(dropna=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    recorder = Recorder.start("psi", numpy=np.__version__, pandas=pd.__version__)
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

    dtypes = current.dtypes.astype(str).value_counts()
    print("dtypes (as validated): " + ", ".join(f"{t} x{n}" for t, n in dtypes.items()))

    ours = median_of(args.repeats, lambda: feature_psi(profile, current))
    serial = median_of(args.repeats, lambda: feature_psi(profile, current, workers=1))
    floor = median_of(args.repeats, lambda: floor_pass(current, numeric, categorical))
    numeric_sum = median_of(args.repeats, lambda: floor_pass(current, numeric, []))
    numpy_passes = median_of(args.repeats, lambda: numpy_feature_psi(profile, current))
    naive = median_of(args.repeats, lambda: naive_psi(reference, current, profile))
    cached = median_of(args.repeats, lambda: naive_cached_psi(profile, current))
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
    errors = {
        variant: max(abs(f.psi - values[n]) for n, f in report.features.items())
        for variant, values in (
            ("naive", naive_psi(reference, current, profile)),
            ("cached", naive_cached_psi(profile, current)),
        )
    }

    def row(label: str, seconds: float | None, note: str) -> tuple[str, str, str, str]:
        if seconds is None:
            return (label, "-", "-", note)
        return (label, f"{seconds:.4f}", f"{seconds / floor:.2f}", note)

    rows = [
        ("method", "seconds", "x floor", "note"),
        row("(a) feature_psi", ours, "cached profile, as the sensor runs it (threads)"),
        row("    same, 1 thread", serial, "workers=1"),
        row("    same, numpy passes", numpy_passes, "numeric columns: one numpy pass per edge"),
        row("(b) floor", floor, "np.sum numeric + value_counts categorical"),
        row("    numeric np.sum only", numeric_sum, ""),
        row("(c) naive pandas", naive, "per tick: reference quantiles, pd.cut + value_counts"),
        row("    naive, cached edges", cached, "information only: profile's edges, current only"),
        row("(d) evidently", evident, evident_note),
        row("(e) tick", tick_seconds, "read_pickle + feature_psi + fires()"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        cells = [cell.ljust(width) for cell, width in zip(r[:3], widths, strict=True)]
        print("  ".join([*cells, r[3]]))
    print(
        f"feature_psi / numeric np.sum: {ours / numeric_sum:.1f}x; naive with cached edges / "
        f"feature_psi: {cached / ours:.0f}x (not a goal)"
    )
    # No implementation can beat the floor, so naive / floor bounds any PSI's speed-up over naive.
    print(
        f"best possible speed-up at the floor: naive {naive / floor:.1f}x"
        + ("" if evident is None else f", evidently {evident / floor:.1f}x")
    )
    print(f"max |PSI(feature_psi) - PSI(naive, cached edges)|: {errors['cached']:.2e}")
    print(f"tick decision: fires={decision[0]}: {decision[1]}")

    speedup = "skipped" if evident is None else f"{evident / ours:.0f}x"
    goals = [
        (f"feature_psi <= {MAX_FLOOR_RATIO:g}x floor", f"{ours / floor:.2f}x",
         ours <= MAX_FLOOR_RATIO * floor),
        (f"naive pandas >= {MIN_SPEEDUP:g}x feature_psi", f"{naive / ours:.0f}x",
         naive >= MIN_SPEEDUP * ours),
        (f"evidently >= {MIN_SPEEDUP:g}x feature_psi", speedup,
         evident is None or evident >= MIN_SPEEDUP * ours),
        (f"tick < {MAX_TICK_SECONDS:g} s", f"{tick_seconds:.2f} s", tick_seconds < MAX_TICK_SECONDS),
        (f"|PSI - naive PSI| <= {PSI_TOLERANCE:g}", f"{errors['naive']:.1e}",
         errors["naive"] <= PSI_TOLERANCE),
    ]  # fmt: skip
    width = max(len(goal) for goal, _, _ in goals)
    for goal, value, met in goals:
        print(f"goal {goal.ljust(width)}  {value:>9}  {'met' if met else 'MISSED'}")
    shape = f"{args.rows:,} rows x {len(numeric)} numeric + {len(categorical)} categorical"
    recorder.add(
        ratio_figure("feature_psi (cached profile)", ours, floor, "floor pass",
                     at_most=MAX_FLOOR_RATIO, note=f"{shape}; median of {args.repeats}"),
        ratio_figure("naive pandas PSI (per tick)", naive, ours, "feature_psi",
                     at_least=MIN_SPEEDUP, note="reference quantiles, pd.cut + value_counts"),
        evidently_figure(evident, ours, evident_note),
        Figure(f"drift tick: read a {args.rows:,}-row day, feature_psi, fires()", tick_seconds, "s",
               goal=f"< {MAX_TICK_SECONDS:g} s", limit=MAX_TICK_SECONDS,
               met=tick_seconds < MAX_TICK_SECONDS),
        ratio_figure("feature_psi, 1 thread", serial, floor, "floor pass",
                     note="information: workers=1"),
        ratio_figure("feature_psi, numpy instead of the kernels", numpy_passes, ours, "feature_psi",
                     note="information: numeric columns counted by one numpy pass per edge"),
        Figure("max |PSI (feature_psi) - PSI (naive pandas)|", errors["naive"],
               goal=f"<= {PSI_TOLERANCE:g}", limit=PSI_TOLERANCE,
               met=errors["naive"] <= PSI_TOLERANCE, plot=False),
    )  # fmt: skip
    return recorder.finish([f"{goal}: {value}" for goal, value, met in goals if not met])


def evidently_figure(evident: float | None, ours: float, note: str) -> Figure:
    """Evidently's PSI against feature_psi, or the skipped goal when it is not installed."""
    name = "Evidently PSI (legacy stat test)"
    if evident is None:
        goal = f">= {MIN_SPEEDUP:g}x feature_psi"
        return Figure(name, None, "s", ours, "feature_psi", goal=goal, note=note)
    return ratio_figure(name, evident, ours, "feature_psi", at_least=MIN_SPEEDUP, note=note)


if __name__ == "__main__":
    sys.exit(main())
