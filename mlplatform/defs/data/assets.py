import dagster as dg
import pandas as pd

from mlplatform.datasets.validation import enforce_spec
from mlplatform.datasets.versioning import frame_digest
from mlplatform.defs.data.resources import DatasetResource


def _preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))


@dg.asset(group_name="data", kinds={"pandas"}, code_version="1")
def raw_data(context: dg.AssetExecutionContext, dataset: DatasetResource) -> dg.Output:
    """Rows of the configured data set exactly as its source delivers them."""
    frame, source = dataset.load()
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


@dg.asset(group_name="data", kinds={"pandas"}, code_version="1")
def validated_data(raw_data: pd.DataFrame, dataset: DatasetResource) -> dg.Output:
    """Raw rows that satisfy the data-set spec, typed; any broken rule fails the run."""
    spec = dataset.spec()
    # Raises DataValidationError naming source, column, rows and values: nothing downstream runs.
    typed, report = enforce_spec(raw_data, spec, dataset.source_description())
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
