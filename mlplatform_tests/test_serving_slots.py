"""Model slots and the app's error paths with a fake registry and fake models (no MLflow)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlplatform.serving.app import ServingSettings, create_app
from mlplatform.serving.batching import churn_scores
from mlplatform.serving.slot_state import CANARY_TAG, canary_assignment
from mlplatform.serving.slots import ModelSlots

ROWS = {"inputs": [{"customer_id": "c-1", "x": 1.0}, {"customer_id": "c-2", "x": 2.0}]}


class FakeRegistry:
    def __init__(self, **aliases):
        self.aliases = dict(aliases)
        self.tags: dict[str, str] = {}
        self.down = False

    def get_registered_model(self, name):
        if self.down:
            raise ConnectionError("registry unreachable")
        return SimpleNamespace(aliases=dict(self.aliases), tags=dict(self.tags))

    def canary(self, version, weight, status="running"):
        self.aliases["canary"] = version
        self.tags[CANARY_TAG] = json.dumps({"version": version, "weight": weight, "status": status})


class FakeModel:
    def __init__(self, output):
        self.output = output

    def predict(self, frame):
        if isinstance(self.output, Exception):
            raise self.output
        return self.output(len(frame))


class FakeLoader:
    """Versions to models; a version in ``broken`` fails to load. Counts loads."""

    def __init__(self, models):
        self.models, self.broken, self.loads = models, set(), []

    def __call__(self, name, version):
        self.loads.append(version)
        if version in self.broken:
            raise OSError(f"artifact of v{version} unreadable")
        return self.models[version]


def good(n):
    return np.column_stack([np.full(n, 0.75), np.full(n, 0.25)])


MODELS = {
    "1": FakeModel(good),
    "2": FakeModel(good),
    "3": FakeModel(lambda n: np.full((n, 2), np.nan)),
    "4": FakeModel(ValueError("boom")),
    "5": FakeModel(lambda n: good(n + 1)),
}


@pytest.mark.parametrize(
    "tag, alias, expected",
    [
        (None, None, (None, 0.0)),
        ('{"version": "2", "weight": 0.2, "status": "running"}', "2", ("2", 0.2)),
        ('{"version": "2", "weight": 0.2, "status": "running"}', None, (None, 0.0)),
        ('{"version": "2", "weight": 0.2, "status": "running"}', "3", (None, 0.0)),
        ('{"version": "2", "weight": 0.2, "status": "rolled_back"}', "2", (None, 0.0)),
        ('{"version": "2", "weight": 7, "status": "running"}', "2", ("2", 1.0)),
        ('{"version": "2", "weight": "NaN", "status": "running"}', "2", (None, 0.0)),
        ('{"version": "2", "status": "running"}', "2", (None, 0.0)),
        ("not json", "2", (None, 0.0)),
        ("[1, 2]", "2", (None, 0.0)),
    ],
)
def test_only_a_running_canary_with_its_alias_gets_traffic(tag, alias, expected):
    assert canary_assignment(tag, alias) == expected


def test_versions_are_loaded_once_and_rollback_is_a_pointer_swap():
    registry, loader = FakeRegistry(champion="1"), FakeLoader(MODELS)
    slots = ModelSlots(registry, "m", loader=loader)
    first = slots.refresh()
    registry.aliases.update(champion="2", previous="1")
    promoted = slots.refresh()
    registry.aliases.update(champion="1")
    rolled_back = slots.refresh()
    assert loader.loads == ["1", "2"]
    assert rolled_back.champion is first.champion
    # A request holding an older snapshot keeps its model.
    assert (first.champion_version, promoted.champion_version) == ("1", "2")


def test_a_version_that_fails_to_load_leaves_the_champion_serving_and_is_retried_later():
    registry, loader = FakeRegistry(champion="1"), FakeLoader(MODELS)
    slots = ModelSlots(registry, "m", loader=loader)
    slots.refresh()
    loader.broken.add("2")
    registry.aliases.update(champion="2", previous="1")
    assert slots.refresh().champion_version == "1"
    assert slots.refresh().champion_version == "1"
    assert loader.loads.count("2") == 1  # backed off, not hammered twice a second
    loader.broken.clear()
    slots._failed["2"] = (0.0, 1.0)  # the back-off has passed
    assert slots.refresh().champion_version == "2"


def test_a_registry_outage_or_a_removed_alias_keeps_the_current_models():
    registry = FakeRegistry(champion="1")
    slots = ModelSlots(registry, "m", loader=FakeLoader(MODELS))
    slots.refresh()
    registry.down = True
    assert slots.refresh().champion_version == "1"
    registry.down = False
    registry.aliases.clear()
    assert slots.refresh().champion_version == "1"


def test_a_canary_that_cannot_load_gets_no_traffic():
    registry, loader = FakeRegistry(champion="1"), FakeLoader(MODELS)
    loader.broken.add("2")
    registry.canary("2", 0.5)
    state = ModelSlots(registry, "m", loader=loader).refresh()
    assert (state.canary_version, state.canary_weight) == (None, 0.0)


def test_the_poller_picks_up_changes_within_a_second():
    registry = FakeRegistry(champion="1")
    slots = ModelSlots(registry, "m", poll_seconds=0.05, loader=FakeLoader(MODELS))
    slots.start()
    try:
        registry.canary("2", 0.25)
        started = time.monotonic()
        while slots.snapshot().canary_weight != 0.25:
            assert time.monotonic() - started < 1.0
            time.sleep(0.01)
    finally:
        slots.stop()


def _app(registry, **settings):
    slots = ModelSlots(registry, "m", poll_seconds=60, loader=FakeLoader(MODELS))
    config = ServingSettings(tracking_uri="unused", model_name="m", id_column="customer_id")
    return TestClient(create_app(config, slots=slots))


def test_without_a_champion_health_and_invocations_answer_503_but_the_process_is_alive():
    with _app(FakeRegistry()) as client:
        assert client.get("/health").status_code == 503
        assert client.get("/health/live").json() == {"status": "alive"}
        response = client.post("/invocations", json=ROWS)
        assert response.status_code == 503
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert 'kind="5xx"' in client.get("/metrics").text


@pytest.mark.parametrize(
    "version, kind, words",
    [
        ("3", "invalid_output", "NaN"),
        ("4", "exception", "ValueError"),
        ("5", "invalid_output", "3"),
    ],
)
def test_model_failures_are_500s_counted_on_the_arm_that_failed(version, kind, words):
    registry = FakeRegistry(champion="1")
    registry.canary(version, 1.0)
    with _app(registry) as client:
        response = client.post("/invocations", json=ROWS)
        assert response.status_code == 500 and words in response.json()["message"]
        assert response.headers["X-Model-Arm"] == "canary"
        metrics = client.get("/metrics").text
    expected = (
        f'mlplatform_errors_total{{arm="canary",kind="{kind}",model_version="{version}"}} 1.0'
    )
    assert expected in metrics


@pytest.mark.parametrize(
    "output, n_rows, expected",
    [
        ([[0.9, 0.1], [0.2, 0.8]], 2, [0.1, 0.8]),
        ([0.3, 0.4], 2, [0.3, 0.4]),
        ([[0.9, 0.1]], 2, None),
        ([[0.5, 1.5]], 1, None),
        ([[0.5, -0.1]], 1, None),
        ([["a", "b"]], 1, None),
        ([[[0.1]]], 1, None),
    ],
)
def test_churn_scores_take_column_one_and_refuse_invalid_output(output, n_rows, expected):
    if expected is None:
        with pytest.raises(ValueError):
            churn_scores(np.asarray(output), n_rows)
    else:
        assert churn_scores(np.asarray(output), n_rows) == expected
