"""Model tests beyond the overall AUC: slice AUCs (Holm-corrected) and behavioural tests.

Every function takes plain arrays, frames and a ``predict`` callable (raw model-input rows ->
positive-class probabilities), so the same tests run on a fitted pipeline, a registry model or a
toy function in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlplatform.datasets.spec import BehaviourSpec
from mlplatform.ml.metrics import AucEstimate, auc_with_ci

Predict = Callable[[pd.DataFrame], np.ndarray]
UNSEEN = "__unseen__"
ALL_ROWS = "*"
MAX_GROUPS = 10  # numeric slice columns with more distinct values are cut into quartiles
DIRECTIONS = ("decrease", "increase", "unchanged", "invariant")


@dataclass(frozen=True)
class SliceResult:
    """The AUC of one slice (rows sharing a value of a slice column) against the threshold.

    Attributes:
        column: Slice column.
        value: Group value; a quartile bin as a string such as "(12.0, 24.0]"; None = missing.
        rows: Rows in the slice.
        positives: Positive rows in the slice.
        negatives: Negative rows in the slice.
        estimate: AUC with its DeLong CI, or None when skipped.
        skipped: Why the slice was not tested (too small), or None.
        p_value: One-sided p-value of H0 "AUC >= threshold" (small = evidence of a worse slice).
        adjusted_p_value: Holm-adjusted p-value across the tested slices.
        failed: Holm rejects H0 at alpha, i.e. the slice is credibly below the threshold.
    """

    column: str
    value: Any
    rows: int
    positives: int
    negatives: int
    estimate: AucEstimate | None
    skipped: str | None
    p_value: float | None
    adjusted_p_value: float | None
    failed: bool

    @property
    def status(self) -> str:
        """ "skipped", "failed", "below, not significant" or "passed"."""
        if self.skipped:
            return "skipped"
        if self.failed:
            return "failed"
        # p < 0.5 means the point estimate is under the threshold: not credible, but worth seeing.
        return "below, not significant" if (self.p_value or 1.0) < 0.5 else "passed"


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (reject where adjusted <= alpha; controls the FWER)."""
    p = np.asarray(p_values, dtype=float)
    k = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((k - np.arange(k)) * p[order])
    adjusted = np.empty(k)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _groups(values: pd.Series) -> dict[Any, np.ndarray]:
    """Row positions per group: each value, or quartile bins of a many-valued numeric column."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > MAX_GROUPS:
        # Equal-count bins keep every slice large enough to test; ties may merge bins.
        values = pd.qcut(values, 4, duplicates="drop").astype(str).where(values.notna(), None)
    indices = values.groupby(values, dropna=False, sort=False, observed=True).indices
    # Plain Python keys (and None for missing) so results serialise cleanly.
    return {
        None if pd.isna(key) else key.item() if isinstance(key, np.generic) else key: rows
        for key, rows in indices.items()
    }


def slice_aucs(
    labels,
    scores,
    slices: pd.DataFrame,
    *,
    min_rows: int = 30,
    min_per_class: int = 5,
    threshold: float = 0.74,
    alpha: float = 0.05,
) -> list[SliceResult]:
    """AUC with a CI for every group of every slice column, tested with a Holm correction.

    Booleans, categories and numeric columns with at most ``MAX_GROUPS`` distinct values are
    grouped by value (missing values form their own group); numeric columns with more are cut
    into quartile bins. Each tested slice gets the one-sided DeLong p-value of H0 "AUC >=
    threshold"; Holm's step-down correction across all tested slices keeps the chance that any
    slice fails by noise at most ``alpha``, however many slices there are.

    Args:
        labels: Binary holdout labels.
        scores: Predicted scores, aligned with ``labels``.
        slices: One column per slice column, rows aligned with ``labels``.
        min_rows: Smaller slices are skipped, not failed.
        min_per_class: Slices with fewer positives or negatives are skipped.
        threshold: The AUC every slice should reach.
        alpha: Family-wise error rate across slices.

    Returns:
        One result per (column, value), in column order then first appearance.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    if len(slices) != len(labels) or len(scores) != len(labels):
        raise ValueError(f"{len(labels)} labels, {len(scores)} scores, {len(slices)} slice rows")
    need = max(min_per_class, 2)  # the DeLong variance needs two rows of each class
    pending = []
    for column in slices.columns:
        for value, rows in _groups(slices[column]).items():
            positives = int(labels[rows].sum())
            counts = (column, value, len(rows), positives, len(rows) - positives)
            skipped = None
            if len(rows) < min_rows:
                skipped = f"{len(rows)} rows < minimum {min_rows}"
            elif min(positives, len(rows) - positives) < need:
                skipped = f"{positives} positives, {len(rows) - positives} negatives < {need}"
            estimate = None if skipped else auc_with_ci(labels[rows], scores[rows])
            pending.append((counts, estimate, skipped))
    p_values = [_below_threshold_p(e, threshold) for _, e, _ in pending if e is not None]
    adjusted = iter(holm(p_values))
    tested = iter(p_values)
    results = []
    for counts, estimate, skipped in pending:
        if estimate is None:
            results.append(SliceResult(*counts, None, skipped, None, None, False))
            continue
        p, adj = next(tested), float(next(adjusted))
        results.append(SliceResult(*counts, estimate, None, p, adj, adj <= alpha))
    return results


