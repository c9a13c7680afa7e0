"""Calibration and power: what the model tests report about a challenger besides its AUC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from mlplatform.ml.metrics import AucDifference, AucEstimate


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram; means are None for an empty bin."""

    low: float
    high: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


@dataclass(frozen=True)
class Calibration:
    """Brier score, expected calibration error and the reliability table behind the ECE."""

    brier: float
    ece: float
    bins: tuple[ReliabilityBin, ...]


def calibration(labels, probabilities, bins: int = 10) -> Calibration:
    """Brier score and expected calibration error over equal-width probability bins.

    ECE is the row-weighted mean of |observed positive rate - mean predicted probability| over
    the bins [0, 1/bins), ..., [1 - 1/bins, 1] (the last bin includes 1).

    Args:
        labels: Binary labels.
        probabilities: Predicted positive-class probabilities in [0, 1].
        bins: Number of equal-width bins.

    Returns:
        The scores and one reliability row per bin (empty bins included).

    Raises:
        ValueError: Lengths differ, no rows, or a probability is NaN or outside [0, 1].
    """
    y = np.asarray(labels).astype(float)
    p = np.asarray(probabilities, dtype=float)
    if p.shape != y.shape or len(y) == 0:
        raise ValueError(f"{len(p)} probabilities for {len(y)} labels")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("probabilities must be finite and within [0, 1]")
    which = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=p, minlength=bins)
    observed = np.bincount(which, weights=y, minlength=bins)
    table, ece = [], 0.0
    for b in range(bins):
        mean_p = observed_rate = None
        if counts[b]:
            mean_p, observed_rate = predicted[b] / counts[b], observed[b] / counts[b]
            ece += counts[b] / len(y) * abs(observed_rate - mean_p)
        table.append(
            ReliabilityBin(b / bins, (b + 1) / bins, int(counts[b]), mean_p, observed_rate)
        )
    return Calibration(float(np.mean((p - y) ** 2)), float(ece), tuple(table))


@dataclass(frozen=True)
class PowerCheck:
    """How small an improvement the holdout can resolve, next to the required ``min_delta``.

    Attributes:
        se_diff: Standard error of AUC(challenger) - AUC(champion), paired or assumed.
        assumed: True when ``se_diff`` was approximated from the challenger alone.
        minimum_detectable_delta: True improvement at which the CI's lower bound exceeds 0
            with probability ``power``.
        min_delta: The gate's required lower bound.
        warn: The holdout cannot detect an improvement of ``min_delta`` at ``power``.
    """

    se_diff: float
    assumed: bool
    minimum_detectable_delta: float
    min_delta: float
    warn: bool

    @property
    def delta_for_power_at_gate(self) -> float:
        """True improvement at which the gate itself (lower bound > min_delta) has the power."""
        return self.min_delta + self.minimum_detectable_delta


def minimum_detectable_delta(se_diff: float, confidence: float = 0.95, power: float = 0.8) -> float:
    """Smallest true AUC improvement the paired test detects with the given power.

    The test rejects "no improvement" when the lower bound of the two-sided ``confidence``
    interval, delta_hat - z_{1-a/2} * se, is above 0. With delta_hat ~ N(delta, se^2) it does so
    with probability Phi(delta / se - z_{1-a/2}), which equals ``power`` at
    delta = (z_{1-a/2} + z_{power}) * se (about 2.80 se for 95% and 80%).

    Args:
        se_diff: Standard error of the AUC difference.
        confidence: Two-sided confidence level of the gate's interval.
        power: Required probability of detection.

    Returns:
        The minimum detectable delta.
    """
    return float((stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power)) * se_diff)


def power_check(
    challenger: AucEstimate,
    difference: AucDifference | None,
    min_delta: float,
    *,
    assumed_correlation: float = 0.5,
    confidence: float = 0.95,
    power: float = 0.8,
) -> PowerCheck:
    """Compares the holdout's minimum detectable delta with ``min_delta``.

    With a champion the paired standard error is used. Without one there is no difference to
    measure, so the check reports what a future comparison on this holdout could resolve: two
    models with the challenger's AUC standard error whose AUC estimates correlate with
    ``assumed_correlation`` r have se_diff = se * sqrt(2 * (1 - r)). r = 0.5 is a conservative
    guess; models retrained on similar data usually correlate more (smaller se_diff).

    Args:
        challenger: The challenger's AUC estimate.
        difference: The paired difference, or None without a champion.
        min_delta: Required improvement of the gate.
        assumed_correlation: Correlation of the two AUC estimates when there is no champion.
        confidence: Two-sided confidence level of the gate's interval.
        power: Required probability of detection.

    Returns:
        The check; ``warn`` when the minimum detectable delta exceeds ``min_delta``.
    """
    if difference is not None:
        se_diff, assumed = difference.se, False
    else:
        se_diff = challenger.se * float(np.sqrt(2.0 * (1.0 - assumed_correlation)))
        assumed = True
    mdd = minimum_detectable_delta(se_diff, confidence, power)
    return PowerCheck(se_diff, assumed, mdd, min_delta, mdd > min_delta)
