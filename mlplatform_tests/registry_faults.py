"""Shared by the fault tests: a small real (SQLite) registry, MLflow's process-global URIs put
back after a test that moved them, and errors built the way MLflow's SQL stores raise them."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pytest
import sqlalchemy
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils
from sklearn.linear_model import LogisticRegression

# What MLflowResource.client() and mlflow.set_*_uri change for the whole process.
GLOBAL_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")


@contextmanager
def restored_mlflow_globals():
    """Puts MLflow's tracking and registry URIs, and the variables they export, back on exit."""
    saved_env = {key: os.environ.get(key) for key in GLOBAL_VARIABLES}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def mlflow_pointed_at(uri: str):
    """MLflow's process-global URIs, and the variables they export, at ``uri`` until exit."""
    with restored_mlflow_globals(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield


def build_registry(root: Path, model_name: str, versions: int) -> tuple[Path, str]:
    """A SQLite registry under ``root`` with ``versions`` versions of a tiny model.

    Returns:
        The database file and the id of the experiment the versions were logged in.
    """
    uri = f"sqlite:///{root}/mlflow.db"
    with mlflow_pointed_at(uri):
        experiment = mlflow.create_experiment(model_name, (root / "artifacts").as_uri())
        x, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
        for _ in range(versions):
            with mlflow.start_run(experiment_id=experiment):
                mlflow.sklearn.log_model(
                    LogisticRegression().fit(x, y),
                    name="model",
                    registered_model_name=model_name,
                    pip_requirements=["scikit-learn"],  # no requirement inference: fast
                )
    return root / "mlflow.db", experiment


def sql_store_failure(driver_error: BaseException) -> MlflowException:
    """MLflow's SQL stores: MlflowException from SQLAlchemy's OperationalError from the driver."""
    try:
        try:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, driver_error) from driver_error
        except sqlalchemy.exc.OperationalError as exc:
            raise MlflowException(str(exc), error_code=TEMPORARILY_UNAVAILABLE) from exc
    except MlflowException as wrapped:
        return wrapped


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Registry writes a deploy, rollback or canary step makes to a model.
WRITES = (
    "set_registered_model_alias",
    "delete_registered_model_alias",
    "set_registered_model_tag",
    "delete_registered_model_tag",
    "set_model_version_tag",
    "delete_model_version_tag",
)


class Killed(BaseException):
    """The process died at this write (BaseException: no ``except Exception`` runs)."""


class CrashingClient:
    """The registry client of a process that dies at its ``crash_at``-th write to a model.

    After every write that does happen, ``check`` runs (the invariants at every moment). Writes
    to other registered models (the leases) pass uncounted: the ``held`` block releases its
    lease on the way out, as expiry would after a real kill. ``crash_at=0`` only counts.
    """

    def __init__(self, client, model_name: str, crash_at: int, check: Callable[[], None]):
        self.client, self.model_name = client, model_name
        self.crash_at, self.check, self.writes = crash_at, check, 0

    def __getattr__(self, name):
        method = getattr(self.client, name)
        if name not in WRITES:
            return method

        def write(*args, **kwargs):
            if args[0] != self.model_name:
                return method(*args, **kwargs)
            self.writes += 1
            if self.writes == self.crash_at:
                raise Killed(f"killed at write {self.writes}: {name}{args[1:]}")
            result = method(*args, **kwargs)
            self.check()
            return result

        return write
