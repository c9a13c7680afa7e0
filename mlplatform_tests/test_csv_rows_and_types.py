"""Row numbers and column types of plain CSV sources, and rows with too few fields."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from mlplatform.datasets.csv_source import read_source_csv
from mlplatform.datasets.loading import SourceError, load_dataset, load_partition
from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch, generate_days
from mlplatform.datasets.validation import DataValidationError, enforce_spec, validate_frame
from mlplatform_tests.conftest import REPO_ROOT, write_spec

START = date(2026, 1, 1)
DAY = date(2026, 1, 2)


def test_a_row_with_too_few_fields_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")
    with pytest.raises(SourceError, match=r"short\.csv: malformed CSV: line 3 has 2 field\(s\)"):
        read_source_csv(path, ["a", "b", "c"])


def _lenient_csv_spec(tmp_path, path):
    """``_csv_spec`` with a minimum of one row, so small files only fail on the faults planted."""
    return load_spec(str(write_spec(tmp_path, kind="csv", path=str(path), top={"min_rows": 1})))


def test_a_bad_value_in_a_dated_file_is_reported_with_its_file_row(tmp_path):
    path = tmp_path / "history.csv"
    frame = generate_days(START, 3, 20, seed=5)
    frame["tenure_months"] = frame["tenure_months"].astype(object)
    frame.loc[25, "tenure_months"] = -3  # day 2 (rows 20 to 39), 6th row of that day
    frame.loc[33, "tenure_months"] = "twelve"  # text in an integer column stays a type error
    frame.to_csv(path, index=False)
    part, _ = load_partition(_lenient_csv_spec(tmp_path, path), REPO_ROOT, None, DAY)
    with pytest.raises(DataValidationError) as info:
        enforce_spec(part, _lenient_csv_spec(tmp_path, path), str(path))
    found = {(v.rule, v.rows, v.values) for v in info.value.report.errors}
    assert found == {("type", (33,), ("twelve",)), ("range", (25,), ("-3",))}
    assert "at rows (0-based) [25]" in str(info.value)


def test_ids_with_leading_zeros_stay_distinct_text(tmp_path):
    path = tmp_path / "ids.csv"
    frame = generate_batch(START, 3, seed=2)
    frame["customer_id"] = ["00123", "123", "0"]
    frame.to_csv(path, index=False)
    spec = _lenient_csv_spec(tmp_path, path)
    part, _ = load_partition(spec, REPO_ROOT, None, START)
    assert part["customer_id"].tolist() == ["00123", "123", "0"]
    typed, report = enforce_spec(part, spec, str(path))
    assert report.ok
    assert typed["customer_id"].tolist() == ["00123", "123", "0"]


def test_a_date_column_stays_text_until_validation_parses_it(tmp_path):
    path = tmp_path / "dates.csv"
    frame = generate_batch(START, 3, seed=2)
    # Guessed as numbers, these would become nanoseconds after 1970 rather than 2025 days.
    frame["signup_date"] = ["20250301", "20250302", ""]
    frame.to_csv(path, index=False)
    spec = _lenient_csv_spec(tmp_path, path)
    whole, _ = load_dataset(spec, REPO_ROOT)
    assert whole["signup_date"].iloc[:2].tolist() == ["20250301", "20250302"]
    assert pd.isna(whole["signup_date"].iloc[2])  # blank is missing, not ""
    assert whole["tenure_months"].dtype == "int64"  # numeric columns are still inferred
    assert whole["is_enterprise"].dtype == bool
    typed, report = validate_frame(whole, spec, str(path))
    (violation,) = report.errors
    assert (violation.column, violation.rule, violation.rows) == ("signup_date", "not_null", (2,))
    assert typed["signup_date"].iloc[:2].tolist() == [
        pd.Timestamp(2025, 3, 1),
        pd.Timestamp(2025, 3, 2),
    ]


def test_text_columns_are_read_as_strings_and_absent_ones_are_ignored(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("code,n,when\n007,1,20260101\n,2,\n7,3,2026-01-02\n")
    frame = read_source_csv(path, ["code", "n"], text_columns=["code", "when", "absent"])
    assert frame["code"].tolist()[::2] == ["007", "7"] and pd.isna(frame.loc[1, "code"])
    assert frame["when"].tolist()[::2] == ["20260101", "2026-01-02"]
    assert frame["n"].tolist() == [1, 2, 3]
