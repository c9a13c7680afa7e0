"""MLflow's scoring protocol: raw request bytes to a validated pandas DataFrame.

Three steps, each cheap before the next one runs: :func:`parse_body` checks content type, size,
encoding, JSON syntax and nesting; :func:`read_table` checks the protocol shape and the row
count; ``frame.to_frame`` then checks every value against the model's input signature.

Hostile bodies are refused, never half-read: an object naming a key twice is refused (parsers
disagree on which value wins, so two systems could read one request differently), and error
messages quote at most a few keys of a request, shortened, so an error never echoes megabytes.

Columns the signature does not name are ignored (dropped), not rejected: clients send whole
rows, including the entity id used for routing, and a model version that stops reading a
column must not break clients that still send it. Nulls are allowed where the model treats
them as missing values (float and string columns) and rejected elsewhere.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5_000
MAX_DEPTH = 32
# Error messages quote at most this many keys of a request, each cut to this many characters.
SHOWN_KEYS = 5
SHOWN_CHARS = 40
FORMATS = ("dataframe_split", "dataframe_records", "inputs")

# MLflow's error codes, so MLflow clients read our errors like their own server's.
ERROR_CODES = {413: "REQUEST_LIMIT_EXCEEDED", 422: "INVALID_PARAMETER_VALUE"}


class PayloadError(Exception):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    @property
    def error_code(self) -> str:
        """MLflow-style error code for the status."""
        return ERROR_CODES.get(self.status, "BAD_REQUEST")


@dataclass(frozen=True)
class Table:
    """Rows of a request in column form, before any type checks."""

    columns: tuple[str, ...]
    values: dict[str, list]
    n_rows: int

    def entity_id(self, column: str | None) -> str | None:
        """The first row's value of ``column`` as a string, or None when absent or not scalar."""
        if not column or column not in self.values or self.n_rows == 0:
            return None
        value = self.values[column][0]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 42.0 and 42 are the same customer
        return str(value) if isinstance(value, str | int) else None


def _shown(keys: Iterable[Any]) -> str:
    """Keys of a request for an error message: a few, shortened, as JSON (never raw bytes)."""
    keys = sorted(map(str, keys))
    shown = [json.dumps(key)[:SHOWN_CHARS] for key in keys[:SHOWN_KEYS]]
    more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return f"[{', '.join(shown)}]{more}"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; refuses a key given twice (json.loads would keep the last)."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        twice = next(key for key, _ in pairs if counts[key] > 1)
        raise PayloadError(400, f"invalid JSON: key {_shown([twice])} appears twice in an object")
    return obj


def check_content_type(content_type: str | None) -> None:
    """Raises 415 unless the media type is application/json (charset, if given, UTF-8)."""
    media, *params = (content_type or "").lower().replace(" ", "").split(";")
    charsets = {p.split("=", 1)[1].strip('"') for p in params if p.startswith("charset=")}
    if media != "application/json" or not charsets <= {"utf-8", "utf8"}:
        raise PayloadError(
            415, f"content type must be application/json (UTF-8), got {content_type!r}"
        )


def _finite_float(text: str) -> float:
    # Also gets Python's extra tokens NaN, Infinity and -Infinity, which JSON does not have.
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError(400, f"invalid JSON: {text[:40]} is not a finite JSON number")
    return value


