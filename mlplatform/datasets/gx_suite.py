"""Runs the spec's expectation suite with Great Expectations 1.x and keeps what a person needs.

Importing this module imports Great Expectations (about 1.5 s): import it where a validation
runs, never at code-location load.

Validation runs in two passes. The first evaluates every rule with GX's ``BOOLEAN_ONLY``
result format, the cheapest one: on a clean batch that is all there is to pay. Only rules that
failed are evaluated again with ``DETAIL_FORMAT``, which adds the unexpected count and percent,
a sample of bad values and their row indices, at the cost of extra metrics.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.render.renderer import ValidationResultsPageRenderer
from great_expectations.render.view import DefaultJinjaPageView

from mlplatform.datasets.expectations import Rule
from mlplatform.datasets.gx_tuning import tune_great_expectations as _tune_great_expectations
from mlplatform.datasets.spec import DatasetSpec

SAMPLE_SIZE = 10
# BASIC with the first unexpected rows rather than SUMMARY: on pandas, SUMMARY turns the index
# of *every* unexpected row into a Python list (100,000 ints for 10% of 1M rows) only to keep
# the first few, and adds two more metrics; the rows' index gives the same sample row numbers.
DETAIL_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": SAMPLE_SIZE,
    "include_unexpected_rows": True,
    # The SQL-ish "unexpected index query" is of no use for an in-memory frame.
    "return_unexpected_index_query": False,
}


@dataclass(frozen=True)
class RuleOutcome:
    """The result of one expectation on one batch.

    Attributes:
        rule: The expectation.
        success: Whether it held.
        unexpected_count: Rows that broke it (map expectations only).
        unexpected_percent: Their share of non-missing rows, in percent.
        sample_values: Some of the offending values.
        sample_rows: Their row positions in the batch (0-based, source order).
        observed_value: The aggregate observed (mean, row count, column list...).
        error: The exception message when GX could not evaluate the rule.
    """

    rule: Rule
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample_values: tuple = ()
    sample_rows: tuple[int, ...] = ()
    observed_value: Any = None
    error: str | None = None

    def describe(self) -> str:
        """One line for logs, errors and the UI: what failed, how much, and where."""
        status = "passed" if self.success else "FAILED"
        parts = [f"{self.rule.describe()} {status}"]
        if self.error:
            parts.append(f"error: {self.error}")
        if self.unexpected_count:
            percent = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent else ""
            parts.append(f"{self.unexpected_count} unexpected row(s){percent}")
        if self.sample_rows:
            # Data rows, 0-based, header excluded: line = row + 2 in a CSV with a header.
            parts.append(f"rows (0-based) {list(self.sample_rows)}")
        if self.sample_values:
            parts.append(f"values {list(self.sample_values)}")
        if not self.unexpected_count:
            if self.observed_value is not None:
                parts.append(f"observed {self.observed_value}")
            elif not self.success and not self.error:
                parts.append("no value observed (the column has no non-missing values)")
        return "; ".join(parts)


@dataclass(frozen=True)
class SuiteOutcome:
    """All rule outcomes of one validation, and the GX result for the data docs."""

    outcomes: tuple[RuleOutcome, ...]
    gx_result: Any

    def for_group(self, group: str) -> list[RuleOutcome]:
        """The outcomes of one check group."""
        return [o for o in self.outcomes if o.rule.group == group]


@lru_cache(maxsize=1)
def _batch_definition():
    """One ephemeral GX context, data source and batch definition per process."""
    _tune_great_expectations()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("mlplatform").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole_batch")


def gx_frame(typed: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The typed batch in the dtypes GX evaluates fastest and most reliably.

    Categories become pandas ``category`` (set membership then works on the codes), nullable
    integers and booleans become float64 with NaN (GX's mean and range metrics expect numpy
    dtypes), so every rule sees the same values the spec enforcement does. Columns already in
    their target dtype are passed through untouched: this runs on every batch and is part of
    what a validation costs.

    Args:
        typed: The batch as ``validation.coerce_frame`` returns it.
        spec: The data-set spec.

    Returns:
        A frame with the same columns and index; unchanged columns share their data.
    """
    columns = {}
    for name in typed.columns:
        column = spec.columns.get(name)
        values = typed[name]
        kind = column.type if column is not None else None
        if kind == "category" and not isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype("category")
        elif kind in ("integer", "boolean", "float") and values.dtype != np.float64:
            # One pass straight to float64; going through Float64 costs two full copies.
            values = pd.Series(
                values.to_numpy(dtype="float64", na_value=np.nan), index=values.index, name=name
            )
        columns[name] = values
    # copy=False: the float64 columns need not be copied into a consolidated block.
    return pd.DataFrame(columns, index=typed.index, copy=False)


def _expectation(rule: Rule, key: str) -> gxe.Expectation:
    # meta ties each result back to its rule: GX reorders results, and unsaved suites get no ids.
    return getattr(gxe, rule.expectation)(meta={"rule": key}, **rule.kwargs)


