"""Properties of the scoring-payload parser, which hostile requests reach first.

Hypothesis draws the bodies. What must hold for every one of them: a frame in the signature's
columns and types, or a PayloadError the app can send as it is (a 4xx, short, encodable, never
echoing the request); the three formats give the same frame; limits are exact.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

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
