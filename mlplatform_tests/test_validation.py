"""Tests for spec enforcement (mlplatform.datasets.validation)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.validation import (
    SAMPLE_SIZE,
    DataValidationError,
    coerce_frame,
    enforce_spec,
    validate_frame,
)

SOURCE = "s3://bucket/churn/2026-01-01.csv"
ROWS = 600  # above the synthetic spec's min_rows of 500


@pytest.fixture(scope="module")
def spec():
    return load_spec("synthetic_churn")


@pytest.fixture(scope="module")
def clean_batch():
    return generate_batch(date(2026, 1, 1), ROWS)


@pytest.fixture
def clean(clean_batch):
    return clean_batch.copy()


def test_clean_synthetic_batch_passes_and_is_typed(clean, spec):
    typed, report = enforce_spec(clean.assign(extra_column=1), spec, SOURCE)
    assert report.ok
    assert not report.errors
    assert not report.warnings
    assert list(typed.columns) == list(spec.columns)
    assert typed["tenure_months"].dtype == "Int64"
    assert typed["support_tickets"].dtype == "Int64"
    assert typed["monthly_spend"].dtype == "float64"
    assert typed["is_enterprise"].dtype == "boolean"
    assert typed["churned"].dtype == bool
    assert pd.api.types.is_datetime64_any_dtype(typed["signup_date"])
    assert typed["churned"].tolist() == clean["churned"].tolist()


def test_values_given_as_text_are_converted_to_their_spec_types(clean, spec):
    text = clean.astype(str)
    typed, report = enforce_spec(text, spec, SOURCE)
    assert report.ok
    assert typed["tenure_months"].tolist() == clean["tenure_months"].tolist()
    assert typed["is_enterprise"].tolist() == clean["is_enterprise"].tolist()
    np.testing.assert_allclose(typed["monthly_spend"], clean["monthly_spend"])


def _set_cells(column, rows, value, as_object=False):
    def mutate(frame):
        if as_object:
            frame[column] = frame[column].astype(object)
        for row in rows:
            frame.loc[row, column] = value
        return frame

    return mutate


def _duplicate_id(frame):
    frame.loc[10, "customer_id"] = frame.loc[2, "customer_id"]
    return frame


# name -> (mutation, column, rule, row positions, message fragment)
FAULTS = {
    "null in non-nullable": (
        _set_cells("monthly_spend", [3, 17], np.nan),
        "monthly_spend",
        "not_null",
        [3, 17],
        "missing values",
    ),
    "out of range": (
        _set_cells("last_login_hour", [5], 24),
        "last_login_hour",
        "range",
        [5],
        "values outside [0, 23]",
    ),
    "negative tenure": (
        _set_cells("tenure_months", [0, 599], -1),
        "tenure_months",
        "range",
        [0, 599],
        "values outside [0, 240]",
    ),
    "unknown category in strict domain": (
        _set_cells("contract_type", [7], "weekly"),
        "contract_type",
        "domain",
        [7],
        "'weekly'",
    ),
    "duplicate id": (_duplicate_id, "customer_id", "unique", [2, 10], "duplicate ids"),
    "non-numeric text": (
        _set_cells("monthly_spend", [4], "12,50 EUR", as_object=True),
        "monthly_spend",
        "type",
        [4],
        "'12,50 EUR'",
    ),
    "fractional integer": (
        _set_cells("support_tickets", [9], 1.5, as_object=True),
        "support_tickets",
        "type",
        [9],
        "not of type integer",
    ),
    "not a boolean": (
        _set_cells("is_enterprise", [11], "maybe", as_object=True),
        "is_enterprise",
        "type",
        [11],
        "'maybe'",
    ),
    "not a date": (
        _set_cells("signup_date", [12], "last tuesday", as_object=True),
        "signup_date",
        "type",
        [12],
        "'last tuesday'",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_raises_naming_source_column_rule_and_rows(fault, clean, spec):
    mutate, column, rule, rows, fragment = FAULTS[fault]
    with pytest.raises(DataValidationError) as info:
        enforce_spec(mutate(clean), spec, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: {ROWS} rows")
    assert f"column '{column}'" in message
    assert f"[{rule}, {len(rows)} row(s)] at rows (0-based) {rows}" in message
    assert fragment in message
    errors = info.value.report.errors
    assert [(v.column, v.rule, list(v.rows)) for v in errors] == [(column, rule, rows)]


def test_blank_text_in_non_nullable_column_counts_as_missing(clean, spec):
    clean.loc[8, "payment_method"] = "  "
    with pytest.raises(DataValidationError) as info:
        enforce_spec(clean, spec, SOURCE)
    found = {(v.column, v.rule, v.rows) for v in info.value.report.errors}
    assert ("payment_method", "not_null", (8,)) in found


def test_missing_required_column_is_named(clean, spec):
    with pytest.raises(DataValidationError) as info:
        enforce_spec(clean.drop(columns=["region", "churned"]), spec, SOURCE)
    message = str(info.value)
    assert SOURCE in message
    assert "column '<table>'" in message
    assert "[schema, 2 row(s)]" in message
    assert "missing required column(s) ['region', 'churned']" in message


def test_too_few_rows_is_reported(clean, spec):
    with pytest.raises(DataValidationError) as info:
        enforce_spec(clean.head(spec.min_rows - 1), spec, SOURCE)
    (violation,) = info.value.report.errors
    assert (violation.column, violation.rule) == ("<table>", "row_count")
    assert f"{SOURCE}: 499 rows" in str(info.value)
    assert "499 rows, fewer than the minimum 500" in str(info.value)


def test_reported_rows_are_the_frames_index_labels(clean, spec):
    # A loaded frame's index is each row's data-row number in its source (see loading.py), so
    # the labels, not the positions, are the rows a reader finds in the file.
    clean.index = clean.index * 10 + 1000
    clean.iloc[3, clean.columns.get_loc("tenure_months")] = -5
    with pytest.raises(
        DataValidationError, match=r"at rows \(0-based\) \[1030\] \(values \['-5'\]\)"
    ):
        enforce_spec(clean, spec, SOURCE)


def test_type_errors_report_index_labels_and_the_typed_frame_keeps_the_index(clean, spec):
    clean.index = clean.index + 500
    clean["support_tickets"] = clean["support_tickets"].astype(object)
    clean.iloc[7, clean.columns.get_loc("support_tickets")] = "many"
    typed, violations = coerce_frame(clean, spec)
    assert [(v.column, v.rule, v.rows, v.values) for v in violations] == [
        ("support_tickets", "type", (507,), ("many",))
    ]
    assert typed.index.equals(clean.index)
    _, report = validate_frame(clean, spec, SOURCE)
    assert [(v.rule, v.rows) for v in report.errors] == [("type", (507,))]


def test_a_frame_with_repeated_index_labels_is_still_validated(clean, spec):
    # Frames stacked without ignore_index repeat labels; validation must not fail to align.
    clean.index = clean.index % 100
    clean.iloc[250, clean.columns.get_loc("last_login_hour")] = 30
    typed, report = validate_frame(clean, spec, SOURCE)
    assert [(v.rule, v.rows) for v in report.errors] == [("range", (50,))]
    assert len(typed) == ROWS


@given(positions=st.sets(st.integers(0, ROWS - 1), min_size=1, max_size=30))
@settings(max_examples=25, deadline=None)
def test_count_is_complete_and_row_sample_is_the_first_positions(clean_batch, spec, positions):
    frame = clean_batch.copy()
    frame.loc[sorted(positions), "tenure_months"] = -1
    _, report = validate_frame(frame, spec, SOURCE)
    (violation,) = report.errors
    assert violation.count == len(positions)
    assert list(violation.rows) == sorted(positions)[:SAMPLE_SIZE]
    assert violation.values == ("-1",) * min(len(positions), SAMPLE_SIZE)


def test_several_faults_are_all_reported_in_one_error(clean, spec):
    clean.loc[1, "contract_type"] = "weekly"
    clean.loc[2, "monthly_spend"] = np.nan
    with pytest.raises(DataValidationError) as info:
        enforce_spec(clean, spec, SOURCE)
    rules = {(v.column, v.rule) for v in info.value.report.errors}
    assert rules == {("contract_type", "domain"), ("monthly_spend", "not_null")}


def test_unseen_category_in_non_strict_domain_is_only_a_warning(clean, spec):
    clean.loc[[5, 9], "region"] = "arctic"
    typed, report = enforce_spec(clean, spec, SOURCE)
    assert report.ok
    (warning,) = report.warnings
    assert (warning.column, warning.rule, warning.rows) == ("region", "domain", (5, 9))
    assert "WARN  column 'region'" in report.summary()
    assert typed.loc[5, "region"] == "arctic"
    assert list(typed["region"].cat.categories) == [*spec.columns["region"].domain, "arctic"]


def test_categories_are_stored_as_category_dtype_domain_first(clean, spec):
    clean.loc[[3, 4], "contract_type"] = [" annual ", None]
    day, _ = coerce_frame(clean, spec)
    other_day, _ = coerce_frame(clean.iloc[:50], spec)  # not every domain value occurs
    contract = day["contract_type"]
    assert list(contract.cat.categories) == list(spec.columns["contract_type"].domain)
    assert contract[3] == "annual" and pd.isna(contract[4])
    assert contract.astype(object).tolist()[5:] == clean["contract_type"].tolist()[5:]
    # Days share their categories, so stacking a training window keeps the dtype.
    assert pd.concat([day, other_day])["contract_type"].dtype == contract.dtype


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
def test_huge_number_in_integer_column_is_reported_not_crashing(clean, spec):
    clean["tenure_months"] = clean["tenure_months"].astype(object)
    clean.loc[3, "tenure_months"] = "1e30"
    with pytest.raises(DataValidationError, match="tenure_months"):
        enforce_spec(clean, spec, SOURCE)
