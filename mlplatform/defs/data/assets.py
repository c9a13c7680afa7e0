import dagster as dg
import pandas as pd

from mlplatform.datasets.expectations import RAW_GROUPS
from mlplatform.datasets.synthetic import DriftConfig
from mlplatform.datasets.validation import enforce_spec
from mlplatform.datasets.versioning import frame_digest
from mlplatform.defs.data.checks import check_specs, evaluate_groups
from mlplatform.defs.data.partitions import daily_partitions
from mlplatform.defs.data.resources import DatasetResource


def _preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))


class SimulatedDrift(dg.Config):
    """A distribution shift applied to a synthetic day: a drill for the drift sensor."""

    spend_multiplier: float = 1.0
    tenure_shift_months: float = 0.0
    unseen_region_fraction: float = 0.0
    label_shift: float = 0.0
    monthly_contract_share: float | None = None


class RawDataConfig(dg.Config):
    """Leave empty in production; ``simulate_drift`` is for drills on synthetic sources."""

    simulate_drift: SimulatedDrift | None = None


class DataChecksFailed(dg.Failure):
    """A day broke hard data rules; it was not stored, and the last good version stays."""


@dg.asset(
    group_name="data",
    kinds={"pandas", "great_expectations"},
    code_version="3",
    partitions_def=daily_partitions,
    check_specs=check_specs("raw_data", RAW_GROUPS),
)
def raw_data(context: dg.AssetExecutionContext, config: RawDataConfig, dataset: DatasetResource):
    """One day of rows as the source delivered them, stored only when the hard checks pass."""
    drift = config.simulate_drift
    # Raises SourceError naming the file and day: a missing, empty or unreadable delivery
    # fails here and nothing downstream runs.
    frame, source = dataset.load_partition(
        context.partition_key, DriftConfig(**drift.model_dump()) if drift else None
    )
    checked = evaluate_groups(
        frame, "raw_data", RAW_GROUPS, dataset, context.partition_key, context.run.run_id
    )
    yield from checked.results
    if checked.hard_failures:
        # Raising before the output is stored keeps the day's previous good version in place.
        raise DataChecksFailed(
            description="\n".join(
                f"check {r.check_name} failed: {r.description}" for r in checked.hard_failures
            ),
            metadata={
                "source": source,
                "failed_checks": [r.check_name for r in checked.hard_failures],
            },
        )
    version = frame_digest(frame)
    yield dg.Output(
        frame,
        data_version=dg.DataVersion(version),
        metadata={
            "dataset": dataset.spec().name,
            "source": source,
            "dagster/row_count": len(frame),
            "columns": len(frame.columns),
            "data_version": version,
            "preview": _preview(frame),
        },
    )


@dg.asset(group_name="data", kinds={"pandas"}, code_version="4", partitions_def=daily_partitions)
def validated_data(
    context: dg.AssetExecutionContext, raw_data: pd.DataFrame, dataset: DatasetResource
) -> dg.Output:
    """One day of rows that passed the data checks, converted to the spec's types."""
    spec = dataset.spec()
    # raw_data only stores days that passed its hard checks; enforcing the spec again guards
    # against a spec edited since that day was stored.
    typed, report = enforce_spec(raw_data, spec, dataset.source_description(context.partition_key))
    version = frame_digest(typed)
    label_rate = float(typed[spec.label_column].mean())
    return dg.Output(
        typed,
        data_version=dg.DataVersion(version),
        metadata={
            "dagster/row_count": len(typed),
            "data_version": version,
            "label_rate": label_rate,
            "warnings": dg.MetadataValue.md(
                "\n".join(f"- {w.describe()}" for w in report.warnings) or "none"
            ),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c, str(t)) for c, t in typed.dtypes.items()]
            ),
        },
    )
