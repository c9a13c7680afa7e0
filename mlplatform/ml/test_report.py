"""The model tests of one challenger on the fixed holdout, and how they read in the UI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlplatform.datasets.spec import DatasetSpec
from mlplatform.ml.coverage import (
    CoverageResult,
    prediction_coverage,
)
from mlplatform.ml.diagnostics import (
    Calibration,
    PowerCheck,
    calibration,
    power_check,
)
from mlplatform.ml.metrics import (
    AucDifference,
    AucEstimate,
)
from mlplatform.ml.model_tests import (
    BehaviourResult,
    Predict,
    SliceResult,
    behaviour_test,
    slice_aucs,
)


@dataclass(frozen=True)
class ModelTestReport:
    """Slices, behaviours, prediction coverage, calibration and power of one challenger."""

    slices: tuple[SliceResult, ...]
    behaviours: tuple[BehaviourResult, ...]
    coverage: tuple[CoverageResult, ...]
    calibration: Calibration
    power: PowerCheck
    min_slice_auc: float
    max_ece: float

    @property
    def failed_slices(self) -> list[SliceResult]:
        """Slices credibly below the threshold (Holm-corrected)."""
        return [s for s in self.slices if s.failed]

    @property
    def weak_slices(self) -> list[SliceResult]:
        """Slices whose AUC estimate is under the threshold, though not credibly so."""
        return [s for s in self.slices if s.status == "below, not significant"]

    @property
    def failed_behaviours(self) -> list[BehaviourResult]:
        """Behavioural expectations the model does not meet."""
        return [b for b in self.behaviours if not b.passed]

    @property
    def failed_coverage(self) -> list[CoverageResult]:
        """Input variants for which some row got no valid probability."""
        return [c for c in self.coverage if not c.passed]

    @property
    def well_calibrated(self) -> bool:
        """Expected calibration error at most ``max_ece``."""
        return self.calibration.ece <= self.max_ece

    def slices_markdown(self) -> str:
        """One row per slice: AUC with CI, p-values, status."""
        rows = [
            "| slice | rows | pos/neg | AUC [95% CI] | p (H0: AUC >= thr) | Holm p | status |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for s in self.slices:
            auc = (
                f"{s.estimate.auc:.3f} [{s.estimate.low:.3f}, {s.estimate.high:.3f}]"
                if s.estimate
                else ""
            )
            p = "" if s.p_value is None else f"{s.p_value:.3g}"
            holm = "" if s.adjusted_p_value is None else f"{s.adjusted_p_value:.3g}"
            status = f"skipped: {s.skipped}" if s.skipped else s.status.upper()
            rows.append(
                f"| {s.column}={s.value} | {s.rows} | {s.positives}/{s.negatives} | {auc} | "
                f"{p} | {holm} | {status} |"
            )
        return "\n".join(rows) + f"\n\nThreshold {self.min_slice_auc}, Holm-corrected at 5%."

    def behaviours_markdown(self) -> str:
        """One row per behavioural expectation."""
        rows = [
            "| behaviour | expect | rows | share meeting it | required | mean change | status |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for b in self.behaviours:
            status = f"skipped: {b.skipped}" if b.skipped else "PASS" if b.passed else "FAIL"
            rows.append(
                f"| {b.name} | {b.expect} | {b.rows_tested} | {b.fraction:.1%} | "
                f"{b.min_fraction:.0%} | {b.mean_change:+.4f} | {status} |"
            )
        return "\n".join(rows)

    def coverage_markdown(self) -> str:
        """One row per input variant."""
        rows = [
            "| variant | columns changed | rows | invalid | examples |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in self.coverage:
            detail = f"{list(c.examples)}" + (f" ({c.error})" if c.error else "")
            rows.append(
                f"| {c.variant} | {', '.join(c.columns) or '-'} | {c.rows} | {c.invalid} | "
                f"{detail if c.invalid else ''} |"
            )
        return "\n".join(rows)

    def calibration_markdown(self) -> str:
        """Brier, ECE and the reliability table."""
        c = self.calibration
        rows = [
            f"Brier {c.brier:.4f}, ECE {c.ece:.4f} (warn above {self.max_ece})",
            "",
            "| bin | rows | mean predicted | observed rate |",
            "| --- | --- | --- | --- |",
        ]
        for b in c.bins:
            if b.count:
                rows.append(
                    f"| [{b.low:.1f}, {b.high:.1f}) | {b.count} | {b.mean_predicted:.3f} | "
                    f"{b.observed_rate:.3f} |"
                )
        return "\n".join(rows)


def run_model_tests(
    predict: Predict,
    holdout_rows: pd.DataFrame,
    labels: np.ndarray,
    scores: np.ndarray,
    spec: DatasetSpec,
    challenger: AucEstimate,
    difference: AucDifference | None,
    *,
    min_delta: float,
    min_slice_auc: float = 0.74,
    min_slice_rows: int = 30,
    max_ece: float = 0.05,
    served_predict: Predict | None = None,
) -> ModelTestReport:
    """Runs every model test of the issue on the fixed holdout.

    Args:
        predict: Raw model-input rows -> positive-class probabilities (the challenger).
        holdout_rows: The holdout in model-input form (raw values, spec columns).
        labels: Holdout labels.
        scores: The challenger's probabilities for ``holdout_rows``.
        spec: The data-set spec (slices, behaviours, column kinds).
        challenger: The challenger's holdout AUC.
        difference: Paired difference against the champion, or None.
        min_delta: The promotion gate's required improvement (for the power check).
        min_slice_auc: Slice AUC threshold, tested with a Holm correction.
        min_slice_rows: Smaller slices are skipped.
        max_ece: Calibration warning threshold.
        served_predict: The model as serving loads it (MLflow pyfunc, with its schema checks),
            for the coverage test; ``predict`` when None.

    Returns:
        The report.
    """
    slices = slice_aucs(
        labels,
        scores,
        holdout_rows[list(spec.slices)],
        min_rows=min_slice_rows,
        threshold=min_slice_auc,
    )
    behaviours = tuple(behaviour_test(predict, holdout_rows, b) for b in spec.behaviours)
    coverage = tuple(prediction_coverage(served_predict or predict, holdout_rows, spec))
    return ModelTestReport(
        slices=tuple(slices),
        behaviours=behaviours,
        coverage=coverage,
        calibration=calibration(labels, scores),
        power=power_check(challenger, difference, min_delta),
        min_slice_auc=min_slice_auc,
        max_ece=max_ece,
    )
