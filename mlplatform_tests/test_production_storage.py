"""The full lifecycle on production storage: the Dagster instance on PostgreSQL
(dagster-postgres) and MLflow with a PostgreSQL backend store, on the server at 127.0.0.1:5432.

Each test creates its own uniquely named databases and drops them afterwards, even when it
fails. A server that is down fails these tests with a message saying so; it never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from mlflow import MlflowClient
from psycopg2 import sql

from mlplatform.lifecycle import (
    DAGSTER_PG_URL_VAR,
    check_database_urls,
    configured_storage,
    ensure_dagster_home,
)
from mlplatform.ml.registry import CHAMPION, version_for_alias
from mlplatform_tests.conftest import Platform
from mlplatform_tests.test_end_to_end import run_cli_lifecycle

pytestmark = pytest.mark.e2e
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
MODEL_NAME = "mlplatform-synthetic_churn"


def admin_connection(port: int = PG_PORT):
    """An autocommit connection to the server's ``postgres`` database (CREATE/DROP DATABASE).

    Fails the calling test, naming the server and how to start it, when it is not reachable.
    """
    try:
        connection = psycopg2.connect(
            host=PG_HOST, port=port, user=PG_USER, dbname="postgres", connect_timeout=5
        )
    except psycopg2.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_HOST}:{port} as user {PG_USER!r}: "
            f"{str(exc).strip()}. The production-storage tests need it; start it with "
            "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'",
            pytrace=False,
        )
    connection.autocommit = True
    return connection


@contextmanager
def temporary_databases(*kinds: str) -> Iterator[dict[str, str]]:
    """Fresh, uniquely named databases, one per kind, as ``{kind: database name}``.

    They are dropped on exit, whatever happened inside: connections still open to them (an
    MLflow engine's pool, a killed process's session) are terminated first.
    """
    suffix = uuid.uuid4().hex[:12]
    names = {kind: f"mlplatform_test_{kind}_{suffix}" for kind in kinds}
    admin = admin_connection()
    try:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield names
    finally:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.close()


def database_url(name: str) -> str:
    """SQLAlchemy URL with the pinned driver (a bare postgresql:// would ask for psycopg 3)."""
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def query(database: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database) as connection:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
    connection.close()
    return rows


def existing_databases() -> set[str]:
    return {name for (name,) in query("postgres", "SELECT datname FROM pg_database")}


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """A dagster and an mlflow database of this test's own."""
    with temporary_databases("dagster", "mlflow") as names:
        yield names


@pytest.fixture
def postgres_platform(platform, databases, monkeypatch) -> Platform:
    """The isolated platform with its Dagster instance and MLflow store on PostgreSQL."""
    mlflow_url = database_url(databases["mlflow"])
    settings = {
        DAGSTER_PG_URL_VAR: database_url(databases["dagster"]),
        "MLFLOW_TRACKING_URI": mlflow_url,
        # An earlier in-process test's mlflow.set_registry_uri exported its own registry.
        "MLFLOW_REGISTRY_URI": mlflow_url,
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    # MLflowResource.client() and the champion check set the global URIs: restore them after.
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    monkeypatch.setattr("mlflow.tracking._model_registry.utils._registry_uri", None)
    return Platform(platform.root, {**platform.env, **settings})


@pytest.mark.production_storage
def test_the_cli_lifecycle_keeps_runs_events_and_the_registry_in_postgres(
    postgres_platform, databases
):
    home = Path(postgres_platform.env["DAGSTER_HOME"])
    # No storage argument: the setting (MLPLATFORM_DAGSTER_PG_URL) selects PostgreSQL.
    ensure_dagster_home(home)
    config = (home / "dagster.yaml").read_text()
    assert configured_storage(home / "dagster.yaml") == "postgres"
    assert f"env: {DAGSTER_PG_URL_VAR}" in config
    assert databases["dagster"] not in config  # the URL stays in the environment

    run_cli_lifecycle(postgres_platform, {**os.environ, **postgres_platform.env})

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    dagster_db = databases["dagster"]
    # 4 backfilled days, the whole graph for one day, the retrain path.
    assert query(dagster_db, "SELECT status, count(*) FROM runs GROUP BY status") == [
        ("SUCCESS", 6)
    ]
    deployed = query(
        dagster_db,
        "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        " AND asset_key = %s",
        (dg.AssetKey("deployed_model").to_string(),),
    )
    assert deployed == [(2,)]
    mlflow_db = databases["mlflow"]
    assert query(mlflow_db, "SELECT name FROM registered_models") == [(MODEL_NAME,)]
    (champion,) = query(
        mlflow_db,
        "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = %s",
        (MODEL_NAME, CHAMPION),
    )
    client = MlflowClient(postgres_platform.tracking_uri, postgres_platform.tracking_uri)
    assert str(champion[0]) == version_for_alias(client, MODEL_NAME, CHAMPION)
    (trained,) = query(mlflow_db, "SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'")
    assert trained[0] >= 2
    # Nothing fell back to SQLite: no database file anywhere in the platform's directories.
    assert not sorted(postgres_platform.root.rglob("*.db"))


def test_an_unreachable_server_fails_the_test_clearly_instead_of_skipping():
    with pytest.raises(pytest.fail.Exception, match=r"PostgreSQL is not reachable at 127.0.0.1:1 "):
        admin_connection(port=1)


def test_temporary_databases_are_dropped_after_a_failure_with_connections_left_open():
    with pytest.raises(RuntimeError, match="inside the block"):
        with temporary_databases("scratch") as names:
            leftover = psycopg2.connect(
                host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=names["scratch"]
            )
            assert names["scratch"] in existing_databases()
            raise RuntimeError("inside the block")
    assert names["scratch"] not in existing_databases()
    assert leftover.closed or _is_terminated(leftover)
    leftover.close()


def _is_terminated(connection) -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except psycopg2.OperationalError:
        return True
    return False


def test_a_postgres_setting_never_silently_keeps_an_embedded_instance(tmp_path, monkeypatch):
    url = "postgresql://dagster:s3cret-pw@db.internal:5432/dagster"
    monkeypatch.delenv(DAGSTER_PG_URL_VAR, raising=False)
    embedded = tmp_path / "embedded"
    ensure_dagster_home(embedded)
    assert configured_storage(embedded / "dagster.yaml") == "sqlite"
    monkeypatch.setenv(DAGSTER_PG_URL_VAR, url)
    with pytest.raises(
        ValueError, match=rf"configures sqlite storage, but postgres .*{DAGSTER_PG_URL_VAR} is set"
    ):
        ensure_dagster_home(embedded)
    production = tmp_path / "production"
    ensure_dagster_home(production)
    assert configured_storage(production / "dagster.yaml") == "postgres"
    assert "s3cret-pw" not in (production / "dagster.yaml").read_text()
    with pytest.raises(
        ValueError, match=r"configures postgres storage, but sqlite .*storage='sqlite'"
    ):
        ensure_dagster_home(production, storage="sqlite")
    with pytest.raises(ValueError, match=r"unknown instance storage 'mysql'"):
        ensure_dagster_home(tmp_path / "other", storage="mysql")


@pytest.mark.parametrize("variable", [DAGSTER_PG_URL_VAR, "MLFLOW_TRACKING_URI"])
def test_a_bare_postgresql_url_is_refused_naming_the_variable_not_the_password(variable):
    environ = {variable: "postgresql://mlflow:s3cret-pw@db.internal:5432/mlflow"}
    with pytest.raises(ValueError, match=rf"^{variable} starts with 'postgresql://'") as error:
        check_database_urls(environ)
    assert "s3cret-pw" not in str(error.value)
    check_database_urls({variable: database_url("mlflow")})
