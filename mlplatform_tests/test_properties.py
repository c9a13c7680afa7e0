"""Properties of the statistics hostile data reaches: PSI and DeLong (the payload parser's are in
``test_properties_payload.py``).

Hypothesis draws the inputs. What must hold for every one of them: no exception but the
documented ValueError, results in range, and the symmetries the formulas have (PSI is symmetric
in its two distributions; swapping two models negates their AUC difference; AUC depends on the
scores' order only).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from mlplatform.ml.metrics import auc_with_ci, paired_auc_difference
from mlplatform.monitoring.drift import feature_psi, psi
from mlplatform.monitoring.reference import build_profile

pytestmark = pytest.mark.bad_input

EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- PSI ------------------------------------------------------------------------------------

proportions = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12)


@EXAMPLES
@given(st.data())
def test_psi_is_finite_non_negative_bounded_symmetric_and_zero_on_itself(data):
    a = data.draw(proportions)
    b = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(a), max_size=len(a)))
    epsilon = data.draw(st.sampled_from([1e-6, 1e-4, 1e-2]))
    value = psi(a, b, epsilon)
    # Both sides are floored at epsilon and renormalised: every share is at least epsilon / S,
    # so each |ln(c / r)| <= ln(S / epsilon), and sum |c - r| <= 2.
    largest_sum = max(sum(max(x, epsilon) for x in side) for side in (a, b))
    assert math.isfinite(value)
    assert -1e-12 <= value <= 2 * math.log(largest_sum / epsilon) + 1e-9
    assert value == pytest.approx(psi(b, a, epsilon), rel=1e-9, abs=1e-12)
    assert psi(a, a, epsilon) == 0.0


@EXAMPLES
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), st.integers(1, 6))
def test_psi_of_distributions_of_different_lengths_is_a_value_error(a, extra):
    with pytest.raises(ValueError, match="bucket counts differ"):
        psi(a, [*a, *([0.1] * extra)])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_psi_refuses_a_proportion_that_is_not_finite(bad):
    with pytest.raises(ValueError):
        psi([0.5, bad], [0.5, 0.5])


REFERENCE = pd.DataFrame(
    {
        "spend": np.random.default_rng(1).gamma(2.0, 30.0, 500),
        "plan": np.random.default_rng(2).choice(["monthly", "annual", "multi-year"], 500),
    }
)
PROFILE = build_profile(REFERENCE, ["spend"], ["plan"], bins=5)
column_values = st.lists(
    st.none()
    | st.floats()
    | st.integers(-(10**20), 10**20)
    | st.text(max_size=5)
    | st.sampled_from(["monthly", "annual", "multi-year", "inf", "-1e309"]),
    max_size=30,
)


@EXAMPLES
@given(column_values, column_values)
def test_feature_psi_of_any_batch_is_finite_and_non_negative(spend, plan):
    rows = min(len(spend), len(plan))
    batch = pd.DataFrame({"spend": spend[:rows], "plan": plan[:rows]}, dtype=object)
    report = feature_psi(PROFILE, batch)
    assert report.rows == rows and set(report.features) == {"spend", "plan"}
    for feature in report.features.values():
        assert math.isfinite(feature.psi) and feature.psi >= -1e-12
        assert feature.status in ("ok", "watch", "drift")
        assert math.isclose(sum(feature.current), 1.0) or rows == 0


# --- DeLong ---------------------------------------------------------------------------------


@st.composite
def holdouts(draw, models: int = 1):
    """Labels with at least two rows of each class, and ``models`` finite score vectors (often
    tied: scores come from a small set half the time)."""
    labels = draw(st.lists(st.booleans(), min_size=4, max_size=60))
    assume(2 <= sum(labels) <= len(labels) - 2)
    values = draw(
        st.sampled_from(
            [
                st.floats(-1e6, 1e6, allow_nan=False),
                st.sampled_from([0.0, 0.25, 0.5, 1.0]),
                st.floats(allow_nan=False, allow_infinity=False),
            ]
        )
    )
    size = len(labels)
    scores = [draw(st.lists(values, min_size=size, max_size=size)) for _ in range(models)]
    return np.array(labels), *(np.array(s, dtype=float) for s in scores)


def _pairwise_auc(labels, scores) -> float:
    """The definition: the share of (positive, negative) pairs ranked right, ties half."""
    positives, negatives = scores[labels], scores[~labels]
    wins = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return (wins + 0.5 * ties) / (len(positives) * len(negatives))


@EXAMPLES
@given(holdouts(), st.randoms(use_true_random=False))
def test_auc_is_the_pairwise_share_in_range_with_its_interval_and_order_invariant(data, rng):
    labels, scores = data
    estimate = auc_with_ci(labels, scores)
    assert estimate.auc == pytest.approx(_pairwise_auc(labels, scores), abs=1e-12)
    assert 0.0 <= estimate.low <= estimate.auc <= estimate.high <= 1.0
    assert math.isfinite(estimate.se) and estimate.se >= 0.0
    assert (estimate.positives, estimate.negatives) == (labels.sum(), (~labels).sum())
    # Only the order of the scores matters, not their values or the rows' order.
    assert auc_with_ci(labels, rankdata(scores)).auc == pytest.approx(estimate.auc, abs=1e-12)
    order = list(range(len(labels)))
    rng.shuffle(order)
    assert auc_with_ci(labels[order], scores[order]).auc == pytest.approx(estimate.auc, abs=1e-12)
    # Reversed scores rank every pair the other way round.
    reversed_ = auc_with_ci(labels, -scores)
    assert reversed_.auc == pytest.approx(1.0 - estimate.auc, abs=1e-12)
    assert reversed_.se == pytest.approx(estimate.se, rel=1e-9, abs=1e-15)


@EXAMPLES
@given(holdouts(models=2))
def test_swapping_the_two_models_negates_the_difference_and_keeps_its_test(data):
    labels, a, b = data
    forward = paired_auc_difference(labels, a, b)
    backward = paired_auc_difference(labels, b, a)
    assert forward.delta == pytest.approx(auc_with_ci(labels, a).auc - auc_with_ci(labels, b).auc)
    assert backward.delta == pytest.approx(-forward.delta, abs=1e-12)
    assert backward.se == pytest.approx(forward.se, rel=1e-9, abs=1e-15)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9, abs=1e-12)
    assert (backward.low, backward.high) == pytest.approx((-forward.high, -forward.low), abs=1e-12)
    assert -1.0 <= forward.delta <= 1.0 and forward.se >= 0.0
    assert 0.0 <= forward.p_value <= 1.0 and forward.low <= forward.delta <= forward.high


@EXAMPLES
@given(holdouts())
def test_a_model_compared_with_itself_differs_by_zero_with_p_value_one(data):
    labels, scores = data
    same = paired_auc_difference(labels, scores, scores.copy())
    assert (same.delta, same.se, same.p_value) == (0.0, 0.0, 1.0)


@EXAMPLES
@given(
    st.lists(st.booleans(), min_size=0, max_size=8),
    st.lists(st.floats() | st.integers(-5, 5), min_size=0, max_size=8),
)
def test_unusable_holdouts_are_value_errors(labels, scores):
    usable = (
        len(labels) == len(scores)
        and 2 <= sum(labels) <= len(labels) - 2
        and all(math.isfinite(s) for s in scores)
    )
    if usable:
        assert 0.0 <= auc_with_ci(labels, scores).auc <= 1.0
    else:
        with pytest.raises(ValueError):
            auc_with_ci(labels, scores)
