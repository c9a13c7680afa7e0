import dagster as dg
import pandas as pd

from mlplatform.datasets.validation import enforce_spec
from mlplatform.datasets.versioning import frame_digest
from mlplatform.defs.data.partitions import daily_partitions
from mlplatform.defs.data.resources import DatasetResource


def _preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))


@dg.asset(group_name="data", kinds={"pandas"}, code_version="2", partitions_def=daily_partitions)
def raw_data(context: dg.AssetExecutionContext, dataset: DatasetResource) -> dg.Output:
    """One day of rows of the configured data set, exactly as its source delivers them."""
    # Raises SourceError naming the file and partition: a missing, empty or unreadable
    # delivery fails here and nothing downstream runs.
    frame, source = dataset.load_partition(context.partition_key)
    version = frame_digest(frame)
    return dg.Output(
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


@dg.asset(group_name="data", kinds={"pandas"}, code_version="2", partitions_def=daily_partitions)
def validated_data(
    context: dg.AssetExecutionContext, raw_data: pd.DataFrame, dataset: DatasetResource
) -> dg.Output:
    """One day of rows that passed the data checks, converted to the spec's types."""
    spec = dataset.spec()
    # The blocking checks on raw_data stop bad days before this runs; enforcing the spec again
    # keeps the guarantee even when someone materialises this asset without its checks.
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
