"""The serving fast path: the pipeline's probabilities for any row, or no fast path at all."""

from __future__ import annotations

import logging
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from mlplatform.serving import fast_path_models, fast_path_steps
from mlplatform.serving.batching import FAST_PATH_MAX_ROWS, ScoringFailure, score_frames
from mlplatform.serving.fast_path import (
    FastPathUnsupported,
    compile_row_scorer,
)
from mlplatform.serving.fast_path_checks import DATE_PROBES
from mlplatform_tests.fast_path_training import ESTIMATORS, train_pipelines

CATEGORIES = ["monthly", "annual", "multi-year", "north", "south", "east", "west", "central"]
CATEGORIES += ["card", "bank_transfer", "invoice", "electronic_check", "", "atlantis"]


@pytest.fixture(scope="module")
def trained():
    """Both estimators fitted on synthetic rows with gaps, and fresh rows to score."""
    return train_pipelines()


@pytest.fixture(scope="module")
def scorers(trained):
    pipelines, sample, _ = trained
    return {name: compile_row_scorer(pipeline, sample) for name, pipeline in pipelines.items()}


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_the_fast_path_scores_like_the_pipeline_row_by_row_and_in_batches(
    trained, scorers, estimator
):
    pipelines, _, rows = trained
    scorer, pipeline = scorers[estimator], pipelines[estimator]
    assert scorer is not None
    expected = pipeline.predict_proba(rows)[:, 1]
    assert rows.isna().any().sum() >= 4 and (rows["region"] == "atlantis").any()
    # Trained with gaps: None is a category of its own, NaN is imputed as "__missing__".
    categorical = pipeline.named_steps["preprocess"].named_transformers_["categorical"]
    categories = categorical.named_steps["encode"].categories_
    assert None in categories[0] and "__missing__" in categories[2]
    np.testing.assert_array_equal(scorer(rows), expected)  # bit for bit
    for i in range(0, len(rows), 37):
        assert scorer(rows.iloc[[i]])[0] == pipeline.predict_proba(rows.iloc[[i]])[0, 1]
    flipped = rows.assign(is_enterprise=~rows["is_enterprise"])
    np.testing.assert_array_equal(scorer(flipped), pipeline.predict_proba(flipped)[:, 1])


CATEGORY = st.one_of(st.none(), st.just(math.nan), st.sampled_from(CATEGORIES), st.text(max_size=4))
DATE = st.one_of(
    st.none(),
    st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(date.isoformat),
    st.sampled_from(DATE_PROBES),
    # pandas reads "now" and "today" as the current time: the pipeline itself is not repeatable.
    st.text(max_size=12).filter(lambda text: text not in ("now", "today")),
)
ROW = st.fixed_dictionaries(
    {
        "tenure_months": st.one_of(st.integers(0, 240), st.integers(-(2**62), 2**62)),
        "monthly_spend": st.floats(allow_nan=True, allow_infinity=False),
        "support_tickets": st.integers(-(2**63), 2**63 - 1),
        "contract_type": CATEGORY,
        "region": CATEGORY,
        "payment_method": CATEGORY,
        "is_enterprise": st.booleans(),
        "last_login_hour": st.one_of(st.integers(0, 23), st.integers(-(10**12), 10**12)),
        "signup_date": DATE,
    }
)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(ROW, min_size=1, max_size=8))
def test_random_rows_score_like_the_pipeline_or_are_left_to_it(
    trained, scorers, estimator, records
):
    pipelines, sample, _ = trained
    rows = pd.DataFrame(
        {c: pd.Series([r[c] for r in records], dtype=t) for c, t in sample.dtypes.items()}
    )
    try:
        expected = pipelines[estimator].predict_proba(rows)[:, 1]
    except ValueError:  # e.g. a huge spend scaled to infinity for the logistic regression
        with pytest.raises(FastPathUnsupported):
            scorers[estimator](rows)
        return
    np.testing.assert_allclose(scorers[estimator](rows), expected, rtol=0, atol=1e-12)


def _other_model(pipeline, model):
    """The fitted pipeline with its last step replaced by ``model``, fitted on its features."""
    features = pipeline[:-1]
    return features, Pipeline([*pipeline.steps[:-1], ("model", model)])


def test_a_pipeline_with_steps_it_does_not_rebuild_gets_no_fast_path(trained, caplog):
    pipelines, sample, rows = trained
    pipeline = pipelines["gradient_boosting"]
    X, y = pipeline[:-1].transform(rows), (rows["tenure_months"] < 12).to_numpy()
    forest = Pipeline([*pipeline.steps[:-1], ("model", RandomForestClassifier(3).fit(X, y))])
    # One-hot columns read as categories: splits on category bitsets, which it does not walk.
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=[8, 9])
    with_categories = Pipeline([*pipeline.steps[:-1], ("model", categorical.fit(X, y))])
    with caplog.at_level(logging.INFO, logger="mlplatform.serving.fast_path"):
        assert compile_row_scorer(forest, sample) is None
        assert compile_row_scorer(with_categories, sample) is None
        assert compile_row_scorer(pipeline[1:], sample) is None
        assert compile_row_scorer(object(), sample) is None
    assert (
        "RandomForestClassifier" in caplog.text and "HistGradientBoostingClassifier" in caplog.text
    )


