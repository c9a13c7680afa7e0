"""Canary state, aliases and outcome tags in a real (sqlite) MLflow registry."""

from __future__ import annotations

import json
import shutil

import pytest
from mlflow import MlflowClient
from registry_faults import build_registry

from mlplatform.deployment.canary import decide
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import (
    CANARY,
    EVIDENCE_TAG,
    OUTCOME_TAG,
    REASON_TAG,
    STATE_TAG,
    CanaryError,
    apply,
    load_state,
    start_canary,
)
from mlplatform.deployment.metrics import ArmCounts
from mlplatform.ml.alias_moves import MOVE_TAG
from mlplatform.ml.registry import CHAMPION, PREVIOUS, promote_to_champion, version_for_alias

NAME = "churn"
T0 = 1_780_000_000.0
PLAN = CanaryPlan(min_requests=100, min_dwell_seconds=60)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """A registry with versions 1, 2 and 3 of a tiny model, built once per module."""
    database, _ = build_registry(tmp_path_factory.mktemp("registry"), NAME, 3)
    return database


@pytest.fixture
def client(template_db, tmp_path):
    """A private copy of the registry; version 1 is the champion."""
    shutil.copy(template_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    promote_to_champion(registry, NAME, "1")
    return registry


def scrape(canary: float, champion: float, canary_errors: float = 0, champion_errors=0):
    return {
        "canary": ArmCounts(requests=canary, errors=canary_errors),
        "champion": ArmCounts(requests=champion, errors=champion_errors),
    }


def tick(client, raw, now, plan=PLAN):
    decision = decide(plan, load_state(client, NAME), raw, now)
    apply(client, NAME, decision)
    return decision


def aliases(client) -> dict[str, str | None]:
    return {a: version_for_alias(client, NAME, a) for a in (CHAMPION, PREVIOUS, CANARY)}


def serving_view(client) -> dict:
    """The three keys the serving process routes by."""
    raw = json.loads(client.get_registered_model(NAME).tags[STATE_TAG])
    return {k: raw[k] for k in ("version", "weight", "status")}


def test_start_sets_alias_and_state(client):
    state = start_canary(client, NAME, "2", PLAN, now=T0)
    assert aliases(client) == {CHAMPION: "1", PREVIOUS: None, CANARY: "2"}
    assert serving_view(client) == {"version": "2", "weight": 0.05, "status": "running"}
    assert load_state(client, NAME) == state and state.champion_version == "1"
    assert client.get_model_version(NAME, "2").tags[OUTCOME_TAG] == "running"
    # A retried start of the same version keeps the running canary as it is.
    assert start_canary(client, NAME, "2", PLAN, now=T0 + 500) == state


def test_second_canary_for_another_version_is_refused(client):
    start_canary(client, NAME, "2", PLAN, now=T0)
    with pytest.raises(CanaryError, match=r"canary v2 is still running.*before v3"):
        start_canary(client, NAME, "3", PLAN, now=T0 + 10)
    assert aliases(client)[CANARY] == "2"
    assert load_state(client, NAME).version == "2"


def test_champion_cannot_be_its_own_canary(client):
    with pytest.raises(CanaryError, match="already the champion"):
        start_canary(client, NAME, "1", PLAN, now=T0)
    assert load_state(client, NAME) is None


def test_advance_then_promote(client):
    start_canary(client, NAME, "2", PLAN, now=T0)
    assert tick(client, scrape(0, 1000), T0).action == "hold"  # baseline
    assert tick(client, scrape(100, 2900), T0 + 60).action == "advance"
    assert serving_view(client) == {"version": "2", "weight": 0.25, "status": "running"}
    assert tick(client, scrape(200, 3200), T0 + 120).action == "advance"
    assert serving_view(client)["weight"] == 1.0
    decision = tick(client, scrape(300, 3200), T0 + 180)
    assert decision.action == "promote"
    assert aliases(client) == {CHAMPION: "2", PREVIOUS: "1", CANARY: None}
    assert serving_view(client) == {"version": "2", "weight": 0.0, "status": "promoted"}
    assert client.get_model_version(NAME, "2").tags[OUTCOME_TAG] == "promoted"
    assert {str(v.version) for v in client.search_model_versions(f"name='{NAME}'")} == {
        "1",
        "2",
        "3",
    }
    # The next canary may start once this one has finished.
    start_canary(client, NAME, "3", PLAN, now=T0 + 300)
    assert aliases(client) == {CHAMPION: "2", PREVIOUS: "1", CANARY: "3"}


def test_rollback_records_reason_and_evidence(client):
    start_canary(client, NAME, "2", PLAN, now=T0)
    tick(client, scrape(0, 1000), T0)
    decision = tick(client, scrape(50, 1950, canary_errors=20, champion_errors=5), T0 + 30)
    assert decision.action == "rollback"
    assert aliases(client) == {CHAMPION: "1", PREVIOUS: None, CANARY: None}
    assert serving_view(client) == {"version": "2", "weight": 0.0, "status": "rolled_back"}
    tags = client.get_model_version(NAME, "2").tags
    assert tags[OUTCOME_TAG] == "rolled_back"
    assert tags[REASON_TAG] == decision.reason and "canary v2 error rate" in tags[REASON_TAG]
    evidence = json.loads(tags[EVIDENCE_TAG])
    assert evidence["errors"]["canary_errors"] == 20 and evidence["errors"]["breached"]
    # Later ticks change nothing.
    assert tick(client, scrape(60, 2000), T0 + 60).action == "hold"
    assert serving_view(client)["status"] == "rolled_back"


class Recorder:
    """An MlflowClient that records the registry writes, in order."""

    WRITES = (
        "set_registered_model_alias",
        "delete_registered_model_alias",
        "set_registered_model_tag",
        "set_model_version_tag",
    )

    def __init__(self, client):
        self.client, self.calls = client, []

    def __getattr__(self, name):
        method = getattr(self.client, name)
        if name not in self.WRITES:
            return method

        def record(*args):
            self.calls.append((name, *args[1:3]))
            return method(*args)

        return record


def test_rollback_stops_traffic_before_anything_else(client):
    start_canary(client, NAME, "2", PLAN, now=T0)
    tick(client, scrape(0, 1000), T0)
    recorder = Recorder(client)
    decision = decide(PLAN, load_state(client, NAME), scrape(50, 1950, 20, 5), T0 + 30)
    apply(recorder, NAME, decision)
    assert recorder.calls[0][:2] == ("set_registered_model_tag", STATE_TAG)
    assert json.loads(recorder.calls[0][2])["weight"] == 0.0
    assert recorder.calls[1] == ("delete_registered_model_alias", CANARY)


def test_promotion_moves_previous_before_champion(client):
    start_canary(client, NAME, "2", PLAN, now=T0)
    tick(client, scrape(0, 1000), T0)
    plan = CanaryPlan(steps=(1.0,), min_requests=100, min_dwell_seconds=0)
    recorder = Recorder(client)
    decision = decide(plan, load_state(client, NAME), scrape(100, 1000), T0 + 30)
    assert decision.action == "promote"
    apply(recorder, NAME, decision)
    # The alias move is recorded first, so a crash between the two moves can be finished.
    assert recorder.calls[0][:2] == ("set_registered_model_tag", MOVE_TAG)
    writes = [call for call in recorder.calls if call[1] != MOVE_TAG]
    assert writes[:4] == [
        ("set_registered_model_alias", PREVIOUS, "1"),
        ("set_registered_model_alias", CHAMPION, "2"),
        ("set_registered_model_tag", STATE_TAG, decision.new_state.to_json()),
        ("delete_registered_model_alias", CANARY),
    ]


def test_state_survives_a_new_client(client, tmp_path):
    start_canary(client, NAME, "2", PLAN, now=T0)
    tick(client, scrape(0, 1000), T0)
    before = tick(client, scrape(40, 1800, 1, 4), T0 + 30).new_state
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert load_state(MlflowClient(tracking_uri=uri, registry_uri=uri), NAME) == before


def test_no_champion_no_canary(client):
    client.delete_registered_model_alias(NAME, CHAMPION)
    with pytest.raises(CanaryError, match="no champion"):
        start_canary(client, NAME, "2", PLAN, now=T0)
    assert aliases(client)[CANARY] is None
