"""Tests for DeLong AUC intervals (mlplatform.ml.metrics) and the frozen holdout."""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.validation import enforce_spec
from mlplatform.datasets.versioning import frame_digest
from mlplatform.ml.holdout import (
    HOLDOUT_FILE,
    META_FILE,
    holdout_history,
    in_holdout,
    load_or_create_holdout,
    reset_holdout,
    training_rows,
)
from mlplatform.ml.metrics import auc_with_ci, paired_auc_difference


@st.composite
def labelled_scores(draw, tied=None):
    """Labels with at least two rows of each class, and scores (often tied)."""
    positives = draw(st.integers(2, 40))
    negatives = draw(st.integers(2, 40))
    labels = draw(st.permutations([True] * positives + [False] * negatives))
    n = positives + negatives
    tied = draw(st.booleans()) if tied is None else tied
    values = st.integers(0, 4) if tied else st.floats(-1e6, 1e6, allow_nan=False)
    scores = draw(st.lists(values, min_size=n, max_size=n))
    return np.array(labels), np.array(scores, dtype=float)


def binormal(rng, positives, negatives, separation):
    labels = np.r_[np.ones(positives, bool), np.zeros(negatives, bool)]
    scores = rng.normal(0.0, 1.0, positives + negatives) + separation * labels
    return labels, scores


# --- DeLong AUC ----------------------------------------------------------------------------------


@given(data=labelled_scores())
@settings(max_examples=200, deadline=None)
def test_delong_auc_equals_sklearn_roc_auc(data):
    labels, scores = data
    assert auc_with_ci(labels, scores).auc == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12
    )


@given(data=labelled_scores())
@settings(max_examples=100, deadline=None)
def test_interval_contains_the_auc_and_lies_in_unit_range(data):
    estimate = auc_with_ci(*data)
    assert 0.0 <= estimate.low <= estimate.auc <= estimate.high <= 1.0
    assert estimate.se >= 0.0
    assert estimate.positives + estimate.negatives == len(data[0])


def test_interval_narrows_with_more_rows():
    rng = np.random.default_rng(1)
    small = auc_with_ci(*binormal(rng, 60, 140, 1.0))
    large = auc_with_ci(*binormal(rng, 1500, 3500, 1.0))
    assert large.half_width < small.half_width / 3
    assert large.se < small.se


def test_known_small_example_and_description():
    estimate = auc_with_ci([0, 0, 1, 1, 1, 0], [0.1, 0.4, 0.35, 0.8, 0.9, 0.2])
    assert estimate.auc == pytest.approx(8 / 9)
    assert (estimate.positives, estimate.negatives) == (3, 3)
    assert estimate.describe().startswith("AUC 0.889 +/- ")


def test_higher_confidence_gives_a_wider_interval():
    labels, scores = binormal(np.random.default_rng(2), 100, 100, 0.8)
    assert auc_with_ci(labels, scores, 0.99).half_width > auc_with_ci(labels, scores).half_width


def test_95_percent_interval_covers_the_true_auc_in_90_to_99_percent_of_data_sets():
    rng = np.random.default_rng(20260101)
    separation = 1.0
    true_auc = stats.norm.cdf(separation / np.sqrt(2))
    started = time.perf_counter()
    covered = 0
    for _ in range(200):
        estimate = auc_with_ci(*binormal(rng, 150, 350, separation))
        covered += estimate.low <= true_auc <= estimate.high
    assert time.perf_counter() - started < 3.0
    assert 0.90 <= covered / 200 <= 0.99


@given(data=labelled_scores())
@settings(max_examples=50, deadline=None)
def test_paired_difference_of_a_model_with_itself_is_zero_with_p_value_one(data):
    labels, scores = data
    diff = paired_auc_difference(labels, scores, scores.copy())
    assert diff.delta == 0.0
    assert diff.p_value == 1.0
    assert diff.low <= 0.0 <= diff.high


def test_clearly_better_model_has_positive_delta_with_low_above_zero():
    rng = np.random.default_rng(3)
    labels = rng.random(800) < 0.3
    better = labels * 1.5 + rng.normal(0, 1, 800)
    worse = labels * 0.3 + rng.normal(0, 1, 800)
    diff = paired_auc_difference(labels, better, worse)
    expected = roc_auc_score(labels, better) - roc_auc_score(labels, worse)
    assert diff.delta == pytest.approx(expected)
    assert diff.delta > 0
    assert diff.low > 0
    assert diff.p_value < 1e-6
    reverse = paired_auc_difference(labels, worse, better)
    assert reverse.delta == pytest.approx(-diff.delta)
    assert reverse.p_value == pytest.approx(diff.p_value)
    assert reverse.high < 0


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], "at least 2 positives and 2 negatives"),
        ([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], "at least 2 positives and 2 negatives"),
        ([1, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], "got 1 and 3"),
        ([1, 1, 0, 0], [0.1, np.nan, 0.3, 0.4], "NaN"),
        ([1, 1, 0, 0], [0.1, np.inf, 0.3, 0.4], "infinite"),
        ([1, 1, 0, 0], [0.1, 0.2, 0.3], "3 scores for 4 labels"),
    ],
    ids=["all-positive", "all-negative", "single-positive", "nan", "inf", "length"],
)
def test_invalid_input_raises_value_error(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        auc_with_ci(labels, scores)
    with pytest.raises(ValueError, match=message):
        paired_auc_difference(labels, scores, scores)


# --- holdout -------------------------------------------------------------------------------------

IDS = pd.Series([f"C{i:06d}" for i in range(20_000)])


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5, 0.9])
def test_in_holdout_share_is_close_to_the_requested_fraction(fraction):
    mask = in_holdout(IDS, fraction)
    assert mask.dtype == bool
    assert len(mask) == len(IDS)
    assert mask.mean() == pytest.approx(fraction, abs=0.015)


