"""Leases in the MLflow registry: mutual exclusion across processes and pods without a lock server.

MLflow has no compare-and-set, but creating a registered model is atomic in every backend store
(a unique constraint in SQLite and PostgreSQL, and through the tracking server): of two
processes creating the same name, exactly one succeeds, the other gets RESOURCE_ALREADY_EXISTS.
A lease on ``(model, purpose)`` is therefore a registered model named
``mlplatform-lock.<model>.<purpose>`` whose one tag (written in the same transaction) says who
holds it and until when. The holder deletes it on release; anyone may take over an expired one.

Taking over must not delete a lease someone else has just taken over. It goes through a second
atomic create, ``<lease>.takeover.<token of the expired lease>``: only the process that creates
that marker may replace the expired lease, and it checks the token again first. A holder never
deletes its lease once it has (nearly) expired, since it may no longer be its own; such an
overrun raises :class:`LeaseLost` instead. Expiry uses wall-clock time, so pods' clocks must
agree to well within the lease's lifetime (NTP does this).

Lease models are no models: :func:`is_lock_name` tells code that lists registered models to
leave them out.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

LOCK_PREFIX = "mlplatform-lock."
LEASE_TAG = "mlplatform.lock"
DEFAULT_TTL_SECONDS = 60.0
# A holder stops trusting its lease this long before it expires (a release must not race the
# takeover that expiry allows).
SAFETY_MARGIN_SECONDS = 2.0
_POLL_SECONDS = 0.05
_TAKEN, _GONE = "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"


class ConflictError(RuntimeError):
    """Another writer got there first; nothing was changed. The message says who and what."""


class LeaseConflict(ConflictError):
    """The lease is held by someone else (and did not come free within the wait)."""


class LeaseLost(ConflictError):
    """A lease expired or was taken over while its holder still worked under it."""


@dataclass(frozen=True)
class Lease:
    """One holding of a lease.

    Attributes:
        name: The lease's registered model name.
        model_name: The model it protects.
        purpose: What it protects (e.g. "deploy", "approval").
        holder: Who holds it, readable (what, user, host, process).
        token: Unique per holding: tells this holding from a later one by the same holder.
        acquired_at: Epoch seconds.
        expires_at: Epoch seconds; after it anyone may take the lease over.
    """

    name: str
    model_name: str
    purpose: str
    holder: str
    token: str
    acquired_at: float
    expires_at: float

    def describe(self) -> str:
        """ "<holder> since <time> (expires <time>)", for error messages."""
        return f"{self.holder} since {_iso(self.acquired_at)} (expires {_iso(self.expires_at)})"


# Leases held in this thread or task, so that a holder may re-enter its own lease (a rollback
# holding the deploy lease stops the canary through code that takes the same lease).
_HELD: ContextVar[dict[tuple[str, str], Lease] | None] = ContextVar(
    "mlplatform_leases", default=None
)


def lock_name(model_name: str, purpose: str) -> str:
    """The registered model name of the lease on ``purpose`` of ``model_name``."""
    return f"{LOCK_PREFIX}{model_name}.{purpose}"


def is_lock_name(name: str) -> bool:
    """Whether a registered model name is a lease (or a takeover marker), not a model."""
    return name.startswith(LOCK_PREFIX)


def process_identity() -> str:
    """User, host and process id of this process, to say who holds a lease."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _encode(lease: Lease) -> dict[str, str]:
    return {LEASE_TAG: json.dumps(asdict(lease), sort_keys=True)}


def read_lease(client: MlflowClient, name: str) -> Lease | None:
    """The lease registered under ``name``, or None when nobody holds it."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == _GONE:
            return None
        raise
    raw = model.tags.get(LEASE_TAG)
    if raw is None:
        # Made by hand (the tag is written with the model, atomically): it expires like a lease
        # from its creation, so it cannot block forever.
        created = (model.creation_timestamp or 0) / 1000
        expires = created + DEFAULT_TTL_SECONDS
        return Lease(
            name, "", "", "unknown (no lease tag)", f"untagged-{created}", created, expires
        )
    return Lease(**json.loads(raw))


def _create(client: MlflowClient, lease: Lease) -> bool:
    """Creates the lease's registered model; False when the name is taken."""
    try:
        client.create_registered_model(
            lease.name,
            tags=_encode(lease),
            description=f"mlplatform lease, not a model: {lease.purpose} of {lease.model_name}",
        )
        return True
    except MlflowException as exc:
        # A loser may also see "does not exist": the store looks the winner up after the
        # unique-constraint error, and the winner may have released it in between.
        if exc.error_code in (_TAKEN, _GONE):
            return False
        raise


def _delete(client: MlflowClient, name: str) -> None:
    try:
        client.delete_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != _GONE:
            raise


