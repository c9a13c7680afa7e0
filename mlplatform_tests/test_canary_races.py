"""Races on one model's deployment in a real (sqlite) registry: two releases, and a canary tick
against `mlplatform rollback`. Exactly one writer wins; the other gets a conflict and writes
nothing; a rollback is never undone and never leaves a canary running behind it."""

from __future__ import annotations

import threading

import pytest
from mlflow import MlflowClient

from mlplatform.deployment.approvals import GATE_TAG_PREFIX
from mlplatform.deployment.canary import decide
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import (
    CANARY,
    DEPLOY_LEASE,
    OUTCOME_TAG,
    CanaryConflict,
    apply,
    load_state,
    start_canary,
)
from mlplatform.deployment.locks import held, lock_name, read_lease
from mlplatform.deployment.metrics import ArmCounts
from mlplatform.deployment.release import (
    CANARY as CANARY_STATUS,
)
from mlplatform.deployment.release import (
    PROMOTED,
    ReleaseRefused,
    StaleDecisionError,
    release,
)
from mlplatform.deployment.rollback import roll_back
from mlplatform.ml.evaluation import Evaluation
from mlplatform.ml.metrics import AucEstimate
from mlplatform.ml.registry import CHALLENGER, CHAMPION, PREVIOUS, promote_to_champion
from mlplatform.ml.registry import version_for_alias as alias
from mlplatform_tests.tiny_registry import build_template, copy_registry

pytestmark = pytest.mark.fault
NAME = "churn"
T0 = 1_780_000_000.0
PLAN = CanaryPlan(min_requests=100, min_dwell_seconds=0)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("registry"), NAME, 3)


@pytest.fixture
def client(template, tmp_path) -> MlflowClient:
    uri = copy_registry(template, tmp_path)
    return MlflowClient(uri, uri)


def _evaluation(challenger: str, champion: str | None) -> Evaluation:
    auc = AucEstimate(0.9, 0.01, 0.88, 0.92, 500, 500)
    return Evaluation(NAME, challenger, champion, "holdout", 1000, auc, None, None, 0.8, 0.0)


def _race(*calls):
    """Runs the calls at the same moment, one thread each; returns results or exceptions."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the loser's error is what the test inspects
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _release_by(client, run: str, plan: CanaryPlan | None):
    return lambda: release(client, _evaluation("2", "1"), False, (), plan, f"deploy run {run}")


@pytest.fixture
def challenger(client) -> MlflowClient:
    """Champion v1; v2 evaluated against it and waiting to be released."""
    promote_to_champion(client, NAME, "1")
    client.set_registered_model_alias(NAME, CHALLENGER, "2")
    return client


def test_two_releases_racing_promote_once_and_the_other_is_told_it_is_stale(challenger):
    results = _race(_release_by(challenger, "a", None), _release_by(challenger, "b", None))
    (won,) = [r for r in results if not isinstance(r, Exception)]
    (lost,) = [r for r in results if isinstance(r, Exception)]
    assert won.status == PROMOTED
    assert isinstance(lost, StaleDecisionError) and "champion v2" in str(lost)
    assert (alias(challenger, NAME, CHAMPION), alias(challenger, NAME, PREVIOUS)) == ("2", "1")
    assert read_lease(challenger, lock_name(NAME, DEPLOY_LEASE)) is None


def test_two_releases_racing_start_one_canary_and_the_other_gets_a_conflict(challenger):
    results = _race(_release_by(challenger, "a", PLAN), _release_by(challenger, "b", PLAN))
    (won,) = [r for r in results if not isinstance(r, Exception)]
    (lost,) = [r for r in results if isinstance(r, Exception)]
    assert won.status == CANARY_STATUS
    assert isinstance(lost, CanaryConflict) and "already started by deploy run" in str(lost)
    state = load_state(challenger, NAME)
    assert [e["event"] for e in state.history] == ["started"]  # one start, evidence intact
    # A retry of the winning run (same run id) is not a conflict: it returns the canary.
    winner = state.started_by.removeprefix("deploy run ")
    assert _release_by(challenger, winner, PLAN)().status == CANARY_STATUS


@pytest.mark.security
@pytest.mark.parametrize("value", ["failed", None])
def test_a_release_refuses_a_version_whose_gate_failed_or_never_ran(challenger, value):
    tag = GATE_TAG_PREFIX + "serving_smoke_test"
    if value is None:
        challenger.delete_model_version_tag(NAME, "2", tag)
    else:
        challenger.set_model_version_tag(NAME, "2", tag, value)
    with pytest.raises(ReleaseRefused, match="serving_smoke_test"):
        _release_by(challenger, "a", None)()
    assert alias(challenger, NAME, CHAMPION) == "1"


def _scrape(canary: float, champion: float) -> dict[str, ArmCounts]:
    return {"canary": ArmCounts(requests=canary), "champion": ArmCounts(requests=champion)}


@pytest.fixture
def canary(client) -> MlflowClient:
    """Champion v2 (previous v1) and a running canary of v3 past its baseline scrape."""
    promote_to_champion(client, NAME, "1")
    promote_to_champion(client, NAME, "2")
    start_canary(client, NAME, "3", PLAN, now=T0)
    apply(client, NAME, decide(PLAN, load_state(client, NAME), _scrape(0, 1000), T0 + 1))
    return client


def _rollback(client) -> None:
    """What `mlplatform rollback` does: roll back under the model's deploy lease."""
    with held(client, NAME, DEPLOY_LEASE, "rollback by oncall", wait_seconds=30):
        roll_back(client, NAME, by="oncall", reason="paging")


