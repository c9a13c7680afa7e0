import dagster as dg
from pydantic import Field

from mlplatform.datasets.versioning import frame_digest
from mlplatform.datasets.window import StoredPartitions, combine_partitions, select_window
from mlplatform.defs.data.partitions import FIRST_DAY
from mlplatform.defs.data.resources import DatasetResource
from mlplatform.features.sets import FeatureSet, engineer_features
from mlplatform.ml.holdout import load_or_create_holdout, training_rows


class TrainingWindowConfig(dg.Config):
    """Which daily partitions of validated_data the model trains on."""

    window_days: int | None = Field(
        default=None, description="Rolling window length in days; default: the data-set spec's."
    )
    window_end: str = Field(
        default="", description="Last day (YYYY-MM-DD) of the window; empty = newest partition."
    )
    max_missing_days: int = Field(
        default=0, description="Days in the window allowed to lack a validated partition."
    )


@dg.asset(group_name="features", kinds={"pandas"}, code_version="2")
def features(
    context: dg.AssetExecutionContext,
    config: TrainingWindowConfig,
    validated_data: StoredPartitions,
    dataset: DatasetResource,
) -> dg.Output:
    """Training rows from a rolling window of validated days, the frozen holdout, and features."""
    spec = dataset.spec()
    window = select_window(
        validated_data,
        days=config.window_days or spec.training_window_days,
        end=config.window_end or None,
        max_missing=config.max_missing_days,
        first_day=FIRST_DAY,
    )
    context.log.info(f"training window {window.describe()}")
    rows = combine_partitions(validated_data, window, spec.id_column)
    holdout = load_or_create_holdout(
        dataset.state_dir("holdout"), rows, spec.id_column, dataset.holdout_fraction
    )
    if holdout.created:
        context.log.info(f"froze a new holdout {holdout.version} at {holdout.path}")
    train = training_rows(rows, holdout, spec.id_column)
    engineered = engineer_features(spec, train)
    feature_set = FeatureSet(
        dataset=spec.name,
        train=train,
        holdout=holdout.frame,
        train_version=frame_digest(train),
        holdout_version=holdout.version,
        engineered_train=engineered,
        window=window.describe(),
        holdout_path=str(holdout.path),
    )
    summary = engineered.describe().T[["mean", "std", "min", "max"]].round(3)
    return dg.Output(
        feature_set,
        data_version=dg.DataVersion(f"{feature_set.train_version}-{holdout.version}"),
        metadata={
            "window": window.describe(),
            "window_partitions": dg.MetadataValue.json(list(window.keys)),
            "train_rows": len(train),
            "holdout_rows": len(holdout.frame),
            "train_version": feature_set.train_version,
            "holdout_version": holdout.version,
            "holdout_path": dg.MetadataValue.path(str(holdout.path)),
            "model_inputs": dg.MetadataValue.json(list(spec.features.input_columns)),
            "engineered_features": dg.MetadataValue.md(summary.to_markdown()),
        },
    )
