"""Great Expectations suite vs the same rules as plain vectorised pandas, side by side.

Builds a 25-column data-set spec, derives its ~50-rule suite with the platform's own
``suite_rules``, generates 1,000,000 typed rows (a few broken on purpose, so failure details
are part of the cost) and times, in this one process:

* ``gx``: ``mlplatform.datasets.gx_suite.run_suite`` (what the asset checks run), and
* ``pandas``: each rule as a vectorised pandas/numpy expression with the same outputs
  (pass/fail, unexpected count, sample rows and values for failures).

Usage: ``python benchmarks/data_validation.py [--rows 1000000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import pandas as pd

from mlplatform.datasets.expectations import Rule, suite_rules
from mlplatform.datasets.spec import parse_spec

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


def wide_frame(rows: int, seed: int = 7) -> pd.DataFrame:
    """Typed rows as the checks see them (``gx_frame``): a few values broken on purpose."""
    rng = np.random.default_rng(seed)
    data = {
        "customer_id": pd.Series(np.char.add("C", np.arange(rows).astype("U9")), dtype=object),
        "churned": (rng.random(rows) < 0.3).astype("float64"),
    }
    for i in range(10):
        data[f"num_{i}"] = rng.uniform(0, 100, rows)
    data["num_3"][rng.choice(rows, 25, replace=False)] = 150.0  # out of range
    data["num_7"][rng.choice(rows, rows // 500, replace=False)] = np.nan  # within its null share
    for i in range(3):
        data[f"count_{i}"] = rng.integers(0, 1001, rows).astype("float64")
    for name, domain in CATEGORIES.items():
        values = np.asarray(domain, dtype=object)[rng.integers(0, len(domain), rows)]
        if name == "channel":
            values[rng.choice(rows, 11, replace=False)] = "fax"  # outside the domain
        data[name] = pd.Categorical(values)
    for i in range(3):
        data[f"date_{i}"] = np.datetime64("2024-01-01") + rng.integers(0, 700, rows).astype(
            "timedelta64[D]"
        )
    data["is_active"] = (rng.random(rows) < 0.5).astype("float64")
    return pd.DataFrame(data)


def pandas_rule(frame: pd.DataFrame, rule: Rule, sample: int = 10) -> dict:
    """One rule as vectorised pandas: success, unexpected count, sample rows and values."""
    kw = rule.kwargs
    name = rule.expectation
    if name == "ExpectTableColumnsToMatchSet":
        return {"success": set(kw["column_set"]) <= set(frame.columns)}
    if name == "ExpectTableRowCountToBeBetween":
        return {"success": kw["min_value"] <= len(frame) <= kw["max_value"]}
    column = frame[kw["column"]]
    if name == "ExpectColumnMeanToBeBetween":
        mean = column.mean()
        return {"success": kw["min_value"] <= mean <= kw["max_value"], "observed": mean}
    present = column.notna()
    if name == "ExpectColumnValuesToNotBeNull":
        bad = ~present
        share = 1.0 - bad.mean()
        success = share >= kw.get("mostly", 1.0)
    elif name == "ExpectColumnValuesToBeBetween":
        bad = present & ((column < kw["min_value"]) | (column > kw["max_value"]))
        success = not bad.any()
    elif name == "ExpectColumnValuesToBeInSet":
        bad = present & ~column.isin(kw["value_set"])
        success = not bad.any()
    elif name == "ExpectColumnValuesToBeUnique":
        bad = present & column.duplicated(keep=False)
        success = not bad.any()
    else:
        raise ValueError(f"no pandas baseline for {name}")
    result = {"success": bool(success), "unexpected": int(bad.sum())}
    if not success:
        rows = np.flatnonzero(bad.to_numpy())[:sample]
        result["rows"] = rows.tolist()
        result["values"] = column.iloc[rows].tolist()
    return result


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after one warm-up, and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    from mlplatform.datasets import gx_suite

    import_seconds = time.perf_counter() - started
    spec = wide_spec()
    rules = suite_rules(spec)
    frame = wide_frame(args.rows)
    gx_seconds, outcome = timed(lambda: gx_suite.run_suite(frame, rules, "bench"), args.repeats)
    pandas_seconds, baseline = timed(lambda: [pandas_rule(frame, r) for r in rules], args.repeats)
    mismatches = [
        o.rule.describe()
        for o, b in zip(outcome.outcomes, baseline, strict=True)
        if o.success != b["success"]
        or (not o.success and o.unexpected_count != b.get("unexpected"))
    ]
    failed = [o.rule.describe() for o in outcome.outcomes if not o.success]
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(f"frame: {len(frame):,} rows x {frame.shape[1]} columns; rules: {len(rules)}")
    print(f"great_expectations import: {import_seconds:.2f} s (paid once per process)")
    print(f"failed rules (on purpose): {len(failed)}: {failed}")
    print(f"GX vs pandas disagreements: {mismatches or 'none'}")
    print(f"gx run_suite   : {gx_seconds * 1000:8.0f} ms")
    print(f"pandas baseline: {pandas_seconds * 1000:8.0f} ms")
    print(f"ratio          : {gx_seconds / pandas_seconds:8.2f}x (goal <= 3x)")


if __name__ == "__main__":
    main()