def _assert_rollback_stands(client) -> None:
    state = load_state(client, NAME)
    assert (state.status, state.weight) == ("rolled_back", 0.0)
    assert alias(client, NAME, CANARY) is None  # no zombie canary
    assert (alias(client, NAME, CHAMPION), alias(client, NAME, PREVIOUS)) == ("1", "2")
    assert client.get_model_version(NAME, "3").tags[OUTCOME_TAG] == "rolled_back"


def test_a_tick_decided_before_a_rollback_writes_nothing_after_it(canary):
    decision = decide(PLAN, load_state(canary, NAME), _scrape(150, 4000), T0 + 60)
    assert decision.action == "advance"
    _rollback(canary)
    with pytest.raises(CanaryConflict, match="changed after this advance .* nothing was written"):
        apply(canary, NAME, decision)
    _assert_rollback_stands(canary)
    # The next tick sees the rollback and only holds.
    later = decide(PLAN, load_state(canary, NAME), _scrape(300, 5000), T0 + 120)
    assert later.action == "hold"
    apply(canary, NAME, later)
    _assert_rollback_stands(canary)


class PausingClient:
    """An MlflowClient that stops before its first registered-model tag write until told."""

    def __init__(self, client):
        self.client, self.paused, self.go = client, threading.Event(), threading.Event()

    def __getattr__(self, name):
        method = getattr(self.client, name)
        if name != "set_registered_model_tag" or self.paused.is_set():
            return method

        def write(*args):
            self.paused.set()
            assert self.go.wait(timeout=60)
            return method(*args)

        return write


class TryingClient:
    """An MlflowClient that signals once it has tried to take a lease."""

    def __init__(self, client):
        self.client, self.tried = client, threading.Event()

    def __getattr__(self, name):
        if name == "create_registered_model":
            self.tried.set()
        return getattr(self.client, name)


def test_a_rollback_waits_for_a_tick_in_progress_then_stands(canary):
    ticking, rolling = PausingClient(canary), TryingClient(canary)
    decision = decide(PLAN, load_state(canary, NAME), _scrape(150, 4000), T0 + 60)
    tick = threading.Thread(target=lambda: apply(ticking, NAME, decision))
    tick.start()
    assert ticking.paused.wait(timeout=60)  # the tick holds the lease, mid-write
    rollback = threading.Thread(target=lambda: _rollback(rolling))
    rollback.start()
    assert rolling.tried.wait(timeout=60)  # the rollback asked for the lease and waits
    ticking.go.set()
    tick.join(timeout=60)
    rollback.join(timeout=60)
    _assert_rollback_stands(canary)
    events = [e["event"] for e in load_state(canary, NAME).history]
    assert events[-2:] == ["advance", "aborted"]  # the tick finished first, then the abort


def test_a_tick_and_a_rollback_started_together_leave_the_rollback_standing(canary):
    def tick():
        decision = decide(PLAN, load_state(canary, NAME), _scrape(150, 4000), T0 + 60)
        return apply(canary, NAME, decision)

    results = _race(tick, lambda: _rollback(canary))
    assert not isinstance(results[1], Exception), results[1]
    # Either order is fine: the tick went first, or it got a conflict and wrote nothing.
    assert not isinstance(results[0], Exception) or isinstance(results[0], CanaryConflict)
    _assert_rollback_stands(canary)
