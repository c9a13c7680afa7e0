from dataclasses import dataclass

import dagster as dg
import pandas as pd

from mlplatform.datasets.expectations import (
    DISTRIBUTION,
    GROUP_DESCRIPTIONS,
    HARD_GROUPS,
    SCHEMA,
    Rule,
    suite_rules,
)
from mlplatform.defs.data.partitions import daily_partitions
from mlplatform.defs.data.resources import DatasetResource


def check_specs(asset: str, groups: tuple[str, ...]) -> list[dg.AssetCheckSpec]:
    """One daily-partitioned check per group; hard groups block what is downstream."""
    return [
        dg.AssetCheckSpec(
            name=group,
            asset=asset,
            description=GROUP_DESCRIPTIONS[group],
            blocking=group in HARD_GROUPS,
            partitions_def=daily_partitions,
        )
        for group in groups
    ]


@dataclass(frozen=True)
class GroupResults:
    """The check results of one validation, and the hard groups that failed."""

    results: list[dg.AssetCheckResult]
    hard_failures: list[dg.AssetCheckResult]


def _table(outcomes) -> str:
    header = "| rule | status | unexpected | % | sample rows | sample values | observed |\n"
    header += "|---|---|---|---|---|---|---|\n"
    rows = []
    for o in outcomes:
        percent = "" if o.unexpected_percent is None else f"{o.unexpected_percent:.3f}"
        observed = "" if o.observed_value is None else str(o.observed_value)[:80]
        status = "pass" if o.success else ("**ERROR**" if o.error else "**FAIL**")
        rows.append(
            f"| `{o.rule.describe()}` | {status} | {o.unexpected_count or ''} | {percent} | "
            f"{list(o.sample_rows) or ''} | {list(o.sample_values) or ''} | {observed} |"
        )
    return header + "\n".join(rows)


def _explain(outcome, unparsed: dict[str, int]) -> str:
    text = outcome.describe()
    column = outcome.rule.column
    if outcome.rule.expectation == "ExpectColumnValuesToNotBeNull" and column in unparsed:
        text += f" (includes {unparsed[column]} value(s) that did not parse; see the schema check)"
    return text


def evaluate_groups(
    frame: pd.DataFrame,
    asset: str,
    groups: tuple[str, ...],
    dataset: DatasetResource,
    partition: str,
    run_id: str,
) -> GroupResults:
    """Runs the spec's Great Expectations rules of these groups on one day of rows.

    Args:
        frame: The day's rows (raw or typed); the index is each row's number in its source.
        asset: The asset the checks belong to.
        groups: Check groups to evaluate.
        dataset: The configured data set.
        partition: The day.
        run_id: The Dagster run (names the data docs page).

    Returns:
        One AssetCheckResult per group (metadata: per-rule table, counts, data docs link).
    """
    # Great Expectations is imported here, not at module level: loading the code location
    # (UI, sensors) must not pay its import time.
    from mlplatform.datasets.gx_suite import gx_frame, run_suite, write_data_docs
    from mlplatform.datasets.validation import coerce_frame

    spec = dataset.spec()
    typed, type_violations = coerce_frame(frame, spec)
    unparsed = {v.column: v.count for v in type_violations}
    rules: list[Rule] = [
        r
        for r in suite_rules(spec)
        if r.group in groups and (r.column is None or r.column in typed.columns)
    ]
    outcome = run_suite(gx_frame(typed, spec), rules, name=f"{spec.name}.{asset}")
    docs = write_data_docs(
        outcome, dataset.state_dir("data_docs", asset, f"{partition}-{run_id[:8]}.html")
    )
    source = dataset.source_description(partition)
    results, hard_failures = [], []
    for group in groups:
        outcomes = outcome.for_group(group)
        problems = [_explain(o, unparsed) for o in outcomes if not o.success]
        type_lines = [v.describe() for v in type_violations] if group == SCHEMA else []
        problems += type_lines
        hard = group in HARD_GROUPS
        result = dg.AssetCheckResult(
            check_name=group,
            asset_key=asset,
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR if hard else dg.AssetCheckSeverity.WARN,
            description=(f"{source}: " + " | ".join(problems))[:4000] if problems else None,
            metadata={
                "source": source,
                "rules": len(outcomes),
                "problems": len(problems),
                "results": dg.MetadataValue.md(
                    _table(outcomes) + "".join(f"\n\n**type** {line}" for line in type_lines)
                ),
                "data_docs": dg.MetadataValue.url(docs.as_uri()),
                "data_docs_path": dg.MetadataValue.path(str(docs)),
            },
        )
        results.append(result)
        if hard and problems:
            hard_failures.append(result)
    return GroupResults(results, hard_failures)


@dg.asset_check(
    asset="validated_data",
    name=DISTRIBUTION,
    description=GROUP_DESCRIPTIONS[DISTRIBUTION],
    partitions_def=daily_partitions,
)
def distribution(
    context: dg.AssetCheckExecutionContext, validated_data: pd.DataFrame, dataset: DatasetResource
) -> dg.AssetCheckResult:
    """Column means of one validated day lie in their expected ranges (a warning, not a gate)."""
    (result,) = evaluate_groups(
        validated_data,
        "validated_data",
        (DISTRIBUTION,),
        dataset,
        context.partition_key,
        context.run.run_id,
    ).results
    return result
