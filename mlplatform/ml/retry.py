"""Bounded retries of MLflow store calls, only where a failed call certainly had no effect.

Retried, because the store never did anything: the connection was refused or timed out while
connecting (tracking server or PostgreSQL), SQLite said "database is locked" (its transaction
was rolled back), PostgreSQL refused the connection (starting up, too many clients), or a
tracking server answered 503 or 429. Anything else is raised at once, above all an ambiguous
failure such as a read timeout after the request was sent: the store may have carried it out,
and creating a model version twice registers two versions.

Worst-case time of one call with ``attempts`` A and first back-off B (doubling, jittered
downwards, each at most 30 s): the back-off adds at most B * (2**(A-1) - 1) (capped), plus the
attempts themselves:

* HTTP tracking server: :func:`bound_mlflow_http_retries` switches MLflow's own HTTP retries
  off (7 by default, exponential, and blind on POST after a read error), so an attempt is one
  request: a refused connection fails at once, a connect timeout after
  ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (120 s by default). A read timeout ends the call.
* SQLite: MLflow itself waits up to 20 s for a lock (``PRAGMA busy_timeout``) per attempt.
* PostgreSQL: a refused connection fails at once, except on a process's first call, where
  MLflow builds its engine with retries of its own (10 tries, about 100 s).

With the defaults (5 attempts, 1 s) the back-off is at most 1 + 2 + 4 + 8 = 15 s, so one call
gives up after about 15 s against a stopped tracking server, 5 x 20 + 15 = 115 s against a
locked SQLite file, 5 x 120 + 15 = 615 s against a server whose connections time out, and
(first call of a process only) 5 x 100 + 15 s against a stopped PostgreSQL.

Where the retries apply: :mod:`mlplatform.ml.store_calls`.
"""

from __future__ import annotations

import os
import random as random_module
import re
import sqlite3
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from mlflow.exceptions import RestException

from mlplatform.redaction import redact_text, redact_url

T = TypeVar("T")

DEFAULT_ATTEMPTS = 5
DEFAULT_FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
# Each delay is drawn from (1 - JITTER, 1] times its nominal value: concurrent clients spread
# out, and the nominal sequence stays the upper bound.
JITTER = 0.5

_PG_CONNECT_REFUSALS = (
    "connection refused",
    "could not connect",
    "the database system is starting up",
    "too many clients",
)
_RETRIED_STATUS = re.compile(r"too many (429|503) error responses")
# Error codes a tracking server itself returns for "not done, try again" (HTTP 503 and 429).
_RETRIED_SERVER_CODES = ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED")


class StoreUnavailableError(RuntimeError):
    """The MLflow store kept failing in ways that had no effect, and the attempts ran out."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how far apart, a store call is attempted.

    Attributes:
        attempts: Calls at most (1 = no retry).
        first_delay_seconds: Back-off before the second attempt; it doubles after that.
        max_delay_seconds: Upper bound of one back-off.
    """

    attempts: int = DEFAULT_ATTEMPTS
    first_delay_seconds: float = DEFAULT_FIRST_DELAY_SECONDS
    max_delay_seconds: float = MAX_DELAY_SECONDS

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not 0 <= self.first_delay_seconds <= self.max_delay_seconds:
            raise ValueError(
                f"first_delay_seconds must be in [0, {self.max_delay_seconds}], "
                f"got {self.first_delay_seconds}"
            )

    @classmethod
    def from_settings(cls, attempts: str, first_delay_seconds: str) -> RetryPolicy:
        """The policy from its environment settings, with an error naming them if they are bad.

        Raises:
            ValueError: Not a number, or out of range.
        """
        try:
            return cls(int(attempts), float(first_delay_seconds))
        except ValueError as exc:
            raise ValueError(
                f"MLflow retry settings MLPLATFORM_MLFLOW_RETRIES={attempts!r}, "
                f"MLPLATFORM_MLFLOW_RETRY_SECONDS={first_delay_seconds!r}: {exc}"
            ) from exc

    def nominal_delay(self, retry: int) -> float:
        """Back-off before retry number ``retry`` (1-based), before jitter."""
        return min(self.max_delay_seconds, self.first_delay_seconds * 2 ** (retry - 1))

    def delay(self, retry: int, draw: float) -> float:
        """Jittered back-off: ``draw`` in [0, 1) takes up to JITTER off the nominal delay."""
        return self.nominal_delay(retry) * (1.0 - JITTER * draw)

    @property
    def max_total_delay_seconds(self) -> float:
        """Upper bound of all back-off of one call (the attempts' own time not included)."""
        return sum(self.nominal_delay(retry) for retry in range(1, self.attempts))


