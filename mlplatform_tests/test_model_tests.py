"""Unit tests for the model tests: slices, behaviour, prediction coverage, calibration, power."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from mlplatform.datasets.spec import SPEC_DIR, BehaviourSpec, load_spec, parse_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.validation import enforce_spec
from mlplatform.ml.coverage import (
    prediction_coverage,
)
from mlplatform.ml.diagnostics import (
    calibration,
    minimum_detectable_delta,
    power_check,
)
from mlplatform.ml.metrics import (
    auc_with_ci,
    paired_auc_difference,
)
from mlplatform.ml.model_tests import (
    UNSEEN,
    behaviour_test,
    holm,
    slice_aucs,
)
from mlplatform.ml.training import TrainingParams, churn_scores, model_input, train_pipeline


def binormal(rng, rows, auc, prevalence=0.3):
    y = rng.random(rows) < prevalence
    return y, rng.standard_normal(rows) + np.sqrt(2) * stats.norm.ppf(auc) * y


@pytest.fixture(scope="module")
def spec():
    return load_spec("synthetic_churn")


@pytest.fixture(scope="module")
def rows(spec):
    typed = enforce_spec(generate_batch(date(2026, 1, 1), 600), spec, "day")[0]
    return model_input(typed, spec)


# --- slices -------------------------------------------------------------------------------------


def test_holm_adjusts_step_down_and_caps_at_one():
    adjusted = holm([0.01, 0.04, 0.03, 0.005, 0.9])
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.9])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_small_slices_are_skipped_with_the_reason_not_failed():
    rng = np.random.default_rng(0)
    y, scores = binormal(rng, 400, 0.5)  # useless model: tested slices would fail
    y[:40] = [True] * 3 + [False] * 37
    segment = np.array(["big"] * 400, dtype=object)
    segment[:40], segment[40:60] = "few_positives", "tiny"
    results = slice_aucs(y, scores, pd.DataFrame({"segment": segment}))
    by_value = {r.value: r for r in results}
    assert by_value["tiny"].skipped == "20 rows < minimum 30"
    assert "3 positives" in by_value["few_positives"].skipped
    for value in ("tiny", "few_positives"):
        assert by_value[value].status == "skipped" and not by_value[value].failed
        assert by_value[value].estimate is None and by_value[value].p_value is None
    assert by_value["big"].status == "failed" and by_value["big"].adjusted_p_value < 0.05


def test_groups_booleans_categories_missing_values_and_quartiles_of_numbers():
    rng = np.random.default_rng(1)
    y, scores = binormal(rng, 800, 0.9)
    tenure = rng.integers(0, 100, 800).astype(float)
    tenure[:50] = np.nan
    frame = pd.DataFrame(
        {
            "is_enterprise": rng.random(800) < 0.5,
            "plan": rng.choice(["a", "b", None], 800),
            "tenure": tenure,
            "tickets": rng.integers(0, 4, 800),
        }
    )
    results = slice_aucs(y, scores, frame)
    values = {c: {r.value for r in results if r.column == c} for c in frame.columns}
    assert values["is_enterprise"] == {True, False}
    assert values["plan"] == {"a", "b", None}
    assert values["tickets"] == {0, 1, 2, 3}
    assert None in values["tenure"] and len(values["tenure"]) == 5
    quartiles = [r.rows for r in results if r.column == "tenure" and r.value is not None]
    assert sum(quartiles) == 750 and min(quartiles) > 150
    assert sum(r.rows for r in results if r.column == "plan") == 800
    assert not any(r.failed for r in results)


def test_ten_slices_at_the_threshold_fail_by_noise_at_most_alpha_with_holm():
    """300 simulated holdouts, 10 slices of 300 rows each with true AUC exactly 0.74.

    Uncorrected, some slice fails in 1 - 0.95^10 = 40% of holdouts; Holm keeps it at <= 5%
    (bound: 5% + 3 Monte Carlo SEs = 8.8%).
    """
    rng = np.random.default_rng(2)
    sims, segments = 300, np.repeat(np.arange(10), 300)
    frame = pd.DataFrame({"segment": segments})
    holm_fails = uncorrected_fails = 0
    for _ in range(sims):
        y, scores = binormal(rng, len(segments), 0.74)
        results = slice_aucs(y, scores, frame, threshold=0.74)
        holm_fails += any(r.failed for r in results)
        uncorrected_fails += any(r.p_value <= 0.05 for r in results)
    assert holm_fails / sims <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / sims)
    assert uncorrected_fails / sims >= 0.25


def test_a_clearly_weak_slice_fails_and_a_strong_one_passes():
    rng = np.random.default_rng(3)
    y_good, s_good = binormal(rng, 1000, 0.85)
    y_bad, s_bad = binormal(rng, 1000, 0.62)
    frame = pd.DataFrame({"region": ["north"] * 1000 + ["south"] * 1000})
    results = slice_aucs(np.r_[y_good, y_bad], np.r_[s_good, s_bad], frame)
    assert [(r.value, r.status) for r in results] == [("north", "passed"), ("south", "failed")]


# --- behaviour ----------------------------------------------------------------------------------


def toy_predict(frame: pd.DataFrame) -> np.ndarray:
    """Annual and multi-year contracts lower churn; more tickets raise it; region is ignored."""
    logit = -1.0 + 0.3 * frame["support_tickets"].to_numpy(float)
    logit = (
        logit
        - 1.2 * (frame["contract_type"] == "annual")
        - 2.0 * (frame["contract_type"] == "multi-year")
    )
    return 1.0 / (1.0 + np.exp(-logit.to_numpy(float)))


def test_spec_behaviour_holds_for_a_monotone_model(spec, rows):
    behaviour = spec.behaviours[0]
    result = behaviour_test(toy_predict, rows, behaviour)
    assert result.rows_tested == int((rows["contract_type"] == "monthly").sum()) > 0
    assert result.fraction == 1.0 and result.passed and result.mean_change < 0
    reversed_ = behaviour_test(toy_predict, rows, replace(behaviour, expect="increase"))
    assert reversed_.fraction == 0.0 and not reversed_.passed


def test_wildcard_from_changes_every_row_and_counts_only_strict_moves(rows):
    behaviour = BehaviourSpec("to_annual", "contract_type", "*", "annual", "decrease", 0.5)
    result = behaviour_test(toy_predict, rows, behaviour)
    assert result.rows_tested == len(rows)
    # Annual rows do not move and multi-year rows move up: only monthly rows meet "decrease".
    expected = float((rows["contract_type"] == "monthly").mean())
    assert result.fraction == pytest.approx(expected)


@pytest.mark.parametrize("expect", ["invariant", "unchanged"])
def test_invariance_within_tolerance(rows, expect):
    region = BehaviourSpec("region", "region", None, "west", expect, 0.99)
    assert behaviour_test(toy_predict, rows, region).passed
    contract = BehaviourSpec("contract", "contract_type", "monthly", "annual", expect, 0.99)
    result = behaviour_test(toy_predict, rows, contract, tolerance=0.01)
    assert not result.passed and result.fraction == 0.0


def test_behaviour_without_matching_rows_is_skipped_and_bad_expect_raises(rows):
    nothing = BehaviourSpec("x", "contract_type", "lifetime", "annual", "decrease")
    result = behaviour_test(toy_predict, rows, nothing)
    assert result.rows_tested == 0 and not result.passed and "lifetime" in result.skipped
    with pytest.raises(ValueError, match="sideways"):
        behaviour_test(toy_predict, rows, replace(nothing, expect="sideways"))


# --- prediction coverage ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nullable_spec():
    raw = yaml.safe_load((SPEC_DIR / "synthetic_churn.yaml").read_text())
    for column in ("monthly_spend", "region", "is_enterprise"):
        raw["columns"][column]["nullable"] = True
    return parse_spec(raw)


def test_coverage_names_rows_where_unseen_categories_give_nan(rows, nullable_spec):
    def fragile(frame):
        known = frame["region"].isin(["north", "south", "east", "west", "central"])
        return np.where(known, toy_predict(frame), np.nan)

    results = {r.variant: r for r in prediction_coverage(fragile, rows, nullable_spec)}
    assert set(results) == {"as_is", "unseen_categories", "missing_optional"}
    assert results["as_is"].passed
    unseen = results["unseen_categories"]
    assert set(unseen.columns) == {"contract_type", "region", "payment_method"}
    assert unseen.invalid == len(rows) and unseen.examples == tuple(rows.index[:5])
    # Missing regions are not known regions either.
    assert results["missing_optional"].invalid == len(rows)


def test_coverage_reports_a_model_that_raises_or_leaves_the_unit_interval(rows, spec):
    def broken(frame):
        if (frame["contract_type"] == UNSEEN).any():
            raise KeyError("contract_type")
        return toy_predict(frame) + 0.5

    results = {r.variant: r for r in prediction_coverage(broken, rows, spec, max_examples=2)}
    assert "missing_optional" not in results  # the shipped spec has no nullable columns
    assert 0 < results["as_is"].invalid < len(rows) and len(results["as_is"].examples) == 2
    assert "KeyError" in results["unseen_categories"].error


def test_a_trained_pipeline_covers_unseen_categories_and_missing_values(nullable_spec):
    train = enforce_spec(generate_batch(date(2026, 1, 2), 1500), nullable_spec, "train")[0]
    pipeline = train_pipeline(train, nullable_spec, TrainingParams("logistic_regression"))
    holdout = enforce_spec(generate_batch(date(2026, 1, 3), 600), nullable_spec, "holdout")[0]
    results = prediction_coverage(
        lambda frame: churn_scores(pipeline, frame),
        model_input(holdout, nullable_spec),
        nullable_spec,
    )
    assert [(r.variant, r.invalid, r.error) for r in results] == [
        ("as_is", 0, None),
        ("unseen_categories", 0, None),
        ("missing_optional", 0, None),
    ]


# --- calibration --------------------------------------------------------------------------------


def test_calibrated_probabilities_have_small_ece_and_shifted_ones_large():
    rng = np.random.default_rng(4)
    p = rng.random(50_000)
    y = rng.random(50_000) < p
    calibrated = calibration(y, p)
    assert calibrated.ece < 0.01
    assert calibrated.brier == pytest.approx(1 / 6, abs=0.005)  # E[p(1 - p)] for p ~ U(0, 1)
    shifted = calibration(y, np.clip(p + 0.15, 0, 1))
    assert shifted.ece > 0.1 and shifted.brier > calibrated.brier
    table = calibrated.bins
    assert len(table) == 10 and sum(b.count for b in table) == 50_000
    assert (table[0].low, table[-1].high) == (0.0, 1.0)
    assert all(abs(b.observed_rate - b.mean_predicted) < 0.02 for b in table)


def test_reliability_table_keeps_empty_bins_and_rejects_invalid_probabilities():
    result = calibration([0, 1, 1], [0.05, 0.95, 1.0])
    assert [b.count for b in result.bins] == [1] + [0] * 8 + [2]
    assert result.bins[4].mean_predicted is None and result.bins[4].observed_rate is None
    with pytest.raises(ValueError, match="within"):
        calibration([0, 1], [0.5, np.nan])


# --- power --------------------------------------------------------------------------------------


def test_minimum_detectable_delta_formula():
    assert minimum_detectable_delta(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert minimum_detectable_delta(0.01, power=0.5) == pytest.approx(0.0196, abs=1e-4)


def test_minimum_detectable_delta_shrinks_as_the_holdout_grows():
    rng = np.random.default_rng(5)
    mdds = []
    for rows in (500, 2_000, 8_000, 32_000):
        y, scores = binormal(rng, rows, 0.8)
        check = power_check(auc_with_ci(y, scores), None, min_delta=0.005)
        assert check.assumed and check.se_diff == pytest.approx(auc_with_ci(y, scores).se)
        mdds.append(check.minimum_detectable_delta)
    assert mdds == sorted(mdds, reverse=True)
    assert mdds[0] / mdds[-1] == pytest.approx(8.0, rel=0.25)  # ~ 1 / sqrt(rows)


def test_power_check_uses_the_paired_se_and_warns_on_an_underpowered_holdout():
    rng = np.random.default_rng(6)
    y, a = binormal(rng, 600, 0.8)
    b = 0.9 * a + 0.3 * rng.standard_normal(600)
    difference = paired_auc_difference(y, a, b)
    check = power_check(auc_with_ci(y, a), difference, min_delta=0.005)
    assert not check.assumed and check.se_diff == difference.se
    assert check.warn and check.delta_for_power_at_gate > check.minimum_detectable_delta
    assert not power_check(auc_with_ci(y, a), difference, min_delta=1.0).warn


def test_a_spec_with_an_unknown_behaviour_expectation_is_refused(tmp_path):
    import yaml

    from mlplatform.datasets.spec import SpecError, load_spec
    from mlplatform_tests.conftest import write_spec

    path = write_spec(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["behaviours"][0]["expect"] = "lower"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match="'lower' is not one of decrease, increase, unchanged"):
        load_spec(str(path))
