"""Spec enforcement on small hand-made specs (mlplatform.datasets.validation): blank text in
nullable columns, and what counts as a boolean."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from mlplatform.datasets.spec import parse_spec
from mlplatform.datasets.validation import enforce_spec, validate_frame

SOURCE = "s3://bucket/flags/2026-01-01.csv"


def _tiny_spec(name: str, **columns):
    """A one-row-minimum spec with an id, a boolean label and the given columns."""
    return parse_spec(
        {
            "name": name,
            "source": {"kind": "csv"},
            "id_column": "id",
            "label_column": "y",
            "min_rows": 1,
            "columns": {"id": {"type": "string"}, "y": {"type": "boolean"}, **columns},
        }
    )


NULLABLE_SPEC = _tiny_spec(
    "tiny",
    amount={"type": "float", "nullable": True},
    colour={"type": "category", "domain": ["red"], "nullable": True},
)


@pytest.mark.parametrize("column", ["amount", "colour"])
def test_blank_text_in_nullable_column_is_accepted_as_missing(column):
    frame = pd.DataFrame(
        {"id": ["a", "b"], "y": [True, False], "amount": ["1.5", "2"], "colour": ["red", "red"]}
    )
    frame.loc[1, column] = " "
    typed, _ = enforce_spec(frame, NULLABLE_SPEC, SOURCE)
    assert pd.isna(typed.loc[1, column])


BOOL_SPEC = _tiny_spec("flags", flag={"type": "boolean", "nullable": True})


def test_a_zero_one_column_with_a_blank_reads_as_booleans():
    # pandas reads a 0/1 column with a blank as float: 1.0, 0.0 and NaN.
    frame = pd.read_csv(io.StringIO("id,y,flag\na,1,1\nb,0,0\nc,1,\n"))
    assert frame["flag"].dtype == "float64"
    typed, report = enforce_spec(frame, BOOL_SPEC, SOURCE)
    assert report.ok
    assert typed["flag"].tolist() == [True, False, pd.NA]
    assert typed["y"].tolist() == [True, False, True]


def test_numbers_and_text_mixed_in_a_boolean_column_convert():
    frame = pd.DataFrame(
        {"id": list("abcdef"), "y": [1, 0, 1, 0, 1, 0], "flag": [1, 0.0, "yes", True, None, "0"]}
    )
    typed, report = enforce_spec(frame, BOOL_SPEC, SOURCE)
    assert report.ok
    assert typed["flag"].tolist() == [True, False, True, True, pd.NA, False]


@pytest.mark.parametrize(
    ("values", "rows", "shown"),
    [([1.0, 2.0, 0.5, None], (1, 2), ("2.0", "0.5")), ([1, 0, -1, 3], (2, 3), ("-1", "3"))],
)
def test_numbers_other_than_zero_and_one_are_not_booleans(values, rows, shown):
    frame = pd.DataFrame({"id": list("abcd"), "y": [True] * 4, "flag": values})
    _, report = validate_frame(frame, BOOL_SPEC, SOURCE)
    assert [(v.column, v.rule, v.rows, v.values) for v in report.errors] == [
        ("flag", "type", rows, shown)
    ]
