"""ROC AUC with DeLong confidence intervals, alone and paired (Sun & Xu 2014, O(n log n)).

Tests are probabilistic: every AUC the platform reports carries its standard error and 95%
interval, and model comparisons use the paired test because two models scored on the same rows
have correlated AUCs.
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


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank, in O(n log n)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    n = len(values)
    # Boundaries of runs of equal values; each run gets the mean of its positions.
    change = np.flatnonzero(np.diff(ordered)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    run_ranks = (starts + ends + 1) / 2.0
    ranks_sorted = np.repeat(run_ranks, ends - starts)
    ranks = np.empty(n, dtype=float)
    ranks[order] = ranks_sorted
    return ranks


def _delong_components(labels: np.ndarray, scores: np.ndarray):
    """AUCs and their covariance for k score vectors (rows of ``scores``) on the same labels."""
    labels = np.asarray(labels).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if scores.shape[1] != len(labels):
        raise ValueError(f"{scores.shape[1]} scores for {len(labels)} labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        raise ValueError(f"need at least 2 positives and 2 negatives, got {m} and {n}")
    positives, negatives = scores[:, labels], scores[:, ~labels]
    k = scores.shape[0]
    tx = np.array([_midranks(positives[i]) for i in range(k)])
    ty = np.array([_midranks(negatives[i]) for i in range(k)])
    tz = np.array([_midranks(np.concatenate((positives[i], negatives[i]))) for i in range(k)])
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
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