def _check_depth(obj: Any, max_depth: int) -> None:
    # Iterative, so the check itself cannot hit the recursion limit.
    stack = [(obj, 1)] if isinstance(obj, dict | list) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > max_depth:
            raise PayloadError(400, f"JSON nesting deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def parse_body(
    raw: bytes,
    content_type: str | None,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Decodes a request body to JSON values, refusing anything odd before any heavy work.

    Args:
        raw: The request body.
        content_type: The Content-Type header.
        max_bytes: Largest body accepted.
        max_depth: Deepest nesting of arrays and objects accepted.

    Returns:
        The decoded JSON value.

    Raises:
        PayloadError: 415 for a content type other than JSON, 413 for a body over
            ``max_bytes``, 400 for an empty body, non-UTF-8 bytes, invalid JSON (NaN and
            Infinity tokens, out-of-range numbers and a key repeated in an object included) or
            too deep nesting.
    """
    check_content_type(content_type)
    if len(raw) > max_bytes:
        raise PayloadError(413, f"body of {len(raw)} bytes is over the limit of {max_bytes}")
    if not raw.strip():
        raise PayloadError(400, "empty body: expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(400, f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(
            text,
            parse_constant=_finite_float,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise PayloadError(400, f"JSON nesting deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, and int() of a number too long to convert
        raise PayloadError(400, f"invalid JSON: {exc}") from None
    _check_depth(body, max_depth)
    return body


def _rows_limit(n_rows: int, max_rows: int) -> None:
    if n_rows > max_rows:
        raise PayloadError(413, f"{n_rows} rows is over the limit of {max_rows} per request")
    if n_rows == 0:
        raise PayloadError(400, "no rows to score")


def _from_records(records: Any, key: str, max_rows: int) -> Table:
    if not isinstance(records, list):
        raise PayloadError(400, f"'{key}' must be a list of row objects", key)
    _rows_limit(len(records), max_rows)
    columns: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise PayloadError(400, f"{key}[{i}] must be an object of column: value", key)
        columns.update(dict.fromkeys(record))
    # A key absent from one record is that row's missing value, as in pandas.
    values = {name: [record.get(name) for record in records] for name in columns}
    return Table(tuple(columns), values, len(records))


def _from_split(split: Any, max_rows: int) -> Table:
    if not isinstance(split, dict) or not isinstance(split.get("data"), list):
        raise PayloadError(400, "'dataframe_split' must be an object with 'columns' and 'data'")
    columns, data = split.get("columns"), split["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise PayloadError(400, "'dataframe_split.columns' must be a list of column names")
    if len(set(columns)) != len(columns):
        raise PayloadError(400, "'dataframe_split.columns' names a column twice")
    unknown = set(split) - {"columns", "data", "index"}
    if unknown:
        raise PayloadError(400, f"'dataframe_split' has unknown keys {_shown(unknown)}")
    _rows_limit(len(data), max_rows)
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise PayloadError(400, "'dataframe_split.index' must be a list as long as 'data'")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise PayloadError(400, f"dataframe_split.data[{i}] must be a list of {len(columns)}")
    values = {name: [row[j] for row in data] for j, name in enumerate(columns)}
    return Table(tuple(columns), values, len(data))


def _from_columns(inputs: dict, max_rows: int) -> Table:
    lengths = {len(v) if isinstance(v, list) else -1 for v in inputs.values()}
    if not inputs or -1 in lengths or len(lengths) != 1:
        raise PayloadError(
            400, "'inputs' as an object must map each column to a list, equal length"
        )
    n_rows = lengths.pop()
    _rows_limit(n_rows, max_rows)
    return Table(tuple(inputs), dict(inputs), n_rows)


def read_table(body: Any, max_rows: int = MAX_ROWS) -> Table:
    """Reads the rows of a scoring request in any of MLflow's three formats.

    Args:
        body: Decoded JSON: exactly one of ``dataframe_split`` (columns, data, optional
            index), ``dataframe_records`` (list of row objects) or ``inputs`` (list of row
            objects, or an object of column lists).
        max_rows: Most rows accepted in one request.

    Returns:
        The rows in column form.

    Raises:
        PayloadError: 400 for a wrong shape or no rows, 413 for more than ``max_rows`` rows.
    """
    if not isinstance(body, dict):
        raise PayloadError(400, f"body must be a JSON object with one of {list(FORMATS)}")
    keys = [key for key in FORMATS if key in body]
    if len(keys) != 1 or len(body) != 1:
        raise PayloadError(
            400, f"body must have exactly one key of {list(FORMATS)}, got {_shown(body)}"
        )
    key = keys[0]
    if key == "dataframe_split":
        return _from_split(body[key], max_rows)
    if key == "inputs" and isinstance(body[key], dict):
        return _from_columns(body[key], max_rows)
    return _from_records(body[key], key, max_rows)
