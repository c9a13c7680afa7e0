"""Judging a challenger against the champion on the fixed holdout, deciding on intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from mlplatform.ml.metrics import AucDifference, AucEstimate, auc_with_ci, paired_auc_difference
from mlplatform.ml.test_report import ModelTestReport


@dataclass(frozen=True)
class Evaluation:
    """Everything the gates and the deploy step need to know about one challenger.

    Attributes:
        model_name: Registered model name.
        challenger_version: Version under evaluation.
        champion_version: Current champion version, or None when there is none.
        holdout_version: Content hash of the holdout both models were scored on.
        holdout_rows: Rows in the holdout.
        challenger: Challenger AUC with CI.
        champion: Champion AUC with CI on the same rows, or None.
        difference: Paired AUC(challenger) - AUC(champion), or None.
        min_auc: Threshold on the challenger's lower AUC bound.
        min_delta: Required improvement over the champion (lower bound of the difference).
        tests: Slice, behaviour, coverage, calibration and power tests, when run.
    """

    model_name: str
    challenger_version: str
    champion_version: str | None
    holdout_version: str
    holdout_rows: int
    challenger: AucEstimate
    champion: AucEstimate | None
    difference: AucDifference | None
    min_auc: float
    min_delta: float
    tests: ModelTestReport | None = None

    @property
    def clears_auc_threshold(self) -> bool:
        """The challenger's lower 95% AUC bound is at least ``min_auc``."""
        return self.challenger.low >= self.min_auc

    @property
    def beats_champion(self) -> bool:
        """No champion, or the lower bound of the paired difference exceeds ``min_delta``."""
        return self.difference is None or self.difference.low > self.min_delta

    @property
    def failed_tests(self) -> list[str]:
        """The blocking model tests the challenger failed (slices, behaviours, coverage)."""
        if self.tests is None:
            return []
        t = self.tests
        return (
            [f"slice {s.column}={s.value} below {t.min_slice_auc}" for s in t.failed_slices]
            + [f"behaviour {b.name}" for b in t.failed_behaviours]
            + [f"prediction coverage ({c.variant})" for c in t.failed_coverage]
        )

    @property
    def should_promote(self) -> bool:
        """Both gates pass and no blocking model test failed."""
        return self.clears_auc_threshold and self.beats_champion and not self.failed_tests

    @property
    def gate_p_value(self) -> float | None:
        """One-sided p-value of H0 "delta <= min_delta": below 0.025 exactly when the lower
        bound of the 95% interval exceeds ``min_delta``, i.e. when the gate passes."""
        d = self.difference
        if d is None:
            return None
        if d.se == 0.0:
            return 0.0 if d.delta > self.min_delta else 1.0
        return float(stats.norm.sf((d.delta - self.min_delta) / d.se))

    @property
    def reason(self) -> str:
        """Why the challenger will or will not replace the champion."""
        if self.failed_tests:
            return (
                f"challenger v{self.challenger_version} failed blocking model tests: "
                + "; ".join(self.failed_tests)
            )
        if not self.clears_auc_threshold:
            return (
                f"challenger v{self.challenger_version} {self.challenger.describe()}: lower "
                f"bound {self.challenger.low:.3f} is below the threshold {self.min_auc:.3f}"
            )
        if self.difference is None:
            return (
                f"no champion yet; challenger v{self.challenger_version} clears the AUC "
                f"threshold ({self.challenger.low:.3f} >= {self.min_auc:.3f})"
            )
        d = self.difference
        verdict = "beats" if self.beats_champion else "does not beat"
        return (
            f"challenger v{self.challenger_version} {verdict} champion "
            f"v{self.champion_version}: delta {d.delta:+.4f}, 95% CI [{d.low:+.4f}, "
            f"{d.high:+.4f}], required lower bound > {self.min_delta:.4f}"
        )

    @property
    def decision(self) -> str:
        """PROMOTE, KEEP CHAMPION (a champion stays) or REJECT (no champion to keep)."""
        if self.should_promote:
            return "PROMOTE"
        return "KEEP CHAMPION" if self.champion else "REJECT"

    def markdown(self) -> str:
        """A decision table for the Dagster UI."""
        rows = [
            "| model | version | holdout AUC | 95% CI | p-value |",
            "| --- | --- | --- | --- | --- |",
            _row("challenger", self.challenger_version, self.challenger),
        ]
        if self.champion is not None:
            rows.append(_row("champion", self.champion_version, self.champion))
        if self.difference is not None:
            d = self.difference
            rows.append(
                f"| delta (paired DeLong) | | {d.delta:+.4f} | [{d.low:+.4f}, {d.high:+.4f}] "
                f"| {self.gate_p_value:.4g} (H0: delta <= {self.min_delta}); "
                f"{d.p_value:.4g} (H0: delta = 0) |"
            )
        return "\n".join(rows) + (
            f"\n\n**Decision: {self.decision}**: {self.reason}\n\n"
            f"Holdout `{self.holdout_version}` ({self.holdout_rows} rows); "
            f"min AUC {self.min_auc}, min delta {self.min_delta}."
        )


def _row(role: str, version: str | None, estimate: AucEstimate) -> str:
    return (
        f"| {role} | v{version} | {estimate.auc:.4f} +/- {estimate.half_width:.4f} | "
        f"[{estimate.low:.4f}, {estimate.high:.4f}] | |"
    )


def evaluate_on_holdout(
    labels: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    *,
    model_name: str,
    challenger_version: str,
    champion_version: str | None,
    holdout_version: str,
    min_auc: float,
    min_delta: float,
) -> Evaluation:
    """Scores both models' predictions on the same holdout rows.

    Args:
        labels: Holdout labels.
        challenger_scores: Challenger probabilities for the holdout rows.
        champion_scores: Champion probabilities for the same rows, or None without a champion.
        model_name: Registered model name.
        challenger_version: Challenger's registry version.
        champion_version: Champion's registry version, or None.
        holdout_version: Content hash of the holdout.
        min_auc: AUC gate threshold.
        min_delta: Required improvement over the champion.

    Returns:
        The evaluation, including the decision.
    """
    challenger = auc_with_ci(labels, challenger_scores)
    champion = difference = None
    if champion_scores is not None:
        champion = auc_with_ci(labels, champion_scores)
        difference = paired_auc_difference(labels, challenger_scores, champion_scores)
    return Evaluation(
        model_name=model_name,
        challenger_version=challenger_version,
        champion_version=champion_version,
        holdout_version=holdout_version,
        holdout_rows=len(labels),
        challenger=challenger,
        champion=champion,
        difference=difference,
        min_auc=min_auc,
        min_delta=min_delta,
    )
