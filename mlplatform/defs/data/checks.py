import dagster as dg
import pandas as pd

from mlplatform.datasets.validation import validate_frame
from mlplatform.defs.data.partitions import daily_partitions
from mlplatform.defs.data.resources import DatasetResource


@dg.asset_check(asset="validated_data", blocking=True, partitions_def=daily_partitions)
def label_has_both_classes(validated_data: pd.DataFrame, dataset: DatasetResource):
    """Both label classes occur, with at least 1% of rows each, so a model can be trained."""
    label = validated_data[dataset.spec().label_column].astype(bool)
    rate = float(label.mean())
    return dg.AssetCheckResult(
        passed=0.01 <= rate <= 0.99,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"positive_rate": rate, "rows": len(label)},
    )


@dg.asset_check(asset="validated_data", partitions_def=daily_partitions)
def categories_within_domain(validated_data: pd.DataFrame, dataset: DatasetResource):
    """Categories outside a non-strict domain (the model treats them as unknown) are reported."""
    _, report = validate_frame(validated_data, dataset.spec(), dataset.source_description())
    unseen = [w for w in report.warnings if w.rule == "domain"]
    return dg.AssetCheckResult(
        passed=not unseen,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unseen_rows": sum(w.count for w in unseen),
            "details": dg.MetadataValue.md(
                "\n".join(f"- {w.describe()}" for w in unseen) or "none"
            ),
        },
    )
