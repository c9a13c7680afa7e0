"""Prediction coverage: every row gets a valid probability, also with unseen or missing values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlplatform.datasets.spec import DatasetSpec
from mlplatform.ml.model_tests import UNSEEN, Predict


@dataclass(frozen=True)
class CoverageResult:
    """Prediction validity on one variant of the holdout rows.

    Attributes:
        variant: "as_is", "unseen_categories" or "missing_optional".
        columns: Columns the variant changed.
        rows: Rows predicted.
        invalid: Rows without a finite probability in [0, 1].
        examples: Index labels of up to ``max_examples`` invalid rows.
        error: The exception message when ``predict`` raised (then every row is invalid).
    """

    variant: str
    columns: tuple[str, ...]
    rows: int
    invalid: int
    examples: tuple[Any, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Every row got a valid probability."""
        return self.invalid == 0


def prediction_coverage(
    predict: Predict, rows: pd.DataFrame, spec: DatasetSpec, *, max_examples: int = 5
) -> list[CoverageResult]:
    """Checks that every row gets a probability, also with unseen categories and missing values.

    Variants: the rows as they are; every category column set to ``UNSEEN``; every nullable
    column set to missing (NaN for numeric columns, None otherwise). A variant that would change
    no column (the spec has no such columns among ``rows``) is left out.

    Args:
        predict: Raw model-input rows -> positive-class probabilities.
        rows: Holdout rows in model-input form; their index labels name invalid rows.
        spec: Says which columns are categories and which are nullable.
        max_examples: How many invalid rows to name per variant.

    Returns:
        One result per variant.
    """
    present = [c for c in rows.columns if c in spec.columns]
    variants = {
        "as_is": (),
        "unseen_categories": tuple(c for c in present if spec.columns[c].type == "category"),
        "missing_optional": tuple(c for c in present if spec.columns[c].nullable),
    }
    results = []
    for variant, columns in variants.items():
        if variant != "as_is" and not columns:
            continue
        frame = rows.copy()
        for column in columns:
            if variant == "unseen_categories":
                frame[column] = UNSEEN
            else:
                numeric = pd.api.types.is_numeric_dtype(frame[column])
                frame[column] = np.nan if numeric else None
        results.append(_coverage(predict, frame, variant, columns, max_examples))
    return results


def _coverage(predict, frame, variant, columns, max_examples) -> CoverageResult:
    every_row = (variant, columns, len(frame), len(frame), tuple(frame.index[:max_examples]))
    try:
        predictions = np.asarray(predict(frame), dtype=float)
    except Exception as exc:  # noqa: BLE001 - any model error means no prediction: report it
        return CoverageResult(*every_row, error=f"{type(exc).__name__}: {exc}")
    if predictions.shape != (len(frame),):
        shape = predictions.shape
        return CoverageResult(*every_row, error=f"expected {len(frame)} probabilities, got {shape}")
    # Comparisons with NaN are False, so NaN rows are invalid too.
    bad = ~((predictions >= 0.0) & (predictions <= 1.0))
    examples = tuple(frame.index[bad][:max_examples])
    return CoverageResult(variant, columns, len(frame), int(bad.sum()), examples)
