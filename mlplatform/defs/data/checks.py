from collections.abc import Iterator

import dagster as dg
import pandas as pd

from mlplatform.datasets.expectations import (
    GROUP_DESCRIPTIONS,
    HARD_GROUPS,
    RAW_GROUPS,
    SCHEMA,
    VALIDATED_GROUPS,
    Rule,
    suite_rules,
)
from mlplatform.defs.data.partitions import daily_partitions
from mlplatform.defs.data.resources import DatasetResource


def _specs(asset: str, groups: tuple[str, ...]) -> list[dg.AssetCheckSpec]:
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


def _run_groups(
    context: dg.AssetCheckExecutionContext,
    frame: pd.DataFrame,
    asset: str,
    groups: tuple[str, ...],
    dataset: DatasetResource,
) -> Iterator[dg.AssetCheckResult]:
    # Great Expectations is imported here, not at module level: loading the code location
    # (UI, sensors) must not pay its import time.
    from mlplatform.datasets.gx_suite import gx_frame, run_suite, write_data_docs
    from mlplatform.datasets.validation import coerce_frame

    spec = dataset.spec()
    partition = context.partition_key
    typed, type_violations = coerce_frame(frame, spec)
    unparsed = {v.column: v.count for v in type_violations}
    rules: list[Rule] = [
        r
        for r in suite_rules(spec)
        if r.group in groups and (r.column is None or r.column in typed.columns)
    ]
    outcome = run_suite(gx_frame(typed, spec), rules, name=f"{spec.name}.{asset}")
    docs = write_data_docs(
        outcome,
        dataset.state_dir("data_docs", asset, f"{partition}-{context.run.run_id[:8]}.html"),
    )
    source = dataset.source_description(partition)
    for group in groups:
        outcomes = outcome.for_group(group)
        problems = [_explain(o, unparsed) for o in outcomes if not o.success]
        if group == SCHEMA:
            problems += [v.describe() for v in type_violations]
        severity = (
            dg.AssetCheckSeverity.ERROR if group in HARD_GROUPS else dg.AssetCheckSeverity.WARN
        )
        yield dg.AssetCheckResult(
            check_name=group,
            asset_key=asset,
            passed=not problems,
            severity=severity,
            description=(f"{source}: " + " | ".join(problems))[:2000] if problems else None,
            metadata={
                "source": source,
                "rules": len(outcomes),
                "failed_rules": len(problems),
                "unexpected_rows": sum(o.unexpected_count or 0 for o in outcomes),
                "results": dg.MetadataValue.md(
                    _table(outcomes)
                    + "".join(
                        f"\n\n**type** {v.describe()}" for v in type_violations if group == SCHEMA
                    )
                ),
                "data_docs": dg.MetadataValue.url(docs.as_uri()),
                "data_docs_path": dg.MetadataValue.path(str(docs)),
            },
        )


@dg.multi_asset_check(
    specs=_specs("raw_data", RAW_GROUPS),
    ins={"raw_data": dg.AssetIn("raw_data")},
    name="raw_data_expectations",
)
def raw_data_expectations(
    context: dg.AssetCheckExecutionContext, raw_data: pd.DataFrame, dataset: DatasetResource
) -> Iterator[dg.AssetCheckResult]:
    """The Great Expectations suite of the data-set spec, on one day of raw rows."""
    yield from _run_groups(context, raw_data, "raw_data", RAW_GROUPS, dataset)


@dg.multi_asset_check(
    specs=_specs("validated_data", VALIDATED_GROUPS),
    ins={"validated_data": dg.AssetIn("validated_data")},
    name="validated_data_expectations",
)
def validated_data_expectations(
    context: dg.AssetCheckExecutionContext,
    validated_data: pd.DataFrame,
    dataset: DatasetResource,
) -> Iterator[dg.AssetCheckResult]:
    """The label-balance expectations on one validated day: a model needs both classes."""
    yield from _run_groups(context, validated_data, "validated_data", VALIDATED_GROUPS, dataset)
