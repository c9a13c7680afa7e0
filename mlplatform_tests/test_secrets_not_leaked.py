"""No secret reaches logs, run records, asset metadata, error messages or HTTP answers.

Secret-bearing settings: the serving admin token, and an MLflow tracking URI with a password
(a PostgreSQL backend store, which is allowed, and an http URL with credentials, which is
refused before MLflow could repeat it). Each test drives paths that log or raise with them,
then searches everything captured: log records (caplog), the process's stdout/stderr (capfd),
exceptions with their whole chain, HTTP answers, Dagster's run events and every file of the
temporary instance (run and event storage, compute logs).
"""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from mlplatform.paths import resolve_tracking_uri
from mlplatform.redaction import redact_text, redact_url, refuse_http_credentials
from mlplatform.serving.app import ServingSettings, create_app
from mlplatform_tests.conftest import _lifecycle, isolated_platform, load_days, write_spec

pytestmark = pytest.mark.security

PASSWORD = "s3cr3t-pw"
ADMIN_TOKEN = "admin-token-never-logged-0123456789"
PRESENTED = "guessed-token-never-logged-9876543210"
PG_URI = f"postgresql+psycopg2://mlflow:{PASSWORD}@127.0.0.1:1/mlflow"  # nothing listens on 1
HTTP_URI = f"http://mlflow:{PASSWORD}@127.0.0.1:1"
SECRETS = (PASSWORD, ADMIN_TOKEN, PRESENTED)


def _assert_clean(where: str, text: str) -> None:
    for number, secret in enumerate(SECRETS):
        # Not a bare assert: pytest would print the secret while explaining the failure.
        if secret in text:
            pytest.fail(f"secret #{number} leaked into {where}", pytrace=False)


def _exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


@pytest.fixture
def fast_failures(monkeypatch):
    """One attempt per store call: MLflow's own engine and HTTP retries would take minutes."""
    import mlflow.store.db.utils

    monkeypatch.setattr(mlflow.store.db.utils, "MAX_RETRY_COUNT", 1)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    # The app sets MLflow's global URIs and their variables: restored at teardown.
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.setenv(variable, os.environ.get(variable, "unset"))
        if variable == "MLFLOW_REGISTRY_URI":
            monkeypatch.delenv(variable)
    yield
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


