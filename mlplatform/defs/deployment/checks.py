import sys
import tempfile
from pathlib import Path

import dagster as dg
import numpy as np

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.assets import Deployment
from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.deployment.approvals import GATE_TAG_PREFIX
from mlplatform.features.sets import FeatureSet
from mlplatform.ml.evaluation import Evaluation
from mlplatform.ml.integrity import verify_model_uri
from mlplatform.ml.registry import CHAMPION
from mlplatform.ml.training import model_input

SMOKE_ROWS = 200


def _record_gate(client, evaluation: Evaluation, gate: str, passed: bool) -> None:
    # On the version itself, so an approval outside Dagster can refuse a failed gate.
    tag = f"{GATE_TAG_PREFIX}{gate}"
    value = "passed" if passed else "failed"
    client.set_model_version_tag(evaluation.model_name, evaluation.challenger_version, tag, value)


def _nothing_to_deploy(evaluation: Evaluation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=True,
        description=f"v{evaluation.challenger_version} is not being deployed "
        f"({evaluation.decision}): nothing to check",
    )


def _serving_environment(policy: DeploymentPolicy) -> tuple[dict, str]:
    """What the serving process reports, or what a fresh interpreter of this install reports."""
    from mlplatform.deployment.parity import interpreter_environment

    if not policy.serving_url:
        return interpreter_environment(sys.executable), f"interpreter {sys.executable}"
    import httpx

    url = policy.serving_url.rstrip("/") + "/health"
    try:
        health = httpx.get(url, timeout=10.0).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RuntimeError(
            f"serving process at {url} did not report its environment: {exc}"
        ) from exc
    return health["environment"], url


@dg.asset_check(asset="evaluation", blocking=True)
def serving_environment_matches(
    evaluation: Evaluation, mlflow_tracking: MLflowResource, deployment: DeploymentPolicy
) -> dg.AssetCheckResult:
    """Serving runs exactly the Python and library versions the challenger was trained with."""
    from mlplatform.deployment.parity import (
        compare_environments,
        differences_markdown,
        training_environment,
    )

    if not evaluation.should_promote:
        return _nothing_to_deploy(evaluation)
    client = mlflow_tracking.client()
    version = client.get_model_version(evaluation.model_name, evaluation.challenger_version)
    trained = training_environment(client.get_run(version.run_id).data.tags)
    serving, where = _serving_environment(deployment)
    differences = compare_environments(trained, serving)
    _record_gate(client, evaluation, "serving_parity", not differences)
    return dg.AssetCheckResult(
        passed=not differences,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{len(differences)} difference(s) between training and serving ({where}): "
            + ", ".join(f"{d.component} {d.training} vs {d.serving}" for d in differences)
            if differences
            else f"serving ({where}) matches training exactly"
        ),
        metadata={
            "serving": where,
            "differences": dg.MetadataValue.md(differences_markdown(differences)),
            "training_environment": dg.MetadataValue.json(trained),
        },
    )


@dg.asset_check(
    asset="evaluation", blocking=True, additional_ins={"features": dg.AssetIn("features")}
)
def challenger_loads_and_scores_in_serving_process(
    evaluation: Evaluation,
    features: FeatureSet,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
) -> dg.AssetCheckResult:
    """The challenger loads from the registry in a fresh process and scores holdout rows."""
    from mlplatform.deployment.smoke import smoke_test

    if not evaluation.should_promote:
        return _nothing_to_deploy(evaluation)
    uri = f"models:/{evaluation.model_name}/{evaluation.challenger_version}"
    rows = model_input(features.holdout.head(SMOKE_ROWS), dataset.spec())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.parquet"
        rows.to_parquet(path)
        result = smoke_test(uri, path, mlflow_tracking.resolved_uri)
    _record_gate(mlflow_tracking.client(), evaluation, "serving_smoke_test", result.passed)
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{uri} scored {result.rows} holdout rows in a separate process in "
            f"{result.seconds:.1f} s"
            if result.passed
            else f"{uri} failed to load or score in a separate process: {result.error}"
        ),
        metadata={"model_uri": uri, "rows": result.rows, "seconds": result.seconds},
    )


@dg.asset_check(asset="deployed_model", additional_ins={"features": dg.AssetIn("features")})
def champion_serves_valid_probabilities(
    deployed_model: Deployment,
    features: FeatureSet,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
) -> dg.AssetCheckResult:
    """The champion alias loads as a pyfunc model and gives a probability in [0, 1] for every row."""
    import mlflow.pyfunc

    if deployed_model.champion_version == "none":
        return dg.AssetCheckResult(
            passed=True, description=f"no champion yet ({deployed_model.status}): nothing served"
        )
    client = mlflow_tracking.client()
    uri = f"models:/{deployed_model.model_name}@{CHAMPION}"
    model = mlflow.pyfunc.load_model(verify_model_uri(client, uri))
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