def _below_threshold_p(estimate: AucEstimate, threshold: float) -> float:
    if estimate.se == 0.0:
        return 0.0 if estimate.auc < threshold else 1.0
    return float(stats.norm.cdf((estimate.auc - threshold) / estimate.se))


@dataclass(frozen=True)
class BehaviourResult:
    """Outcome of one behavioural test.

    Attributes:
        name: The behaviour's name.
        expect: "decrease", "increase", or "unchanged"/"invariant".
        rows_tested: Rows whose input was changed.
        fraction: Share of tested rows meeting the expectation (strict move, or a change of at
            most ``tolerance`` for invariance).
        mean_change: Mean prediction after minus before.
        min_fraction: Required share.
        passed: ``fraction > min_fraction`` (False when no row could be tested).
        skipped: Why nothing was tested, or None.
    """

    name: str
    expect: str
    rows_tested: int
    fraction: float
    mean_change: float
    min_fraction: float
    passed: bool
    skipped: str | None = None


def behaviour_test(
    predict: Predict, rows: pd.DataFrame, behaviour: BehaviourSpec, *, tolerance: float = 0.01
) -> BehaviourResult:
    """Changes one input and checks that predictions move the expected way.

    The rows where ``column == from_value`` are changed to ``to_value``; with ``from_value``
    None or "*" every row is changed (a YAML ``from: null`` means "any", not "missing").

    Args:
        predict: Raw model-input rows -> positive-class probabilities.
        rows: Holdout rows in model-input form.
        behaviour: The expectation from the data-set spec.
        tolerance: Largest change that still counts as unchanged (invariance only).

    Returns:
        The result; no matching rows gives ``passed=False`` with ``skipped`` set.

    Raises:
        ValueError: Unknown ``expect`` value or missing column.
    """
    expect = behaviour.expect
    if expect not in DIRECTIONS:
        raise ValueError(f"behaviour '{behaviour.name}': expect '{expect}' not in {DIRECTIONS}")
    if behaviour.column not in rows.columns:
        raise ValueError(f"behaviour '{behaviour.name}': no column '{behaviour.column}'")
    if behaviour.from_value is None or behaviour.from_value == ALL_ROWS:
        before_rows = rows
    else:
        before_rows = rows[rows[behaviour.column] == behaviour.from_value]
    common = {"name": behaviour.name, "expect": expect, "min_fraction": behaviour.min_fraction}
    if before_rows.empty:
        reason = f"no rows with {behaviour.column} == {behaviour.from_value!r}"
        return BehaviourResult(
            **common, rows_tested=0, fraction=0.0, mean_change=0.0, passed=False, skipped=reason
        )
    after_rows = before_rows.copy()
    after_rows[behaviour.column] = behaviour.to_value
    change = np.asarray(predict(after_rows), float) - np.asarray(predict(before_rows), float)
    if expect == "decrease":
        holds = change < 0
    elif expect == "increase":
        holds = change > 0
    else:
        holds = np.abs(change) <= tolerance
    # NaN predictions compare False, so they count against the expectation.
    fraction = float(np.mean(holds))
    return BehaviourResult(
        **common,
        rows_tested=len(change),
        fraction=fraction,
        mean_change=float(np.mean(change)),
        # "More than 90% of rows": the share must exceed the required fraction.
        passed=fraction > behaviour.min_fraction,
    )
