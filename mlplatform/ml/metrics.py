"""ROC AUC with DeLong confidence intervals, alone and paired (Sun & Xu 2014, O(n log n)).

Tests are probabilistic: every AUC the platform reports carries its standard error and 95%
interval, and model comparisons use the paired test because two models scored on the same rows
have correlated AUCs. Calibration (Brier score, ECE) and the power of the promotion gate's test
are reported next to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class AucEstimate:
    """An AUC with its DeLong standard error and confidence interval."""

    auc: float
    se: float
    low: float
    high: float
    positives: int
    negatives: int

    @property
    def half_width(self) -> float:
        """Half the width of the interval (the "+/-" figure)."""
        return (self.high - self.low) / 2

    def describe(self) -> str:
        """E.g. "AUC 0.872 +/- 0.003 (95% CI)"."""
        return f"AUC {self.auc:.3f} +/- {self.half_width:.3f} (95% CI)"


@dataclass(frozen=True)
class AucDifference:
    """AUC(a) - AUC(b) on the same rows, from the paired DeLong test."""

    delta: float
    se: float
    low: float
    high: float
    p_value: float


def _placements(is_positive: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
    """DeLong placement of every row and the Mann-Whitney count, from one sort of ``values``.

    A positive's placement is the number of negatives scored below it plus half those tied with
    it; a negative's is the same count of positives. These are the differences between a row's
    midrank among all rows and its midrank within its own class (Sun & Xu 2014), which is why the
    two within-class sorts are unnecessary: within one run of tied values the class-wise midranks
    follow from the cumulative class counts before the run and the class counts inside it.

    Args:
        is_positive: Boolean labels.
        values: One model's finite scores, aligned with ``is_positive``.

    Returns:
        The placements in the original row order, and the sum of the positives' placements
        (AUC times positives times negatives).
    """
    # Whole tie runs are handled together, so the sort need not be stable: the fastest one wins.
    order = np.argsort(values)
    ordered = values[order]
    positive_sorted = is_positive[order]
    total = len(values)
    bounds = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, [total]))
    lengths = np.diff(bounds)
    positives_upto = np.concatenate(([0], np.cumsum(positive_sorted)))
    positives_before = positives_upto[bounds[:-1]]
    positives_in = positives_upto[bounds[1:]] - positives_before
    negatives_before = bounds[:-1] - positives_before
    negatives_in = lengths - positives_in
    # What a positive of each run beats (negatives below, half of those tied), and vice versa.
    seen_by_positive = negatives_before + 0.5 * negatives_in
    seen_by_negative = positives_before + 0.5 * positives_in
    # Half-integer counts below 2**52 add exactly, so the AUC is rounded once, at the division.
    count = float(np.dot(positives_in, seen_by_positive))
    placed_sorted = np.where(
        positive_sorted,
        np.repeat(seen_by_positive, lengths),
        np.repeat(seen_by_negative, lengths),
    )
    placed = np.empty(total, dtype=float)
    placed[order] = placed_sorted
    return placed, count


def _delong_components(labels: np.ndarray, scores: np.ndarray):
    """AUCs and their covariance for k score vectors (rows of ``scores``) on the same labels.

    One O(n log n) sort per score vector (Sun & Xu 2014, via ``_placements``).
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if scores.shape[1] != len(labels):
        raise ValueError(f"{scores.shape[1]} scores for {len(labels)} labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    m = int(np.count_nonzero(labels))
    n = len(labels) - m
    if m < 2 or n < 2:
        raise ValueError(f"need at least 2 positives and 2 negatives, got {m} and {n}")
    k = scores.shape[0]
    aucs = np.empty(k)
    v01 = np.empty((k, m))
    v10 = np.empty((k, n))
    for i in range(k):
        placed, count = _placements(labels, scores[i])
        aucs[i] = count / (float(m) * float(n))
        # Structural components: each positive's share of negatives beaten, each negative's
        # share of positives it loses to.
        v01[i] = placed[labels] / n
        v10[i] = 1.0 - placed[~labels] / m
    cov = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return aucs, cov, m, n


def auc_with_ci(labels, scores, confidence: float = 0.95) -> AucEstimate:
    """ROC AUC with a DeLong confidence interval.

    Args:
        labels: Binary labels (truthy = positive).
        scores: Predicted scores, higher = more likely positive.
        confidence: Two-sided confidence level.

    Returns:
        The estimate, its standard error and interval clipped to [0, 1].

    Raises:
        ValueError: Fewer than two rows of either class, or non-finite scores.
    """
    aucs, cov, m, n = _delong_components(labels, scores)
    se = float(np.sqrt(max(cov[0, 0], 0.0)))
    z = stats.norm.ppf(0.5 + confidence / 2)
    auc = float(aucs[0])
    return AucEstimate(auc, se, float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se)), m, n)


def paired_auc_difference(labels, scores_a, scores_b, confidence: float = 0.95) -> AucDifference:
    """AUC(a) - AUC(b) for two models scored on the same rows (paired DeLong test).

    Args:
        labels: Binary labels shared by both models.
        scores_a: Scores of model a (e.g. the challenger).
        scores_b: Scores of model b (e.g. the champion).
        confidence: Two-sided confidence level.

    Returns:
        The difference, its standard error, interval and two-sided p-value.
    """
    aucs, cov, _, _ = _delong_components(labels, np.vstack([scores_a, scores_b]))
    delta = float(aucs[0] - aucs[1])
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    se = float(np.sqrt(max(variance, 0.0)))
    z = stats.norm.ppf(0.5 + confidence / 2)
    if se == 0.0:
        p_value = 1.0 if delta == 0.0 else 0.0
    else:
        p_value = float(2 * stats.norm.sf(abs(delta) / se))
    return AucDifference(delta, se, float(delta - z * se), float(delta + z * se), p_value)