def _take_over(client: MlflowClient, expired: Lease, new: Lease, now: float) -> bool:
    """Replaces an expired lease with ``new`` if this process wins the takeover marker."""
    marker = Lease(
        f"{expired.name}.takeover.{expired.token}",
        new.model_name,
        f"{new.purpose} takeover",
        new.holder,
        new.token,
        now,
        now + DEFAULT_TTL_SECONDS,
    )
    if not _create(client, marker):
        stale = read_lease(client, marker.name)
        if stale is not None and stale.expires_at < now:
            # Its taker died half-way; remove the marker so that the next attempt can retry.
            _delete(client, marker.name)
        return False
    try:
        current = read_lease(client, expired.name)
        if current is not None and current.token != expired.token:
            return False  # someone else replaced it before we won the marker
        _delete(client, expired.name)
        return _create(client, new)
    finally:
        _delete(client, marker.name)


def acquire(
    client: MlflowClient,
    model_name: str,
    purpose: str,
    holder: str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    wait_seconds: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> Lease:
    """Takes the lease on ``purpose`` of ``model_name``, waiting up to ``wait_seconds``.

    Args:
        client: MLflow client of the registry holding the model.
        model_name: The model the lease protects.
        purpose: What it protects, e.g. "deploy" or "approval".
        holder: What is being done and by whom (shown to anyone who has to wait).
        ttl_seconds: Lifetime; the holder must finish (and release) well within it.
        wait_seconds: How long to retry while someone else holds it (0: try once).
        clock: Wall-clock time in epoch seconds (tests move it).

    Returns:
        The lease; release it with :func:`release` (or use :func:`held`).

    Raises:
        LeaseConflict: Someone else held it for the whole wait; the message says who.
    """
    if ttl_seconds <= 2 * SAFETY_MARGIN_SECONDS:
        raise ValueError(f"ttl_seconds must exceed {2 * SAFETY_MARGIN_SECONDS} s: {ttl_seconds}")
    name = lock_name(model_name, purpose)
    who = f"{holder} [{process_identity()}]"
    deadline = time.monotonic() + wait_seconds
    while True:
        now = clock()
        lease = Lease(name, model_name, purpose, who, uuid.uuid4().hex, now, now + ttl_seconds)
        if _create(client, lease):
            return lease
        current = read_lease(client, name)
        if current is not None and current.expires_at < now:
            if _take_over(client, current, lease, now):
                return lease
            current = read_lease(client, name)
        if current is not None and time.monotonic() >= deadline:
            raise LeaseConflict(
                f"{model_name}: the {purpose} lease is held by {current.describe()}; nothing was "
                "changed. Retry when it is released (or after it expires)."
            )
        if current is not None:
            time.sleep(_POLL_SECONDS)


def release(client: MlflowClient, lease: Lease, clock: Callable[[], float] = time.time) -> None:
    """Gives a lease back; only its holder (the same holding, by token) may.

    Raises:
        LeaseLost: The lease is no longer this holding's: it was taken over, or it has
            (nearly) expired, when another process may already be taking it over. Whatever
            was done under it may have raced another writer.
    """
    current = read_lease(client, lease.name)
    if current is None or current.token != lease.token:
        by = "nobody now" if current is None else current.describe()
        raise LeaseLost(
            f"{lease.model_name}: the {lease.purpose} lease taken at {_iso(lease.acquired_at)} by "
            f"{lease.holder} is no longer its own (held by {by}): it was held past its expiry, "
            "so another writer may have acted at the same time"
        )
    remaining = lease.expires_at - clock()
    if remaining < SAFETY_MARGIN_SECONDS:
        raise LeaseLost(
            f"{lease.model_name}: the {lease.purpose} lease of {lease.holder} expired (or had "
            f"{remaining:.1f} s left) before its release: the work under it took longer than "
            f"its lifetime of {lease.expires_at - lease.acquired_at:.0f} s, so another writer "
            "may have acted at the same time; it is left to expire"
        )
    _delete(client, lease.name)


@contextmanager
def held(
    client: MlflowClient,
    model_name: str,
    purpose: str,
    holder: str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    wait_seconds: float = 0.0,
) -> Iterator[Lease]:
    """The lease for the duration of a ``with`` block, released after it.

    Re-entrant: code running under a lease (in the same thread or task) that asks for the
    same lease again gets the one it holds, and only the outermost block releases it.

    Raises:
        LeaseConflict: See :func:`acquire`.
        LeaseLost: See :func:`release` (noted on the block's own exception, if it raised one).
    """
    key = (str(getattr(client, "_registry_uri", "")), lock_name(model_name, purpose))
    leases = _HELD.get() or {}
    if key in leases:
        yield leases[key]
        return
    lease = acquire(client, model_name, purpose, holder, ttl_seconds, wait_seconds)
    token = _HELD.set({**leases, key: lease})
    try:
        yield lease
    except BaseException as failure:
        _HELD.reset(token)
        try:
            release(client, lease)
        except (LeaseLost, MlflowException) as exc:  # the block's own failure comes first
            failure.add_note(f"releasing the {purpose} lease also failed: {exc}")
        raise
    _HELD.reset(token)
    release(client, lease)