def _causes(exc: BaseException):
    """The exception and what it wraps, outermost first (one path, no cycles)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPI wrappers
        first_arg = current.args[0] if current.args else None  # requests' wrappers
        if current.__cause__ is not None:
            current = current.__cause__
        elif isinstance(reason, BaseException):
            current = reason
        elif isinstance(orig, BaseException):
            current = orig
        elif isinstance(first_arg, BaseException):
            current = first_arg
        elif not current.__suppress_context__ and _raised_while_handling(current):
            current = current.__context__
        else:
            current = None


def _raised_while_handling(exc: BaseException) -> bool:
    # MLflow's REST client re-raises transport errors as MlflowException without "from"; only
    # there is the implicit context the cause (elsewhere it may be an unrelated handled error).
    return type(exc).__module__ == "mlflow.exceptions" and not isinstance(exc, RestException)


def had_no_effect(exc: BaseException) -> bool:
    """Whether a failed store call certainly did nothing, so calling it again is safe.

    Args:
        exc: What the call raised (MLflow's wrappers are looked through).

    Returns:
        True for a refused or timed-out connection attempt, SQLite "database is locked", a
        PostgreSQL refusal to connect, an HTTP 503/429; False for anything else, including
        read timeouts and dropped connections after the request was sent.
    """
    import urllib3.exceptions
    from requests.exceptions import ConnectTimeout

    for cause in _causes(exc):
        text = str(cause).lower()
        if isinstance(
            cause, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError)
        ):
            return False  # sent, then lost: the store may have done it
        if isinstance(cause, RestException):
            return cause.error_code in _RETRIED_SERVER_CODES
        if isinstance(cause, sqlite3.OperationalError):
            return "database is locked" in text
        if type(cause).__name__ == "OperationalError" and type(cause).__module__.startswith(
            "psycopg"
        ):
            return any(marker in text for marker in _PG_CONNECT_REFUSALS)
        if isinstance(
            cause, (urllib3.exceptions.ConnectTimeoutError, ConnectTimeout, ConnectionRefusedError)
        ):
            return True  # NewConnectionError is a ConnectTimeoutError: nothing was sent
        if isinstance(cause, urllib3.exceptions.ResponseError):
            return bool(_RETRIED_STATUS.search(text))
    return False


def _summary(exc: BaseException) -> str:
    """The error's type and first line, and its root cause's (MLflow's messages are long)."""

    def line(error: BaseException, limit: int) -> str:
        first = (str(error).strip().splitlines() or [""])[0]
        return f"{type(error).__name__}: {redact_text(first)[:limit]}"

    root = list(_causes(exc))[-1]
    return line(exc, 300) + ("" if root is exc else f" (root cause {line(root, 200)})")


def call_with_retry(
    operation: str,
    call: Callable[[], T],
    *,
    store_uri: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random_module.random,
    before_retry: Callable[[], None] | None = None,
) -> T:
    """Calls ``call``, again after a back-off while it fails in a way that had no effect.

    Args:
        operation: What the call does, for the error message (e.g. "set alias champion").
        call: The store call.
        store_uri: The store, for the error message (its password masked, as in the error).
        policy: Attempts and back-off.
        sleep: Waits between attempts (tests pass a recorder).
        draw: Uniform [0, 1) numbers for the jitter.
        before_retry: Runs before each retry (not before the first attempt): a check that
            raises when an earlier attempt did take effect after all. A failure of it that had
            no effect counts as that attempt's failure.

    Returns:
        What ``call`` returned.

    Raises:
        StoreUnavailableError: Every attempt failed without effect; names the store, the
            operation and the attempts, and chains the last error.
        Exception: Any other failure of ``call`` or ``before_retry``, unchanged, at once.
    """
    started = time.monotonic()
    for attempt in range(1, policy.attempts + 1):
        try:
            if attempt > 1 and before_retry is not None:
                before_retry()
            return call()
        except Exception as exc:
            if not had_no_effect(exc):
                raise
            if attempt == policy.attempts:
                elapsed = time.monotonic() - started
                raise StoreUnavailableError(
                    f"MLflow store {redact_url(store_uri)} unavailable: {operation} failed "
                    f"{attempt} time(s) in {elapsed:.1f} s, each time without effect; last "
                    f"error: {_summary(exc)}"
                ) from exc
            sleep(policy.delay(attempt, draw()))
    raise AssertionError("unreachable: the loop returns or raises")


def bound_mlflow_http_retries(
    store_uri: str, environ: MutableMapping[str, str] | None = None
) -> None:
    """Switches MLflow's own HTTP retries off for a tracking server; this module retries.

    MLflow's client otherwise retries every request up to 7 times with exponential back-off,
    also a POST after a read error (a duplicate version), and would multiply our attempts.
    It reads the setting at each request, so this applies from the next one.
    """
    environ = os.environ if environ is None else environ
    if urlsplit(store_uri).scheme in ("http", "https"):
        environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