# --- the helper ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        (PG_URI, "postgresql+psycopg2://mlflow:***@127.0.0.1:1/mlflow"),
        (HTTP_URI, "http://mlflow:***@127.0.0.1:1"),
        ("https://u:p%40ss@host/x?y=1", "https://u:***@host/x?y=1"),
        ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),  # unencoded @: all masked
        ("postgresql://u:@db/x", "postgresql://u:***@db/x"),
        ("http://token-as-user@host", "http://token-as-user@host"),  # no password: unchanged
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        (
            "postgresql://db/x?user=u&password=pw&sslmode=require",
            "postgresql://db/x?user=u&password=***&sslmode=require",
        ),
        (
            "s3://bucket/path?X-Amz-Signature=abc&X-Amz-Credential=def",
            "s3://bucket/path?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_masks_passwords_and_secret_query_values(url, expected):
    assert redact_url(url) == expected
    assert redact_url(expected) == expected


def test_redact_text_masks_every_url_in_a_message():
    message = (
        f"API request to {HTTP_URI}/api/2.0/x failed; fallback '{PG_URI}' failed too "
        "(see https://sqlalche.me/e/21/e3q8)"
    )
    redacted = redact_text(message)
    assert PASSWORD not in redacted
    assert redacted.count("mlflow:***@127.0.0.1:1") == 2
    assert "https://sqlalche.me/e/21/e3q8" in redacted


def test_an_http_tracking_uri_with_credentials_is_refused_without_echoing_them():
    for uri in (HTTP_URI, f"HTTPS://mlflow:{PASSWORD}@mlflow.example"):
        with pytest.raises(ValueError, match=r"MLFLOW_TRACKING_URI=\S+:\*\*\*@") as error:
            resolve_tracking_uri(uri)
        _assert_clean("the refusal", str(error.value))
        assert "MLFLOW_TRACKING_PASSWORD" in str(error.value)
    with pytest.raises(ValueError, match="credentials"):
        refuse_http_credentials("http://token@host", "X", instead="Y")
    # Database URLs keep their password (SQLAlchemy masks it); plain http URLs are fine.
    assert resolve_tracking_uri(PG_URI) == PG_URI
    assert resolve_tracking_uri("http://mlflow:5000") == "http://mlflow:5000"


# --- serving -------------------------------------------------------------------------------


def test_serving_start_up_failed_admin_auth_and_registry_errors_leak_nothing(
    fast_failures, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    answers = []
    # A database store that does not answer: the app cannot even build its registry client.
    settings = ServingSettings(tracking_uri=PG_URI, model_name="m", admin_token=ADMIN_TOKEN)
    with pytest.raises(Exception) as error:  # noqa: B017 - whatever SQLAlchemy raises
        create_app(settings)
    _assert_clean("the start-up error", _exception_text(error.value))
    assert "127.0.0.1" in str(error.value)  # it did try the store
    # An HTTP store given directly to the app (the CLI refuses this URI): our own messages
    # about the failing registry must mask what MLflow's errors quote.
    settings = ServingSettings(tracking_uri=HTTP_URI, model_name="m", admin_token=ADMIN_TOKEN)
    _assert_clean("the settings' repr", repr(settings))
    with TestClient(create_app(settings)) as client:
        answers.append(client.get("/health"))
        assert answers[-1].status_code == 503
        answers.append(client.post("/admin/reload", headers={"Authorization": PRESENTED}))
        answers.append(
            client.post("/admin/reload", headers={"Authorization": f"Bearer {PRESENTED}"})
        )
        assert [a.status_code for a in answers[1:]] == [401, 401]
        answers.append(
            client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        )
        assert answers[-1].status_code == 503
        assert "mlflow:***@127.0.0.1:1" in answers[-1].json()["detail"]
        answers.append(client.get("/metrics"))
    for number, answer in enumerate(answers):
        _assert_clean(f"answer {number}", f"{answer.headers}\n{answer.text}")
    assert "registry read for m failed" in caplog.text
    assert "refused: wrong token" in caplog.text
    _assert_clean("the log records", caplog.text)
    for record in caplog.records:
        if record.exc_info:
            _assert_clean("a logged exception", _exception_text(record.exc_info[1]))
    out, err = capfd.readouterr()
    _assert_clean("stdout", out)
    _assert_clean("stderr", err)


# --- Dagster -------------------------------------------------------------------------------


@pytest.fixture
def one_validated_day(tmp_path, monkeypatch):
    """A temporary instance with one validated day, on a 1-day training window."""
    platform = isolated_platform(tmp_path, write_spec(tmp_path, top={"training_window_days": 1}))
    for key, value in platform.env.items():
        monkeypatch.setenv(key, value)
    with dg.instance_for_test() as instance:
        assert all(run.success for run in load_days(platform, instance, ["2026-03-01"]))
        yield platform, instance


def _train(platform, instance):
    from mlplatform.defs.training.resources import MLflowResource

    resources = platform.resources()
    # As in the definitions: the URI comes from the environment, so Dagster stores only the
    # variable's name with the run.
    resources["mlflow_tracking"] = MLflowResource(
        tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
        artifact_root=platform.env["MLFLOW_ARTIFACT_ROOT"],
        retries="1",
    )
    return dg.materialize(
        _lifecycle(),
        selection=dg.AssetSelection.assets("features", "challenger_model"),
        instance=instance,
        resources=resources,
        run_config={"ops": {"features": {"config": {"max_staleness_days": None}}}},
        raise_on_error=False,
    )


def _failure_message(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "challenger_model"
    return failure.step_failure_data.error.to_string()


def test_a_failing_materialisation_records_no_password(
    one_validated_day, fast_failures, monkeypatch, caplog, capfd
):
    platform, instance = one_validated_day
    caplog.set_level(logging.DEBUG)
    messages = {}
    for name, uri in (("postgres", PG_URI), ("http", HTTP_URI)):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        result = _train(platform, instance)
        assert not result.success
        messages[name] = _failure_message(result)
        for event in result.all_events:
            _assert_clean(f"{name} run event {event.event_type_value}", str(event))
        run = instance.get_run_by_id(result.run_id)
        _assert_clean(f"{name} run record", f"{run.run_config} {run.tags}")
        records = instance.all_logs(result.run_id)
        _assert_clean(f"{name} event log", "\n".join(str(r) for r in records))
    # Each failed where expected: the database did not answer; the http URI was refused.
    assert "127.0.0.1" in messages["postgres"] and "port 1" in messages["postgres"]
    assert "MLFLOW_TRACKING_URI=http://mlflow:***@127.0.0.1:1" in messages["http"]
    # Everything the instance wrote: run and event storage, compute logs of the steps.
    files = [p for p in Path(instance.root_directory).rglob("*") if p.is_file()]
    assert any("compute_logs" in p.parts for p in files)
    for path in files:
        data = path.read_bytes()
        _assert_clean(str(path), data.decode("utf-8", "replace"))
    _assert_clean("the log records", caplog.text)
    out, err = capfd.readouterr()
    _assert_clean("stdout", out)
    _assert_clean("stderr", err)
