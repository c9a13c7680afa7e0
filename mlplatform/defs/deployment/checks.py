import dagster as dg
import numpy as np

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.assets import Deployment
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.features.sets import FeatureSet
from mlplatform.ml.registry import CHAMPION
from mlplatform.ml.training import model_input

SMOKE_ROWS = 200


@dg.asset_check(asset="deployed_model", additional_ins={"features": dg.AssetIn("features")})
def champion_serves_valid_probabilities(
    deployed_model: Deployment,
    features: FeatureSet,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
) -> dg.AssetCheckResult:
    """The champion alias loads as a pyfunc model and gives a probability in [0, 1] for every row."""
    import mlflow.pyfunc

    mlflow_tracking.client()
    uri = f"models:/{deployed_model.model_name}@{CHAMPION}"
    model = mlflow.pyfunc.load_model(uri)
    rows = model_input(features.holdout.head(SMOKE_ROWS), dataset.spec())
    scores = np.asarray(model.predict(rows))
    positive = scores[:, 1] if scores.ndim == 2 else scores
    valid = np.isfinite(positive) & (positive >= 0) & (positive <= 1)
    return dg.AssetCheckResult(
        passed=bool(valid.all()) and len(positive) == len(rows),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "model_uri": uri,
            "rows_scored": len(positive),
            "invalid_predictions": int((~valid).sum()),
            "mean_probability": float(np.nanmean(positive)),
        },
    )
