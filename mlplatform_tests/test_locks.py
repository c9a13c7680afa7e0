"""Leases in a real (sqlite) MLflow registry: contention from threads and processes, expiry
takeover, release only by the holder, re-entry, and lease models kept out of model listings."""

from __future__ import annotations

import multiprocessing
import re
import shutil
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlplatform.deployment.locks import (
    LOCK_PREFIX,
    Lease,
    LeaseConflict,
    LeaseLost,
    acquire,
    held,
    is_lock_name,
    lock_name,
    read_lease,
    release,
)

pytestmark = pytest.mark.fault
MODEL = "churn"
T0 = 1_780_000_000.0


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory) -> Path:
    """An empty sqlite registry, built once: creating MLflow's tables takes seconds."""
    path = tmp_path_factory.mktemp("registry") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}", f"sqlite:///{path}").search_registered_models()
    return path


@pytest.fixture
def uri(empty_registry, tmp_path) -> str:
    shutil.copy(empty_registry, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def client(uri) -> MlflowClient:
    return MlflowClient(uri, uri)


def at(seconds: float):
    """A clock stopped at T0 + seconds."""
    return lambda: T0 + seconds


def test_of_many_threads_exactly_one_gets_the_lease_and_the_others_learn_who(client):
    threads, barrier, results = 8, threading.Barrier(8), []

    def contend(i: int) -> None:
        barrier.wait()
        try:
            results.append(acquire(client, MODEL, "deploy", f"worker {i}"))
        except LeaseConflict as exc:
            results.append(exc)

    workers = [threading.Thread(target=contend, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    (winner,) = [r for r in results if isinstance(r, Lease)]
    conflicts = [r for r in results if isinstance(r, LeaseConflict)]
    assert len(conflicts) == threads - 1
    assert all(winner.holder in str(c) and "nothing was changed" in str(c) for c in conflicts)
    assert read_lease(client, lock_name(MODEL, "deploy")).token == winner.token
    release(client, winner)
    assert read_lease(client, lock_name(MODEL, "deploy")) is None


def _contend_in_process(uri: str, barrier, done, results) -> None:
    """One process: acquire when all are ready, hold the lease until the test says done."""
    client = MlflowClient(uri, uri)
    barrier.wait()
    try:
        lease = acquire(
            client, MODEL, "deploy", f"process {multiprocessing.current_process().name}"
        )
    except LeaseConflict as exc:
        results.put(("conflict", str(exc)))
        return
    results.put(("won", lease.holder))
    done.wait(timeout=120)
    release(client, lease)


def test_two_processes_racing_for_a_lease_exactly_one_wins(uri, client):
    context = multiprocessing.get_context("spawn")
    barrier, done, results = context.Barrier(2), context.Event(), context.Queue()
    processes = [
        context.Process(target=_contend_in_process, args=(uri, barrier, done, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    done.set()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "won"]
    winner = next(text for kind, text in outcomes if kind == "won")
    assert winner in next(text for kind, text in outcomes if kind == "conflict")
    assert read_lease(client, lock_name(MODEL, "deploy")) is None  # the winner released it


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_release_it(client):
    old = acquire(client, MODEL, "deploy", "crashed deploy", ttl_seconds=30, clock=at(0))
    with pytest.raises(LeaseConflict, match="crashed deploy"):
        acquire(client, MODEL, "deploy", "next", ttl_seconds=30, clock=at(29))
    new = acquire(client, MODEL, "deploy", "next", ttl_seconds=30, clock=at(31))
    assert new.token != old.token
    with pytest.raises(LeaseLost, match="no longer its own"):
        release(client, old, clock=at(32))
    assert read_lease(client, new.name).token == new.token  # the old holder deleted nothing
    release(client, new, clock=at(32))
    assert client.search_registered_models() == []  # no takeover marker left behind


def test_of_many_threads_taking_over_an_expired_lease_exactly_one_wins(client):
    acquire(client, MODEL, "deploy", "crashed", ttl_seconds=30, clock=at(0))
    barrier, results = threading.Barrier(6), []

    def take_over(i: int) -> None:
        barrier.wait()
        try:
            results.append(acquire(client, MODEL, "deploy", f"t{i}", clock=at(100)))
        except LeaseConflict as exc:
            results.append(exc)

    workers = [threading.Thread(target=take_over, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    (winner,) = [r for r in results if isinstance(r, Lease)]
    assert read_lease(client, winner.name).token == winner.token
    names = {m.name for m in client.search_registered_models()}
    assert names == {winner.name}  # every takeover marker was removed


def test_a_marker_left_by_a_taker_that_died_does_not_block_forever(client):
    expired = acquire(client, MODEL, "deploy", "crashed", ttl_seconds=30, clock=at(0))
    marker = Lease(
        f"{expired.name}.takeover.{expired.token}", MODEL, "deploy takeover", "died", "x", T0, T0
    )
    from mlplatform.deployment.locks import _create

    assert _create(client, marker)
    lease = acquire(client, MODEL, "deploy", "next", clock=at(100), wait_seconds=5)
    assert read_lease(client, lease.name).token == lease.token


def test_only_the_holder_releases_and_never_after_expiry(client):
    lease = acquire(client, MODEL, "approval", "alice", ttl_seconds=30, clock=at(0))
    forged = Lease(**{**lease.__dict__, "token": "someone-else"})
    with pytest.raises(LeaseLost):
        release(client, forged, clock=at(1))
    # Too close to expiry: a takeover may be under way, so it is left to expire.
    with pytest.raises(LeaseLost, match="expired .* before its release"):
        release(client, lease, clock=at(29))
    assert read_lease(client, lease.name).token == lease.token
    release(client, lease, clock=at(1))
    assert read_lease(client, lease.name) is None


class CountingClient:
    """An MlflowClient that signals once another caller has tried to create the lease."""

    def __init__(self, client):
        self.client, self.tried = client, threading.Event()

    def __getattr__(self, name):
        if name == "create_registered_model":
            self.tried.set()
        return getattr(self.client, name)


def test_a_waiting_acquirer_gets_the_lease_once_it_is_released(client):
    holder = acquire(client, MODEL, "deploy", "rollback")
    waiter, got = CountingClient(client), []
    thread = threading.Thread(
        target=lambda: got.append(acquire(waiter, MODEL, "deploy", "tick", wait_seconds=60))
    )
    thread.start()
    assert waiter.tried.wait(timeout=60)
    release(client, holder)
    thread.join(timeout=60)
    assert got and read_lease(client, got[0].name).holder.startswith("tick")


def test_held_is_reentrant_in_one_thread_and_exclusive_across_threads(client):
    with held(client, MODEL, "deploy", "rollback") as outer:
        with held(client, MODEL, "deploy", "abort canary") as inner:
            assert inner == outer
        other: list[BaseException] = []
        thread = threading.Thread(target=lambda: _try_held(client, other))
        thread.start()
        thread.join()
        assert isinstance(other[0], LeaseConflict)
        assert read_lease(client, outer.name).token == outer.token  # the inner exit kept it
    assert read_lease(client, outer.name) is None


def _try_held(client, errors: list) -> None:
    try:
        with held(client, MODEL, "deploy", "tick"):
            pass
    except LeaseConflict as exc:
        errors.append(exc)


def test_held_releases_when_its_block_fails(client):
    with pytest.raises(RuntimeError, match="boom"), held(client, MODEL, "deploy", "x"):
        raise RuntimeError("boom")
    assert read_lease(client, lock_name(MODEL, "deploy")) is None


def test_lease_names_are_recognised_and_no_model_listing_shows_them():
    assert is_lock_name(lock_name(MODEL, "deploy")) and not is_lock_name("mlplatform-churn")
    # Any platform code listing registered models must leave the leases out.
    root = Path(__file__).resolve().parents[1] / "mlplatform"
    listing = re.compile(r"search_registered_models|list_registered_models")
    for path in root.rglob("*.py"):
        text = path.read_text()
        if listing.search(text):
            assert "is_lock_name" in text, f"{path} lists registered models with the leases"
    assert LOCK_PREFIX.startswith("mlplatform-lock.")
