"""The spec's Great Expectations suite: which rules it holds, and what GX reports for them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplatform.datasets.expectations import (
    CATEGORIES,
    COMPLETENESS,
    DISTRIBUTION,
    HARD_GROUPS,
    LABEL_BALANCE,
    RANGES,
    ROW_COUNT,
    UNIQUE_IDS,
    UNSEEN_CATEGORIES,
    Rule,
    suite_rules,
)
from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.validation import coerce_frame

gx_suite = pytest.importorskip("mlplatform.datasets.gx_suite")


@pytest.fixture(scope="module")
def spec():
    return load_spec("synthetic_churn")


def _typed(spec, frame):
    typed, violations = coerce_frame(frame, spec)
    return gx_suite.gx_frame(typed, spec), violations


def _failed(outcome):
    return {o.rule.describe(): o for o in outcome.outcomes if not o.success}


def test_the_synthetic_spec_yields_one_rule_per_constraint(spec):
    rules = suite_rules(spec)
    by_group = {}
    for rule in rules:
        by_group.setdefault(rule.group, []).append(rule)
    not_nullable = [c for c in spec.columns.values() if not c.nullable]
    assert len(by_group[COMPLETENESS]) == len(not_nullable)
    assert {r.column for r in by_group[RANGES]} == {
        "tenure_months",
        "monthly_spend",
        "support_tickets",
        "last_login_hour",
    }
    assert {r.column for r in by_group[CATEGORIES]} == {"contract_type", "payment_method"}
    assert [r.column for r in by_group[UNSEEN_CATEGORIES]] == ["region"]
    assert [r.column for r in by_group[UNIQUE_IDS]] == ["customer_id"]
    assert by_group[ROW_COUNT][0].kwargs == {"min_value": 500, "max_value": 5000}
    assert by_group[DISTRIBUTION][1].kwargs == {
        "column": "monthly_spend",
        "min_value": 20,
        "max_value": 400,
    }
    assert by_group[LABEL_BALANCE][0].kwargs["column"] == "churned"
    assert all(r.hard for r in rules if r.group in HARD_GROUPS)
    assert not any(r.hard for r in by_group[UNSEEN_CATEGORIES] + by_group[DISTRIBUTION])


def test_nullable_columns_get_a_mostly_threshold():
    telco = load_spec("telco")
    rule = next(
        r for r in suite_rules(telco) if r.column == "total_spend" and r.group == COMPLETENESS
    )
    assert rule.kwargs == {"column": "total_spend", "mostly": 0.99}


def test_a_clean_day_passes_every_rule(spec):
    frame, violations = _typed(spec, generate_batch(pd.Timestamp("2026-03-01").date(), 1000))
    outcome = gx_suite.run_suite(frame, suite_rules(spec), "clean")
    assert not violations
    assert _failed(outcome) == {}
    assert len(outcome.outcomes) == len(suite_rules(spec))


def _break(frame: pd.DataFrame, case: str) -> pd.DataFrame:
    frame = frame.copy()
    if case == "range":
        frame.loc[[3, 17], "tenure_months"] = [-5, 999]
    elif case == "null":
        frame.loc[[4, 9], "monthly_spend"] = np.nan
    elif case == "category":
        frame.loc[[2], "contract_type"] = "weekly"
    elif case == "duplicate":
        frame.loc[[5, 6], "customer_id"] = frame.loc[0, "customer_id"]
    elif case == "rows":
        frame = frame.head(10)
    elif case == "mean":
        frame["monthly_spend"] = frame["monthly_spend"] * 8
    return frame


@pytest.mark.parametrize(
    "case, rule, count, rows, values",
    [
        ("range", "ExpectColumnValuesToBeBetween(column=tenure_months", 2, [3, 17], [-5.0, 999.0]),
        ("null", "ExpectColumnValuesToNotBeNull(column=monthly_spend", 2, [4, 9], []),
        ("category", "ExpectColumnValuesToBeInSet(column=contract_type", 1, [2], ["weekly"]),
        ("duplicate", "ExpectColumnValuesToBeUnique(column=customer_id", 3, [0, 5, 6], None),
        ("rows", "ExpectTableRowCountToBeBetween", None, [], []),
        ("mean", "ExpectColumnMeanToBeBetween(column=monthly_spend", None, [], []),
    ],
)
def test_a_broken_rule_reports_its_count_rows_and_values(spec, case, rule, count, rows, values):
    day = generate_batch(pd.Timestamp("2026-03-01").date(), 1000)
    frame, _ = _typed(spec, _break(day, case))
    failed = _failed(gx_suite.run_suite(frame, suite_rules(spec), case))
    (key,) = [k for k in failed if k.startswith(rule)]
    outcome = failed[key]
    assert outcome.unexpected_count == count
    assert list(outcome.sample_rows) == rows
    if values is not None:
        assert list(outcome.sample_values) == values
    assert rule.split("(")[0] in outcome.describe() and "FAILED" in outcome.describe()
    if case == "mean":
        assert outcome.observed_value > 400
    # Only the broken rule fails (the label balance may move with a 10-row day).
    assert (
        len([k for k in failed if not k.startswith("ExpectColumnMeanToBeBetween(column=churned")])
        == 1
    )


def test_validation_leaves_the_validated_frame_as_it_was(spec):
    # GX gets one-column views of the frame, not copies: it must only read them.
    day = _break(_break(generate_batch(pd.Timestamp("2026-03-01").date(), 1000), "null"), "range")
    typed, _ = coerce_frame(day, spec)
    before = typed.copy(deep=True)
    failed = _failed(gx_suite.run_suite(gx_suite.gx_frame(typed, spec), suite_rules(spec), "v"))
    assert len(failed) >= 2
    pd.testing.assert_frame_equal(typed, before)


def test_values_that_do_not_parse_are_schema_violations_with_rows(spec):
    day = generate_batch(pd.Timestamp("2026-03-01").date(), 600).astype({"support_tickets": object})
    day.loc[[7, 8], "support_tickets"] = ["lots", "1.5"]
    _, violations = _typed(spec, day)
    (violation,) = violations
    assert (violation.column, violation.rule, violation.rows) == ("support_tickets", "type", (7, 8))


def test_gx_frame_converts_only_the_columns_not_yet_in_their_gx_dtype(spec):
    typed = pd.DataFrame(
        {
            "customer_id": pd.Series(["a", "b", "c"], dtype=object),
            "monthly_spend": [1.5, np.nan, 3.0],
            "tenure_months": pd.array([1, None, 3], dtype="Int64"),
            "churned": pd.array([True, None, False], dtype="boolean"),
            "contract_type": pd.Series(["monthly", None, "annual"], dtype=object),
            "payment_method": pd.Categorical(["card", "card", None]),
        }
    )
    frame = gx_suite.gx_frame(typed, spec)
    # Already float64: passed through, not copied.
    assert np.shares_memory(frame["monthly_spend"].to_numpy(), typed["monthly_spend"].to_numpy())
    assert frame["tenure_months"].dtype == np.float64
    assert frame["tenure_months"].tolist()[::2] == [1.0, 3.0]
    assert np.isnan(frame["tenure_months"][1])
    assert frame["churned"].dtype == np.float64
    assert frame["churned"].tolist()[::2] == [1.0, 0.0]
    assert np.isnan(frame["churned"][1])
    assert isinstance(frame["contract_type"].dtype, pd.CategoricalDtype)
    assert frame["contract_type"].isna().tolist() == [False, True, False]
    assert frame["payment_method"].dtype is typed["payment_method"].dtype
    assert frame["customer_id"].dtype == object
    assert frame.index.equals(typed.index)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(-50, 150, allow_nan=False)), min_size=1, max_size=40
    ),
    mostly=st.sampled_from([1.0, 0.9, 0.5]),
)
def test_gx_agrees_with_plain_pandas_on_nulls_and_ranges(values, mostly):
    frame = pd.DataFrame({"x": pd.array(values, dtype="float64")})
    rules = [
        Rule(
            RANGES,
            "ExpectColumnValuesToBeBetween",
            {"column": "x", "min_value": 0, "max_value": 100},
        ),
        Rule(COMPLETENESS, "ExpectColumnValuesToNotBeNull", {"column": "x", "mostly": mostly}),
    ]
    between, not_null = gx_suite.run_suite(frame, rules, "property").outcomes
    present = frame["x"].dropna()
    outside = int(((present < 0) | (present > 100)).sum())
    assert between.success == (outside == 0)
    if outside:
        assert between.unexpected_count == outside
    assert not_null.success == (frame["x"].notna().mean() >= mostly)


def test_data_docs_render_the_validation_as_html(spec, tmp_path):
    frame, _ = _typed(
        spec, _break(generate_batch(pd.Timestamp("2026-03-01").date(), 1000), "range")
    )
    outcome = gx_suite.run_suite(frame, suite_rules(spec), "docs")
    page = gx_suite.write_data_docs(outcome, tmp_path / "docs" / "day.html")
    html = page.read_text()
    assert "<html" in html and "tenure_months" in html
    assert not list(tmp_path.glob("docs/*.tmp"))


def test_loading_the_code_location_does_not_import_great_expectations():
    code = "import sys, mlplatform.definitions; print('great_expectations' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_an_all_empty_nullable_column_fails_completeness_by_default():
    telco = load_spec("telco")
    assert all(c.max_null_fraction <= 0.99 for c in telco.columns.values() if c.nullable)
    (rule,) = [
        r for r in suite_rules(telco) if r.column == "total_spend" and r.group == COMPLETENESS
    ]
    frame = pd.DataFrame({"total_spend": [np.nan] * 50})
    (outcome,) = gx_suite.run_suite(frame, [rule], "empty").outcomes
    assert not outcome.success and outcome.unexpected_count == 50
