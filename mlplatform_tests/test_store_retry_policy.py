"""Retry policy of MLflow store calls (issue 7), without a store: which failures had no effect
and are retried, which are ambiguous or permanent and raised at once; bounded attempts, the
back-off sequence, the final error; which client calls may be retried at all."""

from __future__ import annotations

import sqlite3

import pytest
import requests
import sqlalchemy
from mlflow.exceptions import MlflowException, RestException
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)

from mlplatform.ml.registry import CHAMPION
from mlplatform.ml.retry import (
    RetryPolicy,
    StoreUnavailableError,
    bound_mlflow_http_retries,
    call_with_retry,
    had_no_effect,
)
from mlplatform.ml.store_calls import RetryingClient
from mlplatform_tests.registry_faults import closed_port, sql_store_failure

pytestmark = pytest.mark.fault

NAME = "faults"


# --- what MLflow raises, built the way MLflow builds it ------------------------------------


def raised_while_handling(inner: BaseException) -> MlflowException:
    """MLflow's REST client: a new MlflowException raised while handling the transport error."""
    try:
        try:
            raise inner
        except type(inner) as exc:
            raise MlflowException(f"API request failed with exception {exc}") from None
    except MlflowException as wrapped:
        wrapped.__suppress_context__ = False  # MLflow raises without "from": context is kept
        return wrapped


def postgres_refused() -> BaseException:
    """The real psycopg2 error of connecting to a closed loopback port."""
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/x")
    try:
        engine.connect()
    except sqlalchemy.exc.OperationalError as exc:
        return exc.orig
    finally:
        engine.dispose()
    raise AssertionError("connected to a closed port")


def http_failure(reason: BaseException) -> MlflowException:
    wrapped = requests.exceptions.ConnectionError(MaxRetryError(None, "/api", reason))
    return raised_while_handling(wrapped)


def handled_then_failed() -> ValueError:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError:
            raise ValueError("a bug while handling it") from None
    except ValueError as exc:
        exc.__suppress_context__ = False
        return exc


NO_EFFECT = {
    "sqlite locked": lambda: sql_store_failure(sqlite3.OperationalError("database is locked")),
    "postgres refused": lambda: sql_store_failure(postgres_refused()),
    "postgres starting up": lambda: sql_store_failure(
        __import__("psycopg2").OperationalError("FATAL:  the database system is starting up")
    ),
    "http refused": lambda: http_failure(
        NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    ),
    "http 503": lambda: raised_while_handling(
        requests.exceptions.RetryError(
            MaxRetryError(None, "/api", ResponseError("too many 503 error responses"))
        )
    ),
    "http 429": lambda: raised_while_handling(
        requests.exceptions.RetryError(
            MaxRetryError(None, "/api", ResponseError("too many 429 error responses"))
        )
    ),
    "server says unavailable": lambda: RestException(
        {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}
    ),
}
AMBIGUOUS_OR_PERMANENT = {
    "sqlite disk error": lambda: sql_store_failure(sqlite3.OperationalError("disk I/O error")),
    "postgres dropped mid-transaction": lambda: sql_store_failure(
        __import__("psycopg2").OperationalError("server closed the connection unexpectedly")
    ),
    "http read timeout": lambda: http_failure(ReadTimeoutError(None, "/api", "Read timed out.")),
    "http connection aborted after sending": lambda: raised_while_handling(
        requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", OSError(104)))
    ),
    "requests read timeout": lambda: raised_while_handling(
        requests.exceptions.ReadTimeout("read timed out")
    ),
    "http 500": lambda: raised_while_handling(
        requests.exceptions.RetryError(
            MaxRetryError(None, "/api", ResponseError("too many 500 error responses"))
        )
    ),
    "server says exists": lambda: RestException(
        {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "v1 exists"}
    ),
    "bug while handling a refusal": handled_then_failed,
}


@pytest.mark.parametrize("case", sorted(NO_EFFECT))
def test_failures_that_had_no_effect_are_retryable(case):
    assert had_no_effect(NO_EFFECT[case]())


@pytest.mark.parametrize("case", sorted(AMBIGUOUS_OR_PERMANENT))
def test_ambiguous_and_permanent_failures_are_not(case):
    assert not had_no_effect(AMBIGUOUS_OR_PERMANENT[case]())


