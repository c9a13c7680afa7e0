"""Scoring payloads: body checks, the three MLflow formats, and validation against a signature."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from mlplatform.serving.frame import parse_payload, to_frame
from mlplatform.serving.payload import (
    PayloadError,
    parse_body,
    read_table,
)

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("long", "tenure_months"),
            ColSpec("double", "monthly_spend"),
            ColSpec("string", "contract_type"),
            ColSpec("boolean", "is_enterprise"),
            ColSpec("string", "signup_date"),
            ColSpec("double", "discount", required=False),
        ]
    )
)
ROWS = [
    {
        "customer_id": "c-1",
        "tenure_months": 12,
        "monthly_spend": 55.5,
        "contract_type": "monthly",
        "is_enterprise": False,
        "signup_date": "2024-01-31",
    },
    {
        "customer_id": "c-2",
        "tenure_months": 40,
        "monthly_spend": 120,
        "contract_type": "two-year",  # unseen category: the model's business, not ours
        "is_enterprise": True,
        "signup_date": "2021-06-01",
    },
]
JSON = "application/json"


def _split(rows=ROWS) -> dict:
    columns = list(rows[0])
    return {
        "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
    }


def _with(column: str, value, row: int = 1) -> dict:
    rows = [dict(r) for r in ROWS]
    rows[row][column] = value
    return {"dataframe_records": rows}


@pytest.mark.parametrize(
    "body",
    [
        _split(),
        {"dataframe_records": ROWS},
        {"inputs": ROWS},
        {"inputs": {c: [r[c] for r in ROWS] for c in ROWS[0]}},
        {**_split(), "dataframe_split": {**_split()["dataframe_split"], "index": [7, 8]}},
    ],
    ids=["split", "records", "inputs-records", "inputs-columns", "split-index"],
)
def test_every_format_gives_the_same_frame_in_signature_order_and_types(body):
    raw = json.dumps(body).encode()
    frame = parse_payload(parse_body(raw, JSON), SIGNATURE)
    assert list(frame.columns) == [
        "tenure_months",
        "monthly_spend",
        "contract_type",
        "is_enterprise",
        "signup_date",
    ]  # customer_id ignored; the optional discount absent
    assert frame["tenure_months"].dtype == np.int64
    assert frame["monthly_spend"].dtype == np.float64
    assert frame["is_enterprise"].dtype == bool
    assert frame["contract_type"].tolist() == ["monthly", "two-year"]
    assert frame["monthly_spend"].tolist() == [55.5, 120.0]


def test_nulls_are_missing_values_in_float_and_string_columns_and_integral_floats_are_ints():
    rows = [dict(ROWS[0], monthly_spend=None, contract_type=None, tenure_months=3.0, discount=1)]
    frame = parse_payload({"dataframe_records": rows}, SIGNATURE)
    assert np.isnan(frame.loc[0, "monthly_spend"])
    assert frame.loc[0, "contract_type"] is None
    assert frame.loc[0, "tenure_months"] == 3 and frame["tenure_months"].dtype == np.int64
    assert frame.loc[0, "discount"] == 1.0


def test_a_key_missing_from_one_record_is_that_rows_missing_value():
    rows = [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "tenure_months"}]
    with pytest.raises(PayloadError, match="'tenure_months' row 1: null") as caught:
        parse_payload({"dataframe_records": rows}, SIGNATURE)
    assert caught.value.status == 422 and caught.value.field == "tenure_months"


def test_the_routing_id_is_the_first_rows_value():
    assert read_table({"dataframe_records": ROWS}).entity_id("customer_id") == "c-1"
    assert read_table({"inputs": [{"id": 42.0}]}).entity_id("id") == "42"
    assert read_table({"inputs": [{"id": None}]}).entity_id("id") is None
    assert read_table({"inputs": ROWS}).entity_id(None) is None


def test_without_a_column_signature_rows_pass_as_they_are():
    frame = to_frame(read_table({"inputs": ROWS}), None)
    assert list(frame.columns) == list(ROWS[0]) and len(frame) == 2


DEEP = b'{"inputs": ' + b"[" * 40 + b"]" * 40 + b"}"


@pytest.mark.parametrize(
    "raw, content_type, status",
    [
        (b"", JSON, 400),
        (b"  \n", JSON, 400),
        (b'{"inputs": [', JSON, 400),
        (b'{"inputs": [{"monthly_spend": NaN}]}', JSON, 400),
        (b'{"inputs": [{"monthly_spend": -Infinity}]}', JSON, 400),
        (b'{"inputs": [{"monthly_spend": 1e999}]}', JSON, 400),
        (b'{"inputs": [{"tenure_months": ' + b"9" * 5000 + b"}]}", JSON, 400),
        (b'{"inputs": [{"contract_type": "\xff\xfe"}]}', JSON, 400),
        (b'{"inputs": []}', "text/plain", 415),
        (b'{"inputs": []}', None, 415),
        (b'{"inputs": []}', "application/json; charset=latin-1", 415),
        (b"{" + b" " * 2000 + b"}", JSON, 413),
        (DEEP, JSON, 400),
        (b"[" * 100_000 + b"]" * 100_000, JSON, 400),
    ],
    ids=[
        "empty",
        "blank",
        "invalid-json",
        "nan-token",
        "infinity-token",
        "overflowing-number",
        "too-long-integer",
        "non-utf8",
        "text-plain",
        "no-content-type",
        "latin1",
        "too-large",
        "deep-nesting",
        "very-deep-nesting",
    ],
)
def test_bad_bodies_are_refused_before_parsing_rows(raw, content_type, status):
    with pytest.raises(PayloadError) as caught:
        parse_body(raw, content_type, max_bytes=1000 if status == 413 else 5 * 1024 * 1024)
    assert caught.value.status == status
    assert caught.value.error_code in ("BAD_REQUEST", "REQUEST_LIMIT_EXCEEDED")


def test_json_with_a_utf8_charset_is_accepted():
    assert parse_body(b'{"inputs": []}', "Application/JSON; charset=UTF-8") == {"inputs": []}


@pytest.mark.parametrize(
    "body, status, message",
    [
        ([ROWS], 400, "JSON object"),
        ({"inputs": ROWS, "dataframe_records": ROWS}, 400, "exactly one key"),
        ({"rows": ROWS}, 400, "exactly one key"),
        ({"inputs": ROWS, "params": {}}, 400, "exactly one key"),
        ({"dataframe_split": {"data": [[1]]}}, 400, "list of column names"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, 400, "twice"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, 400, r"data\[0\]"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1]], "index": [1, 2]}}, 400, "index"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1]], "x": 1}}, 400, "unknown keys"),
        ({"dataframe_records": {"a": 1}}, 400, "list of row objects"),
        ({"dataframe_records": [1, 2]}, 400, r"dataframe_records\[0\]"),
        ({"inputs": {"a": [1], "b": [1, 2]}}, 400, "equal length"),
        ({"inputs": []}, 400, "no rows"),
        ({"inputs": [ROWS[0]] * 6}, 413, "6 rows"),
        ({"inputs": [{"tenure_months": 1}]}, 422, "missing required column.*monthly_spend"),
        (_with("tenure_months", "12"), 422, "'tenure_months' row 1: expected an integer"),
        (_with("tenure_months", 1.5), 422, "'tenure_months' row 1: expected an integer"),
        (_with("tenure_months", True), 422, "'tenure_months' row 1"),
        (_with("tenure_months", 2**70), 422, "64-bit range"),
        (_with("tenure_months", None), 422, "'tenure_months' row 1: null"),
        (_with("monthly_spend", "cheap"), 422, "'monthly_spend' row 1: expected a number"),
        (_with("monthly_spend", 10**400), 422, "'monthly_spend' row 1: number out of range"),
        (_with("monthly_spend", float("nan"), 0), 422, "'monthly_spend' row 0: NaN"),
        (_with("monthly_spend", float("inf")), 422, "NaN/Infinity"),
        (_with("contract_type", 3), 422, "'contract_type' row 1: expected a string"),
        (_with("contract_type", ["monthly"]), 422, "'contract_type' row 1"),
        (_with("is_enterprise", "yes"), 422, "'is_enterprise' row 1: expected true or false"),
        (_with("discount", "10%"), 422, "'discount' row 1"),
    ],
)
def test_bad_payloads_name_the_problem(body, status, message):
    with pytest.raises(PayloadError, match=message) as caught:
        parse_payload(body, SIGNATURE, max_rows=5)
    assert caught.value.status == status


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=10**400)  # beyond int64 and float
    | st.floats()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
column_names = st.sampled_from([spec.name for spec in SIGNATURE.inputs.inputs] + ["x"])
protocol_like = st.one_of(
    st.fixed_dictionaries(
        {"dataframe_records": st.lists(st.dictionaries(column_names, json_values), max_size=4)}
    ),
    st.fixed_dictionaries({"inputs": st.dictionaries(column_names, json_values)}),
    st.fixed_dictionaries(
        {
            "dataframe_split": st.fixed_dictionaries(
                {"columns": st.lists(column_names, max_size=6), "data": json_values}
            )
        }
    ),
    json_values,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol_like)
def test_any_json_either_gives_a_frame_or_a_payload_error(body):
    try:
        frame = parse_payload(body, SIGNATURE)
    except PayloadError as exc:
        assert exc.status in (400, 413, 422)
    else:
        assert isinstance(frame, pd.DataFrame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | protocol_like.map(lambda b: json.dumps(b).encode()))
def test_any_bytes_either_parse_or_give_a_payload_error(raw):
    try:
        body = parse_body(raw, JSON)
    except PayloadError as exc:
        assert exc.status in (400, 413)
        return
    try:
        parse_payload(body, SIGNATURE)
    except PayloadError as exc:
        assert exc.status in (400, 413, 422)
