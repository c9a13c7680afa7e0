import dagster as dg
from pydantic import Field

from mlplatform.datasets.expectations import HARD_GROUPS, RAW_GROUPS
from mlplatform.datasets.versioning import frame_digest
from mlplatform.datasets.window import StoredPartitions, combine_partitions, select_window
from mlplatform.defs.data.partitions import FIRST_DAY, daily_partitions
from mlplatform.defs.data.resources import DatasetResource
from mlplatform.features.sets import FeatureSet, engineer_features
from mlplatform.ml.holdout import load_or_create_holdout, training_rows


class TrainingWindowConfig(dg.Config):
    """Which daily partitions of validated_data the model trains on."""

    window_days: int | None = Field(
        default=None, ge=1, description="Rolling window length in days; default: the spec's."
    )
    window_end: str = Field(
        default="", description="Last day (YYYY-MM-DD) of the window; empty = newest usable day."
    )
    max_missing_days: int = Field(
        default=0, ge=0, description="Days in the window allowed to lack a usable partition."
    )
    max_staleness_days: int | None = Field(
        default=7,
        ge=0,
        description="Without window_end: how many days the newest usable day may lag yesterday "
        "(null = no limit).",
    )


def _rejected_days(instance: dg.DagsterInstance, days: list[str]) -> dict[str, str]:
    """Days whose latest raw_data delivery failed a blocking check, with the checks and run."""
    keys = [
        dg.AssetCheckKey(dg.AssetKey("raw_data"), group)
        for group in RAW_GROUPS
        if group in HARD_GROUPS
    ]
    failed: dict[str, tuple[list[str], str]] = {}
    for info in instance.event_log_storage.get_asset_check_partition_info(
        keys, partition_keys=days
    ):
        # Compared by value: the status enum is not part of Dagster's public API.
        if info.latest_execution_status.value == "FAILED":
            checks, _ = failed.setdefault(info.partition_key, ([], info.latest_planned_run_id))
            checks.append(info.check_key.name)
    return {
        day: f"checks {', '.join(sorted(checks))} failed in run {run_id}"
        for day, (checks, run_id) in failed.items()
    }


def _data_versions(instance: dg.DagsterInstance, days: tuple[str, ...]) -> dict[str, str]:
    """The data version of each day's latest validated_data (what the window read)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("validated_data"), asset_partitions=list(days)),
        limit=max(len(days) * 20, 100),
    ).records
    versions: dict[str, str] = {}
    for record in records:  # newest first
        materialization = record.asset_materialization
        if materialization.partition not in versions:
            versions[materialization.partition] = materialization.metadata["data_version"].value
    return versions


@dg.asset(group_name="features", kinds={"pandas"}, code_version="3")
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
        rejected=_rejected_days(context.instance, list(validated_data)),
        newest_day=daily_partitions.get_last_partition_key(),
        max_staleness_days=config.max_staleness_days,
    )
    context.log.info(f"training window {window.describe()}")
    rows = combine_partitions(validated_data, window, spec.id_column, spec.required_columns)
    holdout = load_or_create_holdout(
        dataset.state_dir("holdout"),
        rows,
        spec.id_column,
        dataset.holdout_fraction,
        required_columns=spec.required_columns,
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
        window_versions=_data_versions(context.instance, window.keys),
    )
    summary = engineered.describe().T[["mean", "std", "min", "max"]].round(3)
    return dg.Output(
        feature_set,
        data_version=dg.DataVersion(f"{feature_set.train_version}-{holdout.version}"),
        metadata={
            "window": window.describe(),
            "window_data_versions": dg.MetadataValue.json(feature_set.window_versions),
            "train_rows": len(train),
            "holdout_rows": len(holdout.frame),
            "train_version": feature_set.train_version,
            "holdout_version": holdout.version,
            "holdout_path": dg.MetadataValue.path(str(holdout.path)),
            "model_inputs": dg.MetadataValue.json(list(spec.features.input_columns)),
            "engineered_features": dg.MetadataValue.md(summary.to_markdown()),
        },
    )
