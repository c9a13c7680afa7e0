"""The canary's sequential error tests: false-alarm rate under continuous monitoring, power,
and robustness to any counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.sequential import (
    LOG_LR_FLOOR,
    ceiling_log_lr,
    check_error_ceiling,
    clopper_pearson_lower,
    compare_error_rates,
    conditional_log_lr,
    sprt_thresholds,
)

PLAN = CanaryPlan()
BATCH = 100
REPETITIONS = 200
# The release schedule as the test sees it: a look after every batch of 100 requests.
SCHEDULE = [0.05] * 30 + [0.25] * 30 + [0.5] * 140


def first_alarm(rng, canary_rate, champion_rate, weights, plan=PLAN) -> int | None:
    """Index of the first batch at which either error test rolls back, or None."""
    log_lr, n_canary, x_canary = 0.0, 0, 0
    ceiling_threshold = math.log(1.0 / plan.ceiling_alpha)
    for k, weight in enumerate(weights):
        n_c = rng.binomial(BATCH, weight)
        x_c, x_b = rng.binomial(n_c, canary_rate), rng.binomial(BATCH - n_c, champion_rate)
        log_lr += conditional_log_lr(x_c, n_c, x_b, BATCH - n_c, plan.error_ratio)
        n_canary, x_canary = n_canary + n_c, x_canary + x_c
        if log_lr >= plan.sprt.upper:
            return k
        if ceiling_log_lr(x_canary, n_canary, plan.max_error_rate) >= ceiling_threshold:
            return k
    return None


def test_thresholds():
    thresholds = sprt_thresholds(0.01, 0.05)
    assert thresholds.upper == pytest.approx(math.log(100))
    assert thresholds.lower == pytest.approx(math.log(0.05 / 0.99))
    with pytest.raises(ValueError):
        sprt_thresholds(0.0, 0.05)


def test_increment_is_the_conditional_binomial_log_likelihood_ratio():
    n_c, n_b, x_c, x_b, ratio = 50, 950, 4, 10, 2.0
    q0, q1 = n_c / (n_c + n_b), ratio * n_c / (ratio * n_c + n_b)
    expected = stats.binom.logpmf(x_c, x_c + x_b, q1) - stats.binom.logpmf(x_c, x_c + x_b, q0)
    assert conditional_log_lr(x_c, n_c, x_b, n_b, ratio) == pytest.approx(expected)
    # One arm without requests says nothing about relative rates (the 100% step).
    assert conditional_log_lr(3, 100, 0, 0) == 0.0


def test_false_rollback_rate_under_continuous_monitoring():
    rng = np.random.default_rng(20260301)
    alarms = [first_alarm(rng, 0.02, 0.02, SCHEDULE) for _ in range(REPETITIONS)]
    rate = sum(a is not None for a in alarms) / REPETITIONS
    # alpha = 0.01; 3/200 leaves room for simulation noise (Ville's bound is usually slack).
    assert rate <= 0.015


def test_repeated_fixed_sample_test_would_inflate_false_alarms():
    """Why a sequential test: a one-look test at level alpha, repeated at every look, is not."""
    rng = np.random.default_rng(7)
    z = stats.norm.isf(PLAN.alpha)
    alarms = 0
    for _ in range(REPETITIONS):
        n = rng.binomial(BATCH, 0.25, size=200)
        x_c, x_b = rng.binomial(n, 0.02), rng.binomial(BATCH - n, 0.02)
        nc, nb, ec, eb = n.cumsum(), (BATCH - n).cumsum(), x_c.cumsum(), x_b.cumsum()
        pooled = (ec + eb) / (nc + nb)
        se = np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / nc + 1 / nb), 1e-12))
        alarms += bool(np.any((ec / nc - eb / nb) / se >= z))
    assert alarms / REPETITIONS > 2 * PLAN.alpha


@pytest.mark.parametrize(
    ("weight", "median_batches", "p95_batches"), [(0.05, 60, 120), (0.25, 20, 35)]
)
def test_five_times_the_errors_is_caught_quickly(weight, median_batches, p95_batches):
    rng = np.random.default_rng(11)
    alarms = [first_alarm(rng, 0.05, 0.01, [weight] * 300) for _ in range(REPETITIONS)]
    assert all(a is not None for a in alarms)
    assert np.median(alarms) <= median_batches
    assert np.percentile(alarms, 95) <= p95_batches


def test_ceiling_catches_a_bad_canary_against_a_flawless_champion():
    check = check_error_ceiling(30, 200, max_error_rate=0.05, alpha=0.001)
    assert check.breached and check.rate == pytest.approx(0.15)
    assert 0.05 < check.lower_bound < 0.15
    assert not check_error_ceiling(8, 200, max_error_rate=0.05, alpha=0.001).breached


def test_ceiling_false_alarm_rate_at_the_ceiling():
    rng = np.random.default_rng(3)
    alpha, alarms = 0.05, 0
    for _ in range(REPETITIONS):
        x = rng.binomial(BATCH, 0.05, size=200).cumsum()
        n = np.arange(1, 201) * BATCH
        alarms += any(
            ceiling_log_lr(e, r, 0.05) >= math.log(1 / alpha) for e, r in zip(x, n, strict=True)
        )
    assert alarms / REPETITIONS <= alpha + 0.02


def test_ceiling_matches_numerical_integration():
    from scipy import integrate

    x, n, p0 = 3, 40, 0.05
    mass = integrate.quad(lambda p: (p / p0) ** x * ((1 - p) / (1 - p0)) ** (n - x), p0, 1)[0]
    assert ceiling_log_lr(x, n, p0) == pytest.approx(math.log(mass / (1 - p0)))


counts = st.one_of(st.integers(-10, 10**9), st.floats(-1e3, 1e12, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(counts, counts, counts, counts, st.floats(1.01, 100))
# Found by hypothesis: a subnormal error count overflowed scipy's beta ppf (n=5) or gave a
# bound above the rate (n=1).
@example(x_c=5e-324, n_c=5, x_b=0, n_b=0, ratio=2.0)
@example(x_c=5e-324, n_c=1, x_b=0, n_b=0, ratio=2.0)
def test_any_counts_give_finite_evidence_in_range(x_c, n_c, x_b, n_b, ratio):
    log_lr = conditional_log_lr(x_c, n_c, x_b, n_b, ratio)
    assert math.isfinite(log_lr)
    result = compare_error_rates(log_lr, x_c, n_c, x_b, n_b, PLAN.sprt)
    assert 0.0 <= result.canary_rate <= 1.0 and 0.0 <= result.champion_rate <= 1.0
    assert not (result.breached and result.not_worse)
    ceiling = check_error_ceiling(x_c, n_c, 0.05, 0.001)
    assert math.isfinite(ceiling.log_lr) and ceiling.log_lr >= LOG_LR_FLOOR
    assert 0.0 <= ceiling.lower_bound <= max(ceiling.rate, 0.0) + 1e-12


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 500), st.integers(1, 10**6), st.integers(0, 500), st.integers(1, 10**6))
def test_more_canary_errors_is_more_evidence(x_c, n_c, x_b, n_b):
    assert conditional_log_lr(x_c + 1, n_c, x_b, n_b) > conditional_log_lr(x_c, n_c, x_b, n_b)
    assert conditional_log_lr(x_c, n_c, x_b + 1, n_b) < conditional_log_lr(x_c, n_c, x_b, n_b)


def test_clopper_pearson_is_zero_without_errors():
    assert clopper_pearson_lower(0, 1000) == 0.0
    assert clopper_pearson_lower(10, 100, 0.99) < 0.1
    # Exact values (scipy's Beta quantile) and the tiny-count limit, where the bound is ~0.
    assert clopper_pearson_lower(3, 40, 0.999) == pytest.approx(0.0048746734204535)
    assert clopper_pearson_lower(1e-7, 5, 0.999) <= 1e-7 / 5
