"""MLflow store unavailable (issue 7), on a real SQLite store locked by another connection:
bounded retries, then a clear failure naming the store, the operation and the attempts; never a
second version, nothing half-written (a tracking server stopped or failing:
``test_tracking_server_faults.py``)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sqlalchemy
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from mlplatform.deployment.rollback import roll_back
from mlplatform.ml.alias_moves import MOVE_TAG
from mlplatform.ml.registry import CHAMPION, PREVIOUS, log_and_register, promote_to_champion
from mlplatform.ml.retry import RetryPolicy, StoreUnavailableError
from mlplatform.ml.store_calls import (
    RegistrationTookEffectError,
    RetryingClient,
    retry_registration,
)
from mlplatform_tests.registry_faults import (
    build_registry,
    sql_store_failure,
)

pytestmark = pytest.mark.fault

NAME = "faults"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A registry with versions 1 and 2 of a tiny model and its experiment, built once."""
    return build_registry(tmp_path_factory.mktemp("store"), NAME, versions=2)


@dataclass(frozen=True)
class Store:
    db: Path
    uri: str
    experiment: str
    client: MlflowClient

    def versions(self) -> list[str]:
        found = self.client.search_model_versions(f"name = '{NAME}'")
        return [str(v) for v in sorted(int(v.version) for v in found)]

    def aliases(self) -> dict[str, str]:
        return {a: str(v) for a, v in self.client.get_registered_model(NAME).aliases.items()}

    def tags(self) -> dict[str, str]:
        return dict(self.client.get_registered_model(NAME).tags)


@pytest.fixture
def store(template, tmp_path, mlflow_globals) -> Store:
    """A private copy of the registry, the process's MLflow URIs pointing at it; v1 champion."""
    db, experiment = template
    shutil.copy(db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # Also opens both stores' engines now: MLflow retries building an engine by itself (about
    # 100 s) if the file is locked at the first call, which is not what these tests are about.
    promote_to_champion(client, NAME, "1")
    client.get_experiment(experiment)
    return Store(tmp_path / "mlflow.db", uri, experiment, client)


@pytest.fixture
def quick_locks():
    """MLflow waits 20 s for a SQLite lock on every call (PRAGMA busy_timeout = 20000); here
    0.1 s, so that each attempt against a locked file fails in a moment."""

    def shorten(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().lower().startswith("pragma busy_timeout"):
            return "PRAGMA busy_timeout = 100", parameters
        return statement, parameters

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", shorten, retval=True)
    yield
    sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", shorten)


class ExclusiveLock:
    """Another connection in an exclusive transaction (BEGIN EXCLUSIVE): nobody else may read
    or write the file until it is released."""

    def __init__(self, db: Path):
        self._connection = sqlite3.connect(db, isolation_level=None)
        self._connection.execute("BEGIN EXCLUSIVE")
        self.releases = 0

    def release(self, *_):
        if self._connection is not None:
            self._connection.execute("ROLLBACK")
            self._connection.close()
            self._connection = None
            self.releases += 1

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.release()


def tiny_pipeline():
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    model = LogisticRegression().fit(frame, [0, 0, 0, 1, 1, 1])
    example = frame.head(3)
    return model, example, model.predict_proba(example)


def test_a_store_locked_through_registration_fails_clearly_and_registers_nothing(
    store, quick_locks
):
    before, aliases = store.versions(), store.aliases()
    pipeline, example, scores = tiny_pipeline()
    sleeps = []
    with mlflow.start_run(experiment_id=store.experiment) as run:
        with ExclusiveLock(store.db), pytest.raises(StoreUnavailableError) as caught:
            retry_registration(
                lambda: log_and_register(pipeline, example, scores, NAME),
                client=store.client,
                model_name=NAME,
                run_id=run.info.run_id,
                store_uri=store.uri,
                policy=RetryPolicy(attempts=3, first_delay_seconds=0.2),
                sleep=sleeps.append,
            )
    message = str(caught.value)
    assert f"MLflow store {store.uri} unavailable: register a version of {NAME}" in message
    assert "failed 3 time(s)" in message and "database is locked" in message
    assert len(sleeps) == 2 and 0.1 < sleeps[0] <= 0.2 and 0.2 < sleeps[1] <= 0.4
    assert store.versions() == before
    assert store.aliases() == aliases


def test_registration_succeeds_once_when_the_lock_is_released_during_the_retries(
    store, quick_locks
):
    before = store.versions()
    pipeline, example, scores = tiny_pipeline()
    with mlflow.start_run(experiment_id=store.experiment) as run:
        with ExclusiveLock(store.db) as lock:
            registered = retry_registration(
                lambda: log_and_register(pipeline, example, scores, NAME),
                client=store.client,
                model_name=NAME,
                run_id=run.info.run_id,
                store_uri=store.uri,
                policy=RetryPolicy(attempts=3, first_delay_seconds=0.2),
                sleep=lock.release,  # the other writer commits during the first back-off
            )
    assert lock.releases == 1
    assert store.versions() == [*before, registered.version]
    assert store.client.get_model_version(NAME, registered.version).run_id == run.info.run_id


def test_a_registration_that_created_its_version_before_failing_is_not_repeated(store):
    before = store.versions()
    pipeline, example, scores = tiny_pipeline()
    attempts = []

    def register_then_meet_a_lock():
        # As if the digest tag written after the version met a locked store.
        attempts.append(log_and_register(pipeline, example, scores, NAME))
        raise sql_store_failure(sqlite3.OperationalError("database is locked"))

    with mlflow.start_run(experiment_id=store.experiment) as run:
        with pytest.raises(RegistrationTookEffectError, match="not retried") as caught:
            retry_registration(
                register_then_meet_a_lock,
                client=store.client,
                model_name=NAME,
                run_id=run.info.run_id,
                store_uri=store.uri,
                policy=RetryPolicy(attempts=3, first_delay_seconds=0.0),
                sleep=lambda _: None,
            )
    (registered,) = attempts
    assert store.versions() == [*before, registered.version]
    assert f"created v{registered.version} before a store call failed" in str(caught.value)


def _promote(client):
    promote_to_champion(client, NAME, "2")


def _roll_back(client):
    roll_back(client, NAME, by="ops", reason="store fault test")


@pytest.mark.parametrize("move", [_promote, _roll_back], ids=["promote", "rollback"])
def test_an_alias_move_on_a_locked_store_fails_clearly_and_moves_nothing(store, quick_locks, move):
    if move is _roll_back:
        promote_to_champion(store.client, NAME, "2")  # something to roll back to
    aliases, sleeps = store.aliases(), []
    client = RetryingClient(
        store.client, store_uri=store.uri, policy=RetryPolicy(3, 0.2), sleep=sleeps.append
    )
    with ExclusiveLock(store.db), pytest.raises(StoreUnavailableError) as caught:
        move(client)
    assert "get_registered_model('faults')" in str(caught.value)
    assert "failed 3 time(s)" in str(caught.value) and len(sleeps) == 2
    assert store.aliases() == aliases
    assert MOVE_TAG not in store.tags()


def test_an_alias_move_completes_when_the_lock_is_released_during_the_retries(store, quick_locks):
    with ExclusiveLock(store.db) as lock:
        client = RetryingClient(
            store.client, store_uri=store.uri, policy=RetryPolicy(3, 0.2), sleep=lock.release
        )
        promote_to_champion(client, NAME, "2")
    assert lock.releases == 1
    assert store.aliases() == {CHAMPION: "2", PREVIOUS: "1"}
    assert MOVE_TAG not in store.tags()