def test_a_fast_path_that_would_differ_from_the_pipeline_is_not_used(trained, monkeypatch, caplog):
    pipelines, sample, _ = trained
    pipeline = pipelines["gradient_boosting"]
    walk = fast_path_models.TreeEnsemble.__call__
    monkeypatch.setattr(
        fast_path_models.TreeEnsemble, "__call__", lambda self, X: walk(self, X) + 1e-9
    )
    with caplog.at_level(logging.WARNING, logger="mlplatform.serving.fast_path"):
        assert compile_row_scorer(pipeline, sample) is None
    assert "fast path off: batch: row 0" in caplog.text
    monkeypatch.undo()

    # Years off for one date string only: found among the probe rows, not in the sample.
    days = fast_path_steps.compute_days_since_reference

    def years_off(series, reference):
        shift = 3000.0 if series.iloc[0] == "2026-03-01" else 0.0
        return days(series, reference) + shift

    monkeypatch.setattr(fast_path_steps, "compute_days_since_reference", years_off)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mlplatform.serving.fast_path"):
        assert compile_row_scorer(pipeline, sample) is None
    assert "'signup_date': '2026-03-01'" in caplog.text
    monkeypatch.undo()

    # One ulp off in a feature: maybe no probability on these rows moves, but the features differ.
    cyclical = fast_path_steps._cyclical

    def one_ulp_up(column, period, wave):
        encode = cyclical(column, period, wave)
        return lambda columns: np.nextafter(encode(columns), np.inf)

    monkeypatch.setattr(fast_path_steps, "_cyclical", one_ulp_up)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mlplatform.serving.fast_path"):
        assert compile_row_scorer(pipeline, sample) is None
    assert "fast path off: features: row 0" in caplog.text


def test_rows_the_model_refuses_must_be_refused(trained, caplog):
    pipelines, sample, _ = trained
    pipeline = pipelines["logistic_regression"]

    def refuses_huge_spend(rows):
        if (rows["monthly_spend"] > 1e299).any():
            raise ValueError("spend out of range")
        return pipeline.predict_proba(rows)[:, 1]

    with caplog.at_level(logging.WARNING, logger="mlplatform.serving.fast_path"):
        assert compile_row_scorer(pipeline, sample, refuses_huge_spend) is None
    assert "is refused by the model but answered" in caplog.text


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: rows.drop(columns=["region"]),
        lambda rows: rows.astype({"monthly_spend": "float32"}),
        lambda rows: rows.astype({"tenure_months": str}),
        lambda rows: rows.assign(region=[7] * len(rows)),
        lambda rows: rows.assign(contract_type=[pd.NA] * len(rows)),
        lambda rows: rows.assign(
            signup_date=pd.to_datetime(rows["signup_date"], format="ISO8601", errors="coerce")
        ),
        lambda rows: rows.assign(monthly_spend=np.inf),
        lambda rows: rows.head(0),
    ],
    ids=["missing", "float32", "text-number", "int-category", "pd.NA", "datetime", "inf", "empty"],
)
def test_inputs_it_does_not_take_as_they_are_are_left_to_the_pipeline(trained, scorers, change):
    _, _, rows = trained
    with pytest.raises(FastPathUnsupported):
        scorers["gradient_boosting"](change(rows.head(3)))


def test_dates_pandas_reads_as_the_current_time_are_not_memoised(trained, scorers):
    _, _, rows = trained
    scorer = scorers["gradient_boosting"]
    scorer(rows.head(3).assign(signup_date=["now", "today", "2024-05-01"]))
    memo = scorer.features["signup_date_days_since"].cache
    assert "2024-05-01" in memo and "now" not in memo and "today" not in memo


class Counting:
    """The pipeline as the server's model: predict_proba, counting the rows of every call."""

    def __init__(self, pipeline):
        self.pipeline, self.calls = pipeline, []

    def predict(self, frame):
        self.calls.append(len(frame))
        return self.pipeline.predict_proba(frame)


def test_small_batches_use_the_fast_path_and_a_refused_one_falls_back(trained, scorers, caplog):
    pipelines, _, rows = trained
    model, scorer = Counting(pipelines["gradient_boosting"]), scorers["gradient_boosting"]
    frames = [rows.iloc[[0]], rows.iloc[1:4]]
    expected = [model.pipeline.predict_proba(f)[:, 1].tolist() for f in frames]
    assert score_frames(model, "1", frames, scorer) == expected and model.calls == []
    big = rows.head(FAST_PATH_MAX_ROWS + 1)
    assert score_frames(model, "1", [big], scorer) == [model.predict(big)[:, 1].tolist()]
    assert model.calls == [FAST_PATH_MAX_ROWS + 1] * 2
    refused = [frames[0], frames[1].astype({"monthly_spend": "float32"})]
    model.calls.clear()
    assert score_frames(model, "1", refused, scorer) == expected and model.calls == [4]

    def broken(frame):
        raise RuntimeError("bug")

    with caplog.at_level(logging.ERROR, logger="mlplatform.serving.batching"):
        assert score_frames(model, "1", frames, broken) == expected
    assert "fast path of model v1 failed" in caplog.text
    nan = score_frames(model, "1", frames, lambda frame: np.full(len(frame), np.nan))
    assert nan == expected
    failing = score_frames(Counting(None), "1", [frames[0]], broken)
    assert failing == [ScoringFailure("exception", "model failed: AttributeError")]
