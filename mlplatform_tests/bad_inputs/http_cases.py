"""Hostile scoring requests, and what ``POST /invocations`` must answer to each.

Each body is built from a list of good request rows (JSON records of the synthetic churn
columns, ``customer_id`` included), so every case breaks exactly one thing. The server runs
with its default limits (``payload.MAX_BYTES``, ``payload.MAX_ROWS``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from mlplatform.serving.payload import MAX_BYTES, MAX_ROWS

JSON = "application/json"
Rows = list[dict]


@dataclass(frozen=True)
class HttpCase:
    """One hostile request.

    Attributes:
        body: Builds the request body from good rows.
        status: The HTTP status the server must answer with.
        says: Fragments of the error message; they name the field, column or row where the
            input has one. Empty for requests scored by design (status 200).
        content_type: The Content-Type header; None sends none.
        chunked: Send the body in chunks without a Content-Length header.
        headers: Other request headers.
    """

    body: Callable[[Rows], bytes]
    status: int
    says: tuple[str, ...] = ()
    content_type: str | None = JSON
    chunked: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _records(rows: Rows) -> bytes:
    return json.dumps({"dataframe_records": rows}).encode()


def _with(column: str, value, row: int = 1) -> Callable[[Rows], bytes]:
    """The good rows with ``column`` of ``row`` set to ``value`` (a JSON value)."""

    def build(rows: Rows) -> bytes:
        rows = [dict(r) for r in rows]
        rows[row][column] = value
        return _records(rows)

    return build


def _with_raw(column: str, raw_json: bytes, row: int = 1) -> Callable[[Rows], bytes]:
    """The good rows with ``column`` of ``row`` spelled as ``raw_json`` (bytes JSON may not
    produce itself: NaN tokens, invalid UTF-8, escapes)."""
    marker = "__RAW_VALUE__"

    def build(rows: Rows) -> bytes:
        return _with(column, marker, row)(rows).replace(f'"{marker}"'.encode(), raw_json)

    return build


def _without(column: str) -> Callable[[Rows], bytes]:
    return lambda rows: _records([{k: v for k, v in r.items() if k != column} for r in rows])


def _split(rows: Rows, **extra) -> dict:
    columns = list(rows[0])
    data = [[r[c] for c in columns] for r in rows]
    return {"dataframe_split": {"columns": columns, "data": data, **extra}}


def _ragged_split(rows: Rows) -> bytes:
    body = _split(rows)
    body["dataframe_split"]["data"][1].pop()
    return json.dumps(body).encode()


def _duplicate_key_in_row(rows: Rows) -> bytes:
    first = json.dumps(rows[0])
    return b'{"dataframe_records": [' + first[:-1].encode() + b', "tenure_months": 999}]}'


def _fifty_megabytes(rows: Rows) -> bytes:
    return b'{"inputs": "' + b"x" * (50 * 1024 * 1024) + b'"}'


_BIG_ROW_COUNT = 10_000
assert _BIG_ROW_COUNT > MAX_ROWS  # the case must be over the row limit, not the byte limit


def _ten_thousand_rows(rows: Rows) -> bytes:
    body = _records((rows * _BIG_ROW_COUNT)[:_BIG_ROW_COUNT])
    assert len(body) < MAX_BYTES, "10,000 rows must stay under the byte limit"
    return body


HTTP_CASES: dict[str, HttpCase] = {
    # --- bodies that are not a JSON object --------------------------------------------------
    "empty_body": HttpCase(lambda rows: b"", 400, ("empty body",)),
    "whitespace_only_body": HttpCase(lambda rows: b" \r\n\t ", 400, ("empty body",)),
    "truncated_json": HttpCase(lambda rows: _records(rows)[:-7], 400, ("invalid JSON",)),
    "json_array_instead_of_object": HttpCase(
        lambda rows: json.dumps(rows).encode(), 400, ("must be a JSON object",)
    ),
    "json_null_body": HttpCase(lambda rows: b"null", 400, ("must be a JSON object",)),
    # --- size -------------------------------------------------------------------------------
    "fifty_megabytes_with_content_length": HttpCase(
        _fifty_megabytes, 413, ("52428814 bytes is over the limit of 5242880",)
    ),
    "fifty_megabytes_chunked": HttpCase(
        _fifty_megabytes, 413, ("over the limit of 5242880 bytes",), chunked=True
    ),
    "ten_thousand_rows": HttpCase(
        _ten_thousand_rows, 413, (f"10000 rows is over the limit of {MAX_ROWS} per request",)
    ),
    "deeply_nested_arrays": HttpCase(
        lambda rows: b"[" * 100_000 + b"]" * 100_000, 400, ("nesting deeper than 32 levels",)
    ),
    "deeply_nested_objects": HttpCase(
        lambda rows: b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, 400, ("nesting deeper than 32",)
    ),
    "megabyte_long_key_is_not_echoed": HttpCase(
        lambda rows: json.dumps({"k" * 1_000_000: 1}).encode(), 400, ("exactly one key", "kkk")
    ),
    # --- encoding ---------------------------------------------------------------------------
    "non_utf8_bytes_in_a_value": HttpCase(
        _with_raw("region", b'"z\xfcrich"'), 400, ("not valid UTF-8",)
    ),
    "utf16_encoded_body": HttpCase(
        lambda rows: json.dumps({"inputs": rows}).encode("utf-16"), 400, ("not valid UTF-8",)
    ),
    "utf8_byte_order_mark": HttpCase(
        lambda rows: b"\xef\xbb\xbf" + _records(rows), 400, ("invalid JSON", "BOM")
    ),
    "gzip_body_is_not_inflated": HttpCase(
        lambda rows: gzip.compress(_records(rows)),
        400,
        ("not valid UTF-8",),
        headers={"Content-Encoding": "gzip"},
    ),
    # --- numbers JSON does not have ---------------------------------------------------------
    "nan_token": HttpCase(
        _with_raw("monthly_spend", b"NaN"), 400, ("NaN is not a finite JSON number",)
    ),
    "infinity_token": HttpCase(
        _with_raw("monthly_spend", b"-Infinity"), 400, ("-Infinity is not a finite JSON number",)
    ),
    "number_overflowing_a_double": HttpCase(
        _with_raw("monthly_spend", b"1e999"), 400, ("1e999 is not a finite JSON number",)
    ),
    "integer_of_5000_digits": HttpCase(
        _with_raw("tenure_months", b"9" * 5000), 400, ("invalid JSON",)
    ),
    # --- keys -------------------------------------------------------------------------------
    "key_repeated_in_a_row": HttpCase(
        _duplicate_key_in_row, 400, ('key ["tenure_months"] appears twice',)
    ),
    "format_key_repeated": HttpCase(
        lambda rows: (
            b'{"dataframe_records": [], "dataframe_records": ' + json.dumps(rows).encode() + b"}"
        ),
        400,
        ('key ["dataframe_records"] appears twice',),
    ),  # fmt: skip
    "extra_top_level_field": HttpCase(
        lambda rows: json.dumps({"dataframe_records": rows, "params": {}}).encode(),
        400,
        ("exactly one key", '"params"'),
    ),
    "unknown_key_in_dataframe_split": HttpCase(
        lambda rows: json.dumps(_split(rows, dtype="float")).encode(),
        400,
        ('unknown keys ["dtype"]',),
    ),
    "unknown_format_key": HttpCase(
        lambda rows: json.dumps({"rows": rows}).encode(), 400, ("exactly one key", '"rows"')
    ),
    # --- shape ------------------------------------------------------------------------------
    "split_row_with_a_field_missing": HttpCase(
        _ragged_split, 400, ("dataframe_split.data[1] must be a list of 10",)
    ),
    "records_that_are_not_objects": HttpCase(
        lambda rows: b'{"dataframe_records": [1, 2]}', 400, ("dataframe_records[0]",)
    ),
    "zero_rows": HttpCase(lambda rows: b'{"inputs": []}', 400, ("no rows to score",)),
    # --- values against the model's signature -----------------------------------------------
    "text_in_integer_field": HttpCase(
        _with("tenure_months", "twelve"),
        422,
        ("column 'tenure_months' row 1: expected an integer", '"twelve"'),
    ),
    "boolean_in_number_field": HttpCase(
        _with("monthly_spend", True), 422, ("column 'monthly_spend' row 1: expected a number",)
    ),
    "number_in_category_field": HttpCase(
        _with("contract_type", 3), 422, ("column 'contract_type' row 1: expected a string",)
    ),
    "object_in_category_field": HttpCase(
        _with("region", {"$ne": None}), 422, ("column 'region' row 1: expected a string",)
    ),
    "text_in_boolean_field": HttpCase(
        _with("is_enterprise", "yes"), 422, ("column 'is_enterprise' row 1: expected true",)
    ),
    "null_in_integer_field": HttpCase(
        _with("tenure_months", None), 422, ("column 'tenure_months' row 1: null is not allowed",)
    ),
    "integer_beyond_64_bits": HttpCase(
        _with("support_tickets", 2**70), 422, ("column 'support_tickets' row 1", "64-bit range")
    ),
    "missing_required_field": HttpCase(
        _without("monthly_spend"), 422, ("missing required column(s): monthly_spend",)
    ),
    # --- content type -----------------------------------------------------------------------
    "text_plain_content_type": HttpCase(
        _records, 415, ("content type must be application/json", "'text/plain'"), "text/plain"
    ),
    "no_content_type": HttpCase(_records, 415, ("got None",), None),
    "form_urlencoded_content_type": HttpCase(
        lambda rows: b"tenure_months=12",
        415,
        ("'application/x-www-form-urlencoded'",),
        "application/x-www-form-urlencoded",
    ),
    "json_declared_as_utf16": HttpCase(
        lambda rows: json.dumps({"inputs": rows}).encode("utf-16"),
        415,
        ("(UTF-8)", "charset=utf-16"),
        "application/json; charset=utf-16",
    ),
    # --- scored by design: the model treats these as unknown values -------------------------
    "unknown_categories_are_scored": HttpCase(_with("region", "atlantis"), 200),
    "lone_surrogate_escape_in_a_category_is_scored": HttpCase(
        _with_raw("contract_type", b'"\\ud800"'), 200
    ),
    "nul_character_in_a_category_is_scored": HttpCase(_with("region", "ea\u0000st"), 200),
}
