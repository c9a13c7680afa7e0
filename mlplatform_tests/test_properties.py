"""Properties of the functions hostile input reaches: the scoring-payload parser, PSI and DeLong.

Hypothesis draws the inputs. What must hold for every one of them: no exception but the
documented one (PayloadError, ValueError), results in range, and the symmetries the formulas
have (PSI is symmetric in its two distributions; swapping two models negates their AUC
difference; AUC depends on the scores' order only).
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema
from scipy.stats import rankdata

from mlplatform.ml.metrics import auc_with_ci, paired_auc_difference
from mlplatform.monitoring.drift import feature_psi, psi
from mlplatform.monitoring.reference import build_profile
from mlplatform.serving.frame import parse_payload, to_frame
from mlplatform.serving.payload import (
    FORMATS,
    PayloadError,
    parse_body,
    read_table,
)

pytestmark = pytest.mark.bad_input

EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# An error message quotes at most a few shortened keys; it never echoes the request.
MAX_MESSAGE_CHARS = 600

# --- the scoring-payload parser -------------------------------------------------------------

# Every column type the parser knows, so each of its checks is reached.
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("long", "n_long"),
            ColSpec("integer", "n_int"),
            ColSpec("double", "x_double"),
            ColSpec("float", "x_float"),
            ColSpec("boolean", "flag"),
            ColSpec("string", "category"),
            ColSpec("datetime", "when"),
            ColSpec("double", "optional", required=False),
        ]
    )
)
COLUMNS = [spec.name for spec in SIGNATURE.inputs.inputs]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2024-01-31", "2024-01-31T10:00:00+05:00", "now", "9999-12-31", ""])
)
# What JSON itself can spell (no NaN or Infinity).
json_scalars = scalars.filter(lambda v: not (isinstance(v, float) and not math.isfinite(v)))
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=25,
)
keys = st.sampled_from([*COLUMNS, "extra"]) | st.text(max_size=6)
requests = st.one_of(
    st.fixed_dictionaries(
        {"dataframe_records": st.lists(st.dictionaries(keys, scalars), min_size=1, max_size=4)}
    ),
    st.fixed_dictionaries(
        {"inputs": st.dictionaries(keys, st.lists(scalars, min_size=2, max_size=2))}
    ),
    st.fixed_dictionaries(
        {
            "dataframe_split": st.fixed_dictionaries(
                {"columns": st.lists(keys, max_size=9), "data": json_like}
            )
        }
    ),
    st.dictionaries(st.sampled_from([*FORMATS, "params"]) | st.text(max_size=4), json_like),
    json_like,
)


def _assert_clear(error: PayloadError) -> None:
    """An error the app can send as it is: a 4xx, short, encodable JSON text."""
    assert error.status in (400, 413, 415, 422)
    assert 0 < len(error.message) <= MAX_MESSAGE_CHARS
    json.dumps(error.message, ensure_ascii=False).encode("utf-8")  # no lone surrogates
    if error.status == 422:
        assert error.field in COLUMNS and error.field in error.message


@EXAMPLES
@given(requests)
def test_any_request_gives_the_signature_frame_or_a_clear_payload_error(body):
    try:
        frame = parse_payload(body, SIGNATURE, max_rows=3)
    except PayloadError as error:
        _assert_clear(error)
        return
    table = read_table(body, max_rows=3)
    assert 1 <= len(frame) == table.n_rows <= 3
    assert list(frame.columns) == [c for c in COLUMNS if c in table.values]
    for column in ("x_double", "x_float"):
        if column in frame:
            values = frame[column].to_numpy(dtype=float)
            assert not np.isinf(values).any()  # NaN only where the request sent null


@EXAMPLES
@given(
    st.binary(max_size=300) | requests.map(lambda b: json.dumps(b).encode()),
    st.sampled_from(["application/json", "application/json; charset=UTF-8", "text/plain", None, ""])
    | st.text(max_size=40),
)
def test_any_bytes_and_content_type_parse_or_give_a_clear_payload_error(raw, content_type):
    try:
        body = parse_body(raw, content_type, max_bytes=200)
    except PayloadError as error:
        _assert_clear(error)
        return
    assert content_type.lower().startswith("application/json") and len(raw) <= 200
    try:
        parse_payload(body, SIGNATURE)
    except PayloadError as error:
        _assert_clear(error)


valid_rows = st.lists(
    st.fixed_dictionaries(
        {
            "n_long": st.integers(-(2**63), 2**63 - 1),
            "n_int": st.integers(-(2**31), 2**31 - 1),
            "x_double": st.floats(allow_nan=False, allow_infinity=False) | st.none(),
            "x_float": st.floats(-1e30, 1e30) | st.none(),
            "flag": st.booleans(),
            "category": st.text(max_size=8) | st.none(),
            "when": st.datetimes(datetime(1700, 1, 1), datetime(2200, 12, 31)).map(
                datetime.isoformat
            ),
        }
    ),
    min_size=1,
    max_size=5,
)


@EXAMPLES
@given(valid_rows)
def test_valid_rows_give_the_same_frame_in_all_three_formats_without_loss(rows):
    columns = list(rows[0])
    bodies = [
        {"dataframe_records": rows},
        {"inputs": {c: [r[c] for r in rows] for c in columns}},
        {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}},
    ]
    frames = [parse_payload(parse_body(json.dumps(b).encode(), "application/json"), SIGNATURE)
              for b in bodies]  # fmt: skip
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])
    frame = frames[0]
    assert frame["n_long"].tolist() == [r["n_long"] for r in rows]
    assert frame["flag"].tolist() == [r["flag"] for r in rows]
    assert frame["when"].tolist() == [pd.Timestamp(r["when"]) for r in rows]


@EXAMPLES
@given(st.integers(1, 8), st.integers(1, 8))
def test_the_row_limit_is_exact(rows, max_rows):
    table = {"inputs": [{"n_long": 1}] * rows}
    if rows <= max_rows:
        assert read_table(table, max_rows).n_rows == rows
    else:
        with pytest.raises(PayloadError, match=f"{rows} rows is over the limit") as caught:
            read_table(table, max_rows)
        assert caught.value.status == 413


@EXAMPLES
@given(st.dictionaries(st.text(max_size=6), json_scalars, min_size=1, max_size=5), st.data())
def test_a_key_repeated_in_any_object_is_refused(row, data):
    key = data.draw(st.sampled_from(sorted(row)))
    pairs = [
        *(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in row.items()),
        f"{json.dumps(key)}: 1",
    ]
    raw = ('{"dataframe_records": [{' + ", ".join(pairs) + "}]}").encode()
    with pytest.raises(PayloadError, match="appears twice") as caught:
        parse_body(raw, "application/json")
    _assert_clear(caught.value)


def test_an_aware_date_time_is_kept_as_utc_and_now_is_not_a_date_time():
    table = read_table({"inputs": {"when": ["2024-01-31T10:00:00+05:00"]}})
    only_when = ModelSignature(inputs=Schema([ColSpec("datetime", "when")]))
    assert to_frame(table, only_when)["when"].tolist() == [pd.Timestamp("2024-01-31T05:00:00")]
    with pytest.raises(PayloadError, match="'when' row 0: expected an ISO date-time"):
        parse_payload({"inputs": {"when": ["now"]}}, only_when)


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