def test_in_holdout_is_deterministic_and_the_salt_redraws_it():
    first = in_holdout(IDS, 0.2)
    np.testing.assert_array_equal(first, in_holdout(IDS.copy(), 0.2))
    assert (first != in_holdout(IDS, 0.2, salt="redraw-2026")).mean() > 0.2


@given(
    ids=st.lists(st.text(max_size=8), min_size=1, max_size=40, unique=True),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=50, deadline=None)
def test_in_holdout_membership_does_not_depend_on_row_order(ids, fraction, seed):
    order = np.random.default_rng(seed).permutation(len(ids))
    base = dict(zip(ids, in_holdout(pd.Series(ids), fraction), strict=True))
    shuffled = [ids[i] for i in order]
    shuffled_mask = in_holdout(pd.Series(shuffled, index=np.arange(len(ids)) * 7), fraction)
    assert [base[i] for i in shuffled] == list(shuffled_mask)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_in_holdout_rejects_fractions_outside_zero_one(fraction):
    with pytest.raises(ValueError, match="holdout fraction"):
        in_holdout(IDS.head(5), fraction)


@pytest.fixture(scope="module")
def typed_days():
    spec = load_spec("synthetic_churn")
    first = enforce_spec(generate_batch(date(2026, 1, 1), 1000), spec, "day1")[0]
    second = enforce_spec(generate_batch(date(2026, 1, 2), 1000), spec, "day2")[0]
    return first, second


def test_holdout_is_created_once_and_reused_even_with_other_data(tmp_path, typed_days):
    first_day, second_day = typed_days
    store = tmp_path / "holdouts" / "synthetic_churn"
    created = load_or_create_holdout(store, first_day, "customer_id", 0.2)
    assert created.created
    assert created.path == store / HOLDOUT_FILE
    expected_ids = first_day.loc[in_holdout(first_day["customer_id"], 0.2), "customer_id"]
    assert created.frame["customer_id"].tolist() == expected_ids.tolist()
    assert 150 < len(created.frame) < 250

    reused = load_or_create_holdout(store, second_day, "customer_id", 0.5)
    assert not reused.created
    assert reused.version == created.version
    pd.testing.assert_frame_equal(reused.frame, created.frame)


def test_holdout_version_is_the_digest_of_the_reloaded_parquet(tmp_path, typed_days):
    holdout = load_or_create_holdout(tmp_path, typed_days[0], "customer_id", 0.2)
    assert holdout.version == frame_digest(pd.read_parquet(tmp_path / HOLDOUT_FILE))
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["version"] == holdout.version
    assert (meta["rows"], meta["fraction"]) == (len(holdout.frame), 0.2)
    assert not list(tmp_path.glob("*.tmp"))


def test_training_rows_never_overlap_the_holdout(tmp_path, typed_days):
    first_day, second_day = typed_days
    holdout = load_or_create_holdout(tmp_path, first_day, "customer_id", 0.3)
    held = set(holdout.frame["customer_id"])
    train = training_rows(first_day, holdout, "customer_id")
    assert held.isdisjoint(train["customer_id"])
    assert len(train) + len(holdout.frame) == len(first_day)
    assert train.index.equals(pd.RangeIndex(len(train)))

    later = pd.concat([second_day, first_day.sample(frac=1.0, random_state=0)], ignore_index=True)
    later_train = training_rows(later, holdout, "customer_id")
    assert held.isdisjoint(later_train["customer_id"])
    assert set(second_day["customer_id"]) <= set(later_train["customer_id"])


def test_reset_holdout_retires_the_snapshot_and_records_who_when_and_why(tmp_path, typed_days):
    first_day, second_day = typed_days
    assert reset_holdout(tmp_path, by="ana", reason="nothing there yet") is None
    original = load_or_create_holdout(tmp_path, first_day, "customer_id", 0.2)
    retired = reset_holdout(tmp_path, by="ana", reason="new customer segment")
    assert retired == original.version
    assert not (tmp_path / HOLDOUT_FILE).exists()
    assert not (tmp_path / META_FILE).exists()
    redrawn = load_or_create_holdout(tmp_path, second_day, "customer_id", 0.2)
    assert redrawn.created
    assert set(redrawn.frame["customer_id"]) <= set(second_day["customer_id"])
    history = holdout_history(tmp_path)
    assert [h["action"] for h in history] == ["created", "reset", "created"]
    assert history[1]["retired_version"] == original.version
    assert (history[1]["by"], history[1]["reason"]) == ("ana", "new customer segment")
    assert history[2]["version"] == redrawn.version


@pytest.mark.parametrize("by, reason", [("", "why"), ("ana", " ")])
def test_reset_holdout_refuses_without_a_name_and_a_reason(tmp_path, typed_days, by, reason):
    load_or_create_holdout(tmp_path, typed_days[0], "customer_id", 0.2)
    with pytest.raises(ValueError, match="name .* and a reason"):
        reset_holdout(tmp_path, by=by, reason=reason)
    assert (tmp_path / HOLDOUT_FILE).exists()