def _error_message(exception_info: Any) -> str | None:
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _plain(value: Any) -> Any:
    """Numpy scalars as Python numbers (GX's renderer and JSON metadata need them)."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _sample(value: Any) -> Any:
    """A sample value as its source wrote it: integers were widened to float64 for GX."""
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _outcome(rule: Rule, result: Any) -> RuleOutcome:
    details = result.result or {}
    if "observed_value" in details:
        details["observed_value"] = _plain(details["observed_value"])
    return RuleOutcome(
        rule=rule,
        success=bool(result.success),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=_plain(details.get("unexpected_percent")),
        # The bad values of a not-null rule are all missing: showing them says nothing.
        sample_values=()
        if rule.expectation == "ExpectColumnValuesToNotBeNull"
        else tuple(_sample(v) for v in details.get("partial_unexpected_list") or ()),
        sample_rows=tuple(int(i) for i in details.get("partial_unexpected_index_list") or ()),
        observed_value=details.get("observed_value"),
        error=_error_message(result.exception_info),
    )


def _indexed(result: Any) -> Any:
    """Swaps the sample of unexpected rows for their row numbers, as SUMMARY would list them.

    Their values are already in ``partial_unexpected_list``; a list of row numbers keeps the
    result plain data, shaped as ``_outcome`` and the data docs expect.
    """
    rows = (result.result or {}).pop("unexpected_rows", None)
    if rows is not None:
        result.result["partial_unexpected_index_list"] = rows.index.tolist()
    return result


def _column_batches(frame: pd.DataFrame, rule_by_key: dict[str, Rule]):
    """Splits the suite into one-column batches (plus the table-level rules).

    GX's pandas engine filters the whole batch frame for every column rule, copying every
    column each time; on a one-column frame that copy is the column itself. At 1M x 25 this
    alone is several times faster, and the results are the same. Each one-column frame is a
    view (``to_frame``), not a copy (``frame[[name]]``): GX only reads its batch.
    """
    groups: dict[str, list[str]] = {}
    for key, rule in rule_by_key.items():
        if rule.expectation == "ExpectTableColumnsToMatchSet":
            groups.setdefault("<columns>", []).append(key)
        else:
            groups.setdefault(rule.column or "<rows>", []).append(key)
    for group, keys in groups.items():
        if group == "<columns>":
            yield frame.head(0), keys  # the column names, without the rows
        elif group == "<rows>":
            yield frame.iloc[:, :1], keys  # the row count, without the other columns
        else:
            yield frame[group].to_frame(), keys


def _validate(frame: pd.DataFrame, suite_name: str, rules: dict[str, Rule], result_format):
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(
        name=suite_name, expectations=[_expectation(r, key) for key, r in rules.items()]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return batch.validate(suite, result_format=result_format)


def run_suite(frame: pd.DataFrame, rules: list[Rule], name: str) -> SuiteOutcome:
    """Validates a frame against the rules with Great Expectations.

    Args:
        frame: The batch, with a 0-based positional index (row numbers in messages).
        rules: The expectations to evaluate.
        name: Suite name shown in the data docs.

    Returns:
        Every rule's outcome, with failure details for the rules that failed.
    """
    if not rules:
        raise ValueError(f"suite '{name}' has no rules to validate")
    rule_by_key = {f"rule-{i}": rule for i, rule in enumerate(rules)}
    results, combined = {}, None
    for part, keys in _column_batches(frame, rule_by_key):
        part_rules = {key: rule_by_key[key] for key in keys}
        quick = _validate(part, name, part_rules, "BOOLEAN_ONLY")
        found = {r.expectation_config.meta["rule"]: r for r in quick.results}
        failed = {key: part_rules[key] for key, r in found.items() if not r.success}
        if failed:
            detailed = _validate(part, f"{name} (failures)", failed, DETAIL_FORMAT)
            found.update({r.expectation_config.meta["rule"]: _indexed(r) for r in detailed.results})
        results.update(found)
        combined = combined or quick
    # One GX result for the whole suite, for the data docs page.
    combined.results = [results[key] for key in rule_by_key]
    combined.success = all(r.success for r in combined.results)
    passed = sum(r.success for r in combined.results)
    combined.statistics = {
        "evaluated_expectations": len(rules),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(rules) - passed,
        "success_percent": 100.0 * passed / len(rules) if rules else 100.0,
    }
    combined.meta = {**(combined.meta or {}), "expectation_suite_name": name}
    outcomes = tuple(_outcome(rule, results[key]) for key, rule in rule_by_key.items())
    return SuiteOutcome(outcomes, combined)


def write_data_docs(outcome: SuiteOutcome, path: Path) -> Path:
    """Renders GX's HTML data docs page of one validation to ``path``.

    Args:
        outcome: A validation from ``run_suite``.
        path: Where to write the standalone HTML page.

    Returns:
        The path written.
    """
    page = ValidationResultsPageRenderer().render(outcome.gx_result)
    html = DefaultJinjaPageView().render(page)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
