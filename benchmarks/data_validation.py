"""Great Expectations suite vs the same rules as plain vectorised pandas, side by side.

Builds a 25-column data-set spec, derives its ~50-rule suite with the platform's own
``suite_rules``, generates typed rows exactly as ``validation.coerce_frame`` returns them
(float64, Int64, boolean, object strings, datetime64) and times, in this one process:

* ``gx``: ``gx_suite.gx_frame`` then ``gx_suite.run_suite``, which is what the asset checks
  pay after ``coerce_frame`` (see ``mlplatform/defs/data/checks.py``), and
* ``pandas``: each rule as a vectorised pandas/numpy expression on the ``coerce_frame`` output,
  with the same outputs: pass/fail, unexpected count, and for failed rules the sample rows
  (index labels) and values. The two are compared and any disagreement is an error.

Two scenarios: ``few failures`` (2 rules broken on a handful of rows) and ``many failures``
(about a third of the rules broken on ~10% of rows, so failure details weigh on the cost).

Usage: ``python benchmarks/data_validation.py [--rows 1000000] [--repeats 3]``. Exits 1 when
GX costs more than ``MAX_RATIO`` times the pandas baseline in any scenario, or disagrees with it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from report import Figure, Recorder, ratio_figure

from mlplatform.datasets.expectations import Rule, suite_rules
from mlplatform.datasets.spec import parse_spec
from mlplatform.datasets.validation import coerce_frame

MAX_RATIO = 3.0
SAMPLE = 10  # the sample size gx_suite reports for a failed rule
CATEGORIES = {
    "plan": ["basic", "plus", "pro"],
    "region": ["north", "south", "east", "west"],
    "channel": ["web", "app", "store", "phone", "partner"],
    "segment": ["s", "m", "l", "xl"],
    "payment": ["card", "bank", "invoice"],
    "device": ["ios", "android", "desktop"],
}


def wide_spec():
    """A 25-column spec: id, label, 13 numeric, 6 category, 3 date, 1 boolean."""
    columns = {"customer_id": {"type": "string"}, "churned": {"type": "boolean"}}
    for i in range(10):
        columns[f"num_{i}"] = {"type": "float", "min": 0, "max": 100}
    columns["num_0"]["mean"] = [40, 60]
    columns["num_1"]["mean"] = [40, 60]
    columns["num_7"].update(nullable=True, max_null_fraction=0.01)
    for i in range(3):
        columns[f"count_{i}"] = {"type": "integer", "min": 0, "max": 1000, "mean": [400, 600]}
    for name, domain in CATEGORIES.items():
        columns[name] = {"type": "category", "domain": domain}
    for i in range(3):
        columns[f"date_{i}"] = {"type": "date"}
    columns["is_active"] = {"type": "boolean"}
    return parse_spec(
        {
            "name": "wide",
            "source": {"kind": "synthetic"},
            "id_column": "customer_id",
            "label_column": "churned",
            "min_rows": 1000,
            "max_rows": 10_000_000,
            "label_rate": [0.1, 0.5],
            "columns": columns,
        },
        "benchmark",
    )


def raw_frame(rows: int, many_failures: bool, seed: int = 7) -> pd.DataFrame:
    """Rows as a loader delivers them, some broken on purpose.

    ``few failures``: 25 values out of range, 11 outside a domain, 0.2% nulls in a nullable
    column (within its share). ``many failures``: additionally ~10% of the rows out of range in
    8 float and 3 integer columns, outside the domain in all 6 category columns, and missing in
    2 date columns: 19 failing rules of 53.
    """
    rng = np.random.default_rng(seed)

    def some(share: float) -> np.ndarray:
        return rng.choice(rows, int(rows * share), replace=False)

    data = {
        "customer_id": pd.Series(np.char.add("C", np.arange(rows).astype("U9")), dtype=object),
        "churned": rng.random(rows) < 0.3,
    }
    for i in range(10):
        data[f"num_{i}"] = rng.uniform(0, 100, rows)
    data["num_3"][rng.choice(rows, 25, replace=False)] = 150.0
    data["num_7"][some(0.002)] = np.nan
    for i in range(3):
        data[f"count_{i}"] = rng.integers(0, 1001, rows)
    for name, domain in CATEGORIES.items():
        data[name] = np.asarray(domain, dtype=object)[rng.integers(0, len(domain), rows)]
    data["channel"][rng.choice(rows, 11, replace=False)] = "fax"
    for i in range(3):
        days = rng.integers(0, 700, rows).astype("timedelta64[D]")
        data[f"date_{i}"] = pd.Series(np.datetime64("2024-01-01") + days).astype("datetime64[ns]")
    data["is_active"] = rng.random(rows) < 0.5
    if many_failures:
        # Half below, half above the range, so the column means stay where they were.
        for i in range(2, 10):
            bad = some(0.1)
            data[f"num_{i}"][bad] = np.where(bad % 2 == 0, -50.0, 150.0)
        for i in range(3):
            bad = some(0.1)
            data[f"count_{i}"][bad] = np.where(bad % 2 == 0, -500, 1500)
        for name in CATEGORIES:
            data[name][some(0.1)] = "unknown"
        for i in range(2):
            data[f"date_{i}"][some(0.1)] = pd.NaT
    return pd.DataFrame(data)


def pandas_rule(frame: pd.DataFrame, rule: Rule) -> dict:
    """One rule as vectorised pandas: success, unexpected count, sample rows and values.

    Written the way one would by hand for speed, so the ratio is not flattered: one boolean
    numpy mask per rule, missing values excluded the cheapest correct way for each rule.
    """
    kw = rule.kwargs
    name = rule.expectation
    if name == "ExpectTableColumnsToMatchSet":
        return {"success": set(kw["column_set"]) <= set(frame.columns)}
    if name == "ExpectTableRowCountToBeBetween":
        return {"success": kw["min_value"] <= len(frame) <= kw["max_value"]}
    column = frame[kw["column"]]
    if name == "ExpectColumnMeanToBeBetween":
        mean = column.mean()
        return {"success": bool(kw["min_value"] <= mean <= kw["max_value"]), "observed": mean}
    if name == "ExpectColumnValuesToNotBeNull":
        bad = column.isna().to_numpy()
        success = 1.0 - bad.sum() / len(bad) >= kw.get("mostly", 1.0)
    elif name == "ExpectColumnValuesToBeBetween":
        # NaN compares False and <NA> becomes False: missing values are not out of range.
        outside = (column < kw["min_value"]) | (column > kw["max_value"])
        bad = outside.to_numpy(dtype=bool, na_value=False)
        success = not bad.any()
    elif name == "ExpectColumnValuesToBeInSet":
        # coerce_frame leaves missing text as None: listing it spares a separate notna() pass.
        bad = ~column.isin([*kw["value_set"], None, np.nan]).to_numpy()
        success = not bad.any()
    elif name == "ExpectColumnValuesToBeUnique":
        bad = column.duplicated(keep=False).to_numpy()
        if bad.any():  # repeated missing ids are not duplicates
            bad &= column.notna().to_numpy()
        success = not bad.any()
    else:
        raise ValueError(f"no pandas baseline for {name}")
    result = {"success": bool(success), "unexpected": int(bad.sum())}
    if not success:
        positions = np.flatnonzero(bad)[:SAMPLE]
        result["rows"] = frame.index[positions].tolist()
        # A missing value says nothing: gx_suite reports no values for a not-null rule either.
        if name != "ExpectColumnValuesToNotBeNull":
            result["values"] = column.iloc[positions].tolist()
    return result


def disagreements(outcome, baseline: list[dict]) -> list[str]:
    """The rules on which GX and the pandas baseline report different outputs."""
    found = []
    for o, b in zip(outcome.outcomes, baseline, strict=True):
        same = o.success == b["success"]
        if same and not o.success and "unexpected" in b:
            same = (
                o.unexpected_count == b["unexpected"]
                and list(o.sample_rows) == b["rows"]
                and list(o.sample_values) == b.get("values", [])
            )
        if not same:
            found.append(f"{o.rule.describe()}: gx {o} vs pandas {b}")
    return found


def timed_side_by_side(
    gx_run: Callable[[], object], pandas_run: Callable[[], object], repeats: int
) -> tuple[float, object, float, object]:
    """Median seconds of each after one warm-up, and the last results.

    The two alternate within every repeat, so load from other processes hits both alike.
    """
    gx_result, pandas_result = gx_run(), pandas_run()
    gx_times, pandas_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        gx_result = gx_run()
        gx_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        pandas_result = pandas_run()
        pandas_times.append(time.perf_counter() - started)
    return (
        statistics.median(gx_times),
        gx_result,
        statistics.median(pandas_times),
        pandas_result,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    import great_expectations

    from mlplatform.datasets import gx_suite

    import_seconds = time.perf_counter() - started
    spec = wide_spec()
    rules = suite_rules(spec)
    recorder = Recorder.start(
        "data_validation",
        pandas=pd.__version__,
        numpy=np.__version__,
        great_expectations=great_expectations.__version__,
    )
    print(f"great_expectations import: {import_seconds:.2f} s (paid once per process)")
    header = ("scenario", "rows x columns", "rules", "failing", "gx ms", "pandas ms", "ratio")
    table, problems = [], []
    for scenario, many in (("few failures", False), ("many failures", True)):
        typed, _ = coerce_frame(raw_frame(args.rows, many), spec)
        gx_seconds, outcome, pandas_seconds, baseline = timed_side_by_side(
            lambda typed=typed: gx_suite.run_suite(gx_suite.gx_frame(typed, spec), rules, "bench"),
            lambda typed=typed: [pandas_rule(typed, r) for r in rules],
            args.repeats,
        )
        ratio = gx_seconds / pandas_seconds
        failing = sum(not o.success for o in outcome.outcomes)
        table.append(
            (
                scenario,
                f"{len(typed):,} x {typed.shape[1]}",
                str(len(rules)),
                str(failing),
                f"{gx_seconds * 1000:.0f}",
                f"{pandas_seconds * 1000:.0f}",
                f"{ratio:.2f}x",
            )
        )
        disagreeing = disagreements(outcome, baseline)
        problems += [f"{scenario}: {d}" for d in disagreeing]
        recorder.add(
            ratio_figure(
                f"GX suite, {scenario} ({failing} of {len(rules)} rules fail)",
                gx_seconds * 1000,
                pandas_seconds * 1000,
                "pandas",
                unit="ms",
                at_most=MAX_RATIO,
                note=f"{len(typed):,} rows x {typed.shape[1]} columns; median of {args.repeats}",
            ),
            Figure(
                f"rules where GX and pandas disagree, {scenario}",
                len(disagreeing),
                goal="0",
                met=not disagreeing,
                note="pass/fail, unexpected counts, sample rows and values",
                plot=False,
            ),
        )
        if ratio > MAX_RATIO:
            problems.append(f"{scenario}: GX costs {ratio:.2f}x pandas, over {MAX_RATIO:g}x")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    return recorder.finish(problems, ok=f"ok (every ratio <= {MAX_RATIO:g}x)")


if __name__ == "__main__":
    sys.exit(main())
