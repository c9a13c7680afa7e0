"""The Great Expectations performance patches: same results as GX as shipped, or no patch."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from mlplatform.datasets.expectations import (
    CATEGORIES,
    COMPLETENESS,
    DISTRIBUTION,
    RANGES,
    UNIQUE_IDS,
    Rule,
)

gx_suite = pytest.importorskip("mlplatform.datasets.gx_suite")
import great_expectations.core.id_dict as id_dict  # noqa: E402  (after the skip)
import great_expectations.execution_engine.pandas_execution_engine as engine  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import great_expectations.expectations.expectation as expectation  # noqa: E402
import great_expectations.expectations.metrics.column_aggregate_metrics.column_mean as mean  # noqa: E402

KWARG_GETTERS = ("_get_success_kwarg", "_get_domain_kwargs", "_get_success_kwargs")


@pytest.fixture(autouse=True)
def tuned():
    """Every test starts with the patches in place (a GX context applies them once)."""
    assert gx_suite._tune_great_expectations()


def _untune(monkeypatch):
    """GX 1.24 as shipped, for the rest of one test."""
    monkeypatch.setattr(engine, "HASH_THRESHOLD", float("inf"))
    for owner, name in (
        (mean, "convert_pandas_series_decimal_to_float_dtype"),
        (expectation, "camel_to_snake"),
        (id_dict.IDDict, "to_id"),
        *((expectation.Expectation, name) for name in (*KWARG_GETTERS, "_get_runtime_kwargs")),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name).__wrapped__)


def test_the_tuned_column_mean_still_converts_decimals():
    frame = pd.DataFrame({"x": [Decimal("1.5"), Decimal("2.5"), Decimal("5.0")]})
    rule = Rule(
        DISTRIBUTION,
        "ExpectColumnMeanToBeBetween",
        {"column": "x", "min_value": 2.9, "max_value": 3.1},
    )
    (outcome,) = gx_suite.run_suite(frame, [rule], "decimals").outcomes
    assert outcome.success


@pytest.fixture
def fresh_gx_context():
    """A GX context created inside the test (tuning runs then), and a new one after it."""
    gx_suite._batch_definition.cache_clear()
    yield
    gx_suite._batch_definition.cache_clear()


def test_tuning_is_skipped_with_a_warning_on_another_gx_release(monkeypatch, fresh_gx_context):
    import great_expectations

    _untune(monkeypatch)
    monkeypatch.setattr(great_expectations, "__version__", "1.99.0")
    monkeypatch.setattr(engine, "HASH_THRESHOLD", 12345)
    rule = Rule(RANGES, "ExpectColumnValuesToBeBetween", {"column": "x", "min_value": 0})
    with pytest.warns(RuntimeWarning, match="tuning skipped.*1.99.0") as caught:
        (outcome,) = gx_suite.run_suite(
            pd.DataFrame({"x": [1.0, -2.0]}), [rule], "untuned"
        ).outcomes
    assert len([w for w in caught if "tuning skipped" in str(w.message)]) == 1
    assert engine.HASH_THRESHOLD == 12345
    assert not hasattr(id_dict.IDDict.to_id, "tuned_by_mlplatform")
    assert not hasattr(expectation.Expectation._get_runtime_kwargs, "tuned_by_mlplatform")
    assert (outcome.success, outcome.unexpected_count, outcome.sample_rows) == (False, 1, (1,))


def test_tuning_is_skipped_when_a_patched_name_is_gone(monkeypatch):
    _untune(monkeypatch)
    convert = mean.convert_pandas_series_decimal_to_float_dtype
    monkeypatch.delattr(engine, "HASH_THRESHOLD")
    with pytest.warns(RuntimeWarning, match="HASH_THRESHOLD"):
        assert gx_suite._tune_great_expectations() is False
    assert mean.convert_pandas_series_decimal_to_float_dtype is convert
    assert not hasattr(expectation.camel_to_snake, "tuned_by_mlplatform")


def test_tuning_twice_patches_once():
    to_id = id_dict.IDDict.to_id
    getter = expectation.Expectation._get_runtime_kwargs
    assert gx_suite._tune_great_expectations()
    assert (id_dict.IDDict.to_id, expectation.Expectation._get_runtime_kwargs) == (to_id, getter)
    assert not hasattr(to_id.__wrapped__, "tuned_by_mlplatform")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"column": "x", "batch_id": "b-1"},
        {"column": "x", "value_set": ["a", "b"], "mostly": 0.9, "row_condition": None},
        {"column": "x", "min_value": -1.5, "max_value": math.inf, "strict_min": False},
        {"column": "x", "nested": {"a": [1, (2, 3)], "b": None}},
        {"column": "x", "value_set": ("b", "a")},  # a tuple is written as a list
        # Not plain JSON: the patch hands these to GX's own conversion.
        {"column": "x", "min_value": float("nan")},
        {"column": "x", "min_value": np.float64(2.5), "max_value": np.int64(3)},
        {"column": "x", "value_set": {"a"}},
        {"column": "x", 7: "int key"},
        {"column": "x"},
        {},
    ],
)
def test_metric_ids_are_gx_own(kwargs):
    ids = id_dict.IDDict(kwargs)
    assert ids.to_id() == id_dict.IDDict.to_id.__wrapped__(ids)
    assert ids.to_id(id_ignore_keys={"column"}) == id_dict.IDDict.to_id.__wrapped__(
        ids, id_ignore_keys={"column"}
    )


@pytest.mark.parametrize(
    "made",
    [
        gxe.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=9, mostly=0.5),
        gxe.ExpectColumnValuesToBeInSet(column="k", value_set=["a", "b"]),
        gxe.ExpectColumnValuesToNotBeNull(column="x"),
        gxe.ExpectColumnMeanToBeBetween(column="n", min_value=3.5),
        gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=10),
        gxe.ExpectTableColumnsToMatchSet(column_set=["x", "k"], exact_match=False),
    ],
    ids=lambda made: type(made).__name__,
)
def test_kwarg_getters_return_what_gx_own_return(made):
    cls = expectation.Expectation
    for name in KWARG_GETTERS[1:]:
        assert getattr(made, name)() == getattr(cls, name).__wrapped__(made)
    for key in ("column", "mostly", "result_format", "min_value", "not_a_field"):
        assert made._get_success_kwarg(key, "dflt") == cls._get_success_kwarg.__wrapped__(
            made, key, "dflt"
        )
    detail = {"result_format": "BASIC", "partial_unexpected_count": 5}
    for runtime in (None, {"result_format": "BOOLEAN_ONLY"}, {"result_format": detail}):
        assert made._get_runtime_kwargs(runtime) == cls._get_runtime_kwargs.__wrapped__(
            made, runtime
        )
    assert made.configuration == type(made)(**made.dict()).configuration


def test_results_are_the_same_with_and_without_the_gx_tuning(monkeypatch):
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "b", None, "c", "d"],
            "x": [np.nan, 0.5, np.nan, 120.0, 7.25, -1.0],
            "n": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "kind": pd.Categorical(["p", "q", None, "z", "p", "q"]),
        }
    )
    rules = [
        Rule(UNIQUE_IDS, "ExpectColumnValuesToBeUnique", {"column": "id"}),
        Rule(COMPLETENESS, "ExpectColumnValuesToNotBeNull", {"column": "x", "mostly": 0.9}),
        Rule(RANGES, "ExpectColumnValuesToBeBetween", {"column": "x", "min_value": 0}),
        Rule(
            CATEGORIES, "ExpectColumnValuesToBeInSet", {"column": "kind", "value_set": ["p", "q"]}
        ),
        Rule(DISTRIBUTION, "ExpectColumnMeanToBeBetween", {"column": "n", "min_value": 3.5}),
        Rule(DISTRIBUTION, "ExpectColumnMeanToBeBetween", {"column": "x", "max_value": 50}),
    ]
    tuned = gx_suite.run_suite(frame, rules, "tuned")
    _untune(monkeypatch)
    # GX 1.24 as shipped: the frame is fingerprinted and every mean scans for decimals.
    untuned = gx_suite.run_suite(frame, rules, "untuned")
    assert "pandas_data_fingerprint" in untuned.gx_result.meta["batch_markers"]
    assert "pandas_data_fingerprint" not in tuned.gx_result.meta["batch_markers"]
    assert untuned.outcomes == tuned.outcomes
    by_rule = {o.rule.expectation + (o.rule.column or ""): o for o in tuned.outcomes}
    assert by_rule["ExpectColumnValuesToBeUniqueid"].sample_rows == (1, 2)
    assert by_rule["ExpectColumnValuesToBeBetweenx"].sample_rows == (5,)
    assert by_rule["ExpectColumnValuesToBeBetweenx"].sample_values == (-1,)
    assert by_rule["ExpectColumnValuesToBeInSetkind"].sample_rows == (3,)
    assert [o.success for o in tuned.outcomes] == [False, False, False, False, True, True]
