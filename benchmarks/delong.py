"""Paired DeLong CI vs sklearn's roc_auc_score and a paired bootstrap, side by side.

On one simulated holdout (25% positives, two correlated models, scores rounded to 3 decimals so
there are many ties) this times, in this one process:

* ``roc_auc_score``: one ``sklearn.metrics.roc_auc_score`` call (the unit of cost),
* ``paired DeLong``: ``paired_auc_difference`` (both AUCs, their covariance, the 95% CI), and
* ``paired bootstrap``: resample rows with replacement and call ``roc_auc_score`` for both models;
  ``--resamples`` resamples are timed and the cost of 1,000 is extrapolated linearly (each
  resample does the same work).

Goals (exit 1 when one is missed): the paired DeLong CI costs at most ``MAX_DELONG_RATIO`` times
one ``roc_auc_score`` call, at least ``MIN_BOOTSTRAP_RATIO`` times less than 1,000 bootstrap
resamples, and both DeLong AUCs equal ``roc_auc_score`` within ``AUC_TOLERANCE``.

Usage: ``python benchmarks/delong.py [--rows 1000000] [--repeats 5] [--resamples 50]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import sklearn
from report import Figure, Recorder, ratio_figure
from scipy import stats
from sklearn.metrics import roc_auc_score

from mlplatform.ml.metrics import auc_with_ci, paired_auc_difference

MAX_DELONG_RATIO = 2.0
MIN_BOOTSTRAP_RATIO = 500.0
AUC_TOLERANCE = 1e-12
BOOTSTRAP_RESAMPLES = 1_000


def holdout(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' tied scores (true AUCs ~0.80 and ~0.79, score correlation 0.85)."""
    rng = np.random.default_rng(seed)
    y = rng.random(rows) < 0.25
    shared, own = rng.standard_normal(rows), rng.standard_normal(rows)
    a = shared + np.sqrt(2) * stats.norm.ppf(0.80) * y
    b = 0.85 * shared + np.sqrt(1 - 0.85**2) * own + np.sqrt(2) * stats.norm.ppf(0.79) * y
    return y, np.round(a, 3), np.round(b, 3)


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """Fastest of ``repeats`` wall-clock timings, which is the least disturbed by other load."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def bootstrap_seconds(y, a, b, resamples: int, seed: int) -> float:
    """Wall-clock seconds of ``resamples`` paired bootstrap resamples with roc_auc_score."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        labels = y[rows]
        roc_auc_score(labels, a[rows]) - roc_auc_score(labels, b[rows])
    return time.perf_counter() - started


def simd() -> str:
    """Whether numpy can dispatch to AVX-512 (its argsort is several times faster with it)."""
    features = getattr(np._core._multiarray_umath, "__cpu_features__", {})
    found = [name for name in ("AVX2", "AVX512F", "AVX512_SKX") if features.get(name)]
    return ", ".join(found) or "no AVX2 or AVX-512"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    recorder = Recorder.start(
        "delong", simd=simd(), numpy=np.__version__, **{"scikit-learn": sklearn.__version__}
    )
    y, a, b = holdout(args.rows, args.seed)
    distinct = len(np.unique(a))
    print(f"holdout: {args.rows} rows, {int(y.sum())} positives, {distinct} distinct scores")

    sklearn_aucs = (roc_auc_score(y, a), roc_auc_score(y, b))
    delong_aucs = (auc_with_ci(y, a).auc, auc_with_ci(y, b).auc)
    difference = paired_auc_difference(y, a, b)
    auc_error = max(abs(d - s) for d, s in zip(delong_aucs, sklearn_aucs, strict=True))
    delta_error = abs(difference.delta - (sklearn_aucs[0] - sklearn_aucs[1]))

    one_roc = best_of(args.repeats, lambda: roc_auc_score(y, a))
    delong = best_of(args.repeats, lambda: paired_auc_difference(y, a, b))
    sampled = bootstrap_seconds(y, a, b, args.resamples, args.seed)
    bootstrap = sampled / args.resamples * BOOTSTRAP_RESAMPLES

    table = [
        ("method", "seconds", "x roc_auc_score", "note"),
        ("roc_auc_score (1 call)", f"{one_roc:.4f}", "1.00", f"best of {args.repeats}"),
        (
            "paired DeLong CI",
            f"{delong:.4f}",
            f"{delong / one_roc:.2f}",
            f"best of {args.repeats}; delta {difference.delta:+.5f} "
            f"[{difference.low:+.5f}, {difference.high:+.5f}]",
        ),
        (
            f"paired bootstrap ({BOOTSTRAP_RESAMPLES})",
            f"{bootstrap:.1f}",
            f"{bootstrap / one_roc:.0f}",
            f"extrapolated from {args.resamples} resamples ({sampled:.1f} s)",
        ),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]))
    print(f"bootstrap / DeLong: {bootstrap / delong:.0f}x")
    print(f"max |AUC(DeLong) - roc_auc_score|: {auc_error:.2e} (delta: {delta_error:.2e})")

    auc_gap = max(auc_error, delta_error)
    recorder.add(
        ratio_figure(
            "paired DeLong CI (2 AUCs, covariance, CI)",
            delong,
            one_roc,
            "1 roc_auc_score call",
            at_most=MAX_DELONG_RATIO,
            note=f"{args.rows:,} rows with ties; best of {args.repeats}",
        ),
        ratio_figure(
            f"paired bootstrap, {BOOTSTRAP_RESAMPLES:,} resamples",
            bootstrap,
            delong,
            "paired DeLong CI",
            at_least=MIN_BOOTSTRAP_RATIO,
            note=f"extrapolated from {args.resamples} resamples",
        ),
        Figure(
            "max |AUC (DeLong) - roc_auc_score|",
            auc_gap,
            goal=f"<= {AUC_TOLERANCE:g}",
            limit=AUC_TOLERANCE,
            met=auc_gap <= AUC_TOLERANCE,
            note="both AUCs and their difference",
            plot=False,
        ),
    )
    problems = []
    if delong > MAX_DELONG_RATIO * one_roc:
        problems.append(f"paired DeLong costs {delong / one_roc:.2f}x > {MAX_DELONG_RATIO:g}x")
    if bootstrap < MIN_BOOTSTRAP_RATIO * delong:
        problems.append(f"bootstrap is only {bootstrap / delong:.0f}x slower than DeLong")
    if auc_gap > AUC_TOLERANCE:
        problems.append(f"AUC differs from roc_auc_score by {auc_gap:.2e}")
    return recorder.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
