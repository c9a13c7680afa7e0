import dagster as dg
import pandas as pd

from mlplatform.datasets.versioning import frame_digest
from mlplatform.defs.data.resources import DatasetResource
from mlplatform.features.sets import FeatureSet, engineer_features
from mlplatform.ml.holdout import load_or_create_holdout, training_rows


@dg.asset(group_name="features", kinds={"pandas"}, code_version="1")
def features(
    context: dg.AssetExecutionContext, validated_data: pd.DataFrame, dataset: DatasetResource
) -> dg.Output:
    """Training rows, the frozen holdout they never overlap, and the engineered features."""
    spec = dataset.spec()
    holdout = load_or_create_holdout(
        dataset.state_dir("holdout"), validated_data, spec.id_column, dataset.holdout_fraction
    )
    if holdout.created:
        context.log.info(f"froze a new holdout {holdout.version} at {holdout.path}")
    train = training_rows(validated_data, holdout, spec.id_column)
    engineered = engineer_features(spec, train)
    feature_set = FeatureSet(
        dataset=spec.name,
        train=train,
        holdout=holdout.frame,
        train_version=frame_digest(train),
        holdout_version=holdout.version,
        engineered_train=engineered,
    )
    summary = engineered.describe().T[["mean", "std", "min", "max"]].round(3)
    return dg.Output(
        feature_set,
        data_version=dg.DataVersion(f"{feature_set.train_version}-{holdout.version}"),
        metadata={
            "train_rows": len(train),
            "holdout_rows": len(holdout.frame),
            "train_version": feature_set.train_version,
            "holdout_version": holdout.version,
            "holdout_path": dg.MetadataValue.path(str(holdout.path)),
            "model_inputs": dg.MetadataValue.json(list(spec.features.input_columns)),
            "engineered_features": dg.MetadataValue.md(summary.to_markdown()),
        },
    )
