"""MLflow tracking and registry operations: log the pipeline, register it, move aliases.

Aliases carry the deployment state: ``challenger`` (newest trained), ``champion`` (served),
``previous`` (the N-1 champion kept ready for rollback).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from mlplatform.ml.provenance import pinned_requirements

# skops (MLflow's safe format) refuses types it has not been told to trust; these are ours
# or scikit-learn's, reviewed, and nothing else may appear in a pipeline we load.
SKOPS_TRUSTED_TYPES = [
    "mlplatform.features.engineer.FeatureEngineer",
    "mlplatform.ml.training.as_float",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]

CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS = "previous"


@dataclass(frozen=True)
class RegisteredModel:
    """A logged and registered pipeline."""

    name: str
    version: str
    run_id: str
    model_uri: str


def ensure_experiment(name: str, artifact_location: str | None) -> str:
    """Returns the experiment id, creating the experiment (with its artifact root) if needed."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (
        Path(artifact_location).resolve().as_uri()
        if artifact_location and "://" not in artifact_location
        else artifact_location
    )
    # An empty location means "the tracking server's default artifact store".
    return mlflow.create_experiment(name, artifact_location=location or None)


def log_and_register(
    pipeline,
    example_input: pd.DataFrame,
    example_scores,
    model_name: str,
    artifact_name: str = "model",
) -> RegisteredModel:
    """Logs the fitted pipeline in the active run and registers it as a new model version.

    The signature is inferred from raw input rows and their churn probabilities, and the input
    example is kept with the model, so anyone can see exactly what the model expects.

    Args:
        pipeline: Fitted preprocessing + model pipeline.
        example_input: A few raw input rows (model-input form).
        example_scores: The pipeline's probabilities for those rows.
        model_name: Registered model name.
        artifact_name: Name of the logged model inside the run.

    Returns:
        The registered version, its artefact digest recorded (``mlplatform.artifact_sha256``).
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register needs an active MLflow run")
    with warnings.catch_warnings():
        # int64 inputs are deliberate (non-nullable by spec), so MLflow's hint does not apply.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        signature = infer_signature(example_input, example_scores)
    info = mlflow.sklearn.log_model(
        pipeline,
        name=artifact_name,
        signature=signature,
        input_example=example_input,
        pyfunc_predict_fn="predict_proba",
        registered_model_name=model_name,
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        # Exact versions of what the pipeline needs (MLflow's requirements.txt and
        # python_env.yaml, with this interpreter's version): serving must match training.
        pip_requirements=pinned_requirements(),
        # The feature code the pickled pipeline refers to, so the artefact loads (and rolls
        # back) with the code it was trained with, also where mlplatform is not installed.
        code_paths=[str(Path(__file__).resolve().parents[1])],
    )
    from mlplatform.ml.integrity import record_artifact_digest

    version = str(info.registered_model_version)
    # Serving and evaluation load a version only if its artefacts still hash to this digest.
    record_artifact_digest(MlflowClient(), model_name, version)
    return RegisteredModel(
        name=model_name,
        version=version,
        run_id=run.info.run_id,
        model_uri=f"models:/{model_name}/{version}",
    )


def version_for_alias(client: MlflowClient, model_name: str, alias: str) -> str | None:
    """The version (as a string) an alias points at, or None when the alias or model is absent."""
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def promote_to_champion(client: MlflowClient, model_name: str, version: str) -> str | None:
    """Makes ``version`` the champion and keeps the old champion as ``previous``.

    ``previous`` is moved before ``champion`` so there is never a moment without a champion,
    and the move is recorded first (:mod:`mlplatform.ml.alias_moves`): one interrupted between
    the two is finished by whoever moves aliases next. A move left pending by an earlier
    writer is finished before this one starts.

    Args:
        client: MLflow client.
        model_name: Registered model name.
        version: The version to promote.

    Returns:
        The version that was champion before, or None (also when it is the champion already).
    """
    from mlplatform.ml.alias_moves import PROMOTE, AliasMove, finish_alias_move, move_aliases

    finish_alias_move(client, model_name)
    current = version_for_alias(client, model_name, CHAMPION)
    if current == str(version):
        return None
    moves = [(CHAMPION, current, str(version))]
    if current is not None:
        moves.insert(0, (PREVIOUS, version_for_alias(client, model_name, PREVIOUS), current))
    move_aliases(client, model_name, AliasMove(PROMOTE, tuple(moves)))
    return current


def load_pipeline(model_name: str, alias_or_version: str):
    """Loads a registered pipeline as a scikit-learn object (keeps predict_proba).

    The artefacts are checked against the digest recorded at registration first.

    Raises:
        ArtifactIntegrityError: The version's artefacts changed or have no recorded digest.
    """
    from mlplatform.ml.integrity import verify_model_uri

    reference = (
        f"@{alias_or_version}" if not str(alias_or_version).isdigit() else f"/{alias_or_version}"
    )
    local = verify_model_uri(MlflowClient(), f"models:/{model_name}{reference}")
    return mlflow.sklearn.load_model(local)