def test_backoff_doubles_from_the_first_delay_is_capped_and_jitters_only_downwards():
    policy = RetryPolicy(attempts=6, first_delay_seconds=0.5, max_delay_seconds=3.0)
    assert [policy.nominal_delay(r) for r in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.max_total_delay_seconds == 9.5
    assert policy.delay(3, draw=0.0) == 2.0
    assert 1.0 < policy.delay(3, draw=0.999) < 2.0
    assert RetryPolicy().max_total_delay_seconds == 15.0  # the documented default bound


@pytest.mark.parametrize("attempts, seconds", [("0", "1"), ("five", "1"), ("3", "-1")])
def test_bad_retry_settings_name_the_variables(attempts, seconds):
    with pytest.raises(ValueError, match="MLPLATFORM_MLFLOW_RETRIES=.*RETRY_SECONDS="):
        RetryPolicy.from_settings(attempts, seconds)


def test_retries_stop_after_the_attempts_with_an_error_naming_store_operation_and_attempts():
    calls, sleeps = [], []

    def locked():
        calls.append(1)
        # SQLAlchemy's message quotes the URL; the error names the store without its password.
        locked = sqlite3.OperationalError("database is locked (postgresql://mlflow:s3cret@db)")
        raise sql_store_failure(locked)

    with pytest.raises(StoreUnavailableError) as caught:
        call_with_retry(
            "set alias champion",
            locked,
            store_uri="postgresql://mlflow:s3cret@db:5432/mlflow",
            policy=RetryPolicy(attempts=4, first_delay_seconds=1.0),
            sleep=sleeps.append,
            draw=lambda: 0.0,
        )
    assert len(calls) == 4
    assert sleeps == [1.0, 2.0, 4.0]
    message = str(caught.value)
    assert message.startswith("MLflow store postgresql://mlflow:***@db:5432/mlflow unavailable")
    assert "set alias champion failed 4 time(s)" in message
    assert "database is locked" in message and "s3cret" not in message
    assert isinstance(caught.value.__cause__, MlflowException)


def test_a_call_that_recovers_returns_its_value_after_as_many_sleeps_as_failures():
    outcomes = iter([NO_EFFECT["http refused"](), NO_EFFECT["http 503"](), "done"])
    sleeps = []

    def call():
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    result = call_with_retry(
        "get", call, store_uri="http://x", policy=RetryPolicy(5, 0.1), sleep=sleeps.append
    )
    assert result == "done" and len(sleeps) == 2


def test_an_ambiguous_failure_is_raised_at_once_without_a_retry():
    calls, sleeps = [], []

    def create_version():
        calls.append(1)
        raise AMBIGUOUS_OR_PERMANENT["http read timeout"]()

    with pytest.raises(MlflowException, match="API request failed"):
        call_with_retry(
            "create",
            create_version,
            store_uri="http://x",
            policy=RetryPolicy(),
            sleep=sleeps.append,
        )
    assert calls == [1] and sleeps == []


class FlakyClient:
    """Fails the first ``failures`` calls of every method with a locked store."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, []

    def _call(self, name):
        self.calls.append(name)
        if self.calls.count(name) <= self.failures:
            raise sql_store_failure(sqlite3.OperationalError("database is locked"))
        return name

    def set_registered_model_alias(self, *args):
        return self._call("set_registered_model_alias")

    def create_model_version(self, *args):
        return self._call("create_model_version")


def test_the_retrying_client_retries_idempotent_calls_only():
    flaky = FlakyClient(failures=2)
    client = RetryingClient(flaky, store_uri="sqlite:///x.db", policy=RetryPolicy(3, 0.1), sleep=id)
    assert client.set_registered_model_alias(NAME, CHAMPION, "2") == "set_registered_model_alias"
    assert flaky.calls.count("set_registered_model_alias") == 3
    # Creating calls pass through unretried: only retry_registration may repeat a registration.
    with pytest.raises(MlflowException, match="database is locked"):
        client.create_model_version(NAME, "source")
    assert flaky.calls.count("create_model_version") == 1


def test_mlflow_http_retries_are_switched_off_for_a_tracking_server_only():
    environ = {}
    bound_mlflow_http_retries("sqlite:///x.db", environ)
    assert environ == {}
    bound_mlflow_http_retries("https://mlflow.example:5000", environ)
    assert environ == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
