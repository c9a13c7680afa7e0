"""Pipelines trained on synthetic rows with gaps, shared by the serving fast-path tests."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.validation import enforce_spec
from mlplatform.ml.training import TrainingParams, build_pipeline, labels, model_input

ESTIMATORS = ("gradient_boosting", "logistic_regression")


def with_gaps(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows with missing floats, categories and dates, and unseen categories, as clients send."""
    rng = np.random.default_rng(seed)
    out = frame.reset_index(drop=True).copy()
    for column, missing in [
        ("monthly_spend", np.nan),
        ("contract_type", None),
        ("region", None),
        ("payment_method", np.nan),
        ("signup_date", None),
    ]:
        out.loc[rng.random(len(out)) < 0.15, column] = missing
    out.loc[rng.random(len(out)) < 0.1, "region"] = "atlantis"
    out.loc[rng.random(len(out)) < 0.1, "signup_date"] = "not a date"
    return out


def train_pipelines(estimators=ESTIMATORS):
    """The estimators fitted on synthetic rows with gaps, 5 clean sample rows, and fresh rows.

    Returns:
        (pipelines by estimator name, sample rows, holdout rows with gaps to score).
    """
    spec = load_spec("synthetic_churn")
    train = enforce_spec(generate_batch(date(2026, 1, 2), 1500), spec, "train")[0]
    inputs = with_gaps(model_input(train, spec), seed=1)
    pipelines = {
        name: build_pipeline(spec, TrainingParams(name, max_iter=60)).fit(
            inputs, labels(train, spec)
        )
        for name in estimators
    }
    holdout = enforce_spec(generate_batch(date(2026, 1, 9), 600), spec, "holdout")[0]
    return pipelines, model_input(train, spec).head(5), with_gaps(model_input(holdout, spec), 2)
