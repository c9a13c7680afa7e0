"""A canary through restarts: the serving process killed and restarted with its counters at
zero, the controller restarted as a fresh process reading the state from the registry; a canary
without traffic; the state tag kept under the store's size limit."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from mlflow import MlflowClient
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.deployment.sensors import _tick_canary
from mlplatform.deployment.canary import Decision, decide, event
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import (
    CANARY,
    OUTCOME_TAG,
    REASON_TAG,
    STATE_TAG,
    STATE_TAG_LIMIT,
    apply,
    load_state,
    start_canary,
)
from mlplatform.deployment.metrics import ArmCounts
from mlplatform.ml.registry import CHAMPION, promote_to_champion, version_for_alias
from mlplatform_tests.tiny_registry import build_template, copy_registry

pytestmark = pytest.mark.fault
NAME = "mlplatform-synthetic_churn"  # what the code location calls the synthetic_churn model
VERSIONS = {"canary": "2", "champion": "1"}
T0 = 1_780_000_000.0


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("registry"), NAME, 2)


@pytest.fixture
def uri(template, tmp_path) -> str:
    uri = copy_registry(template, tmp_path)
    promote_to_champion(MlflowClient(uri, uri), NAME, "1")
    return uri


@pytest.fixture
def client(uri) -> MlflowClient:
    return MlflowClient(uri, uri)


class FakeServing:
    """A serving process's ``/metrics`` on loopback: it can be killed and restarted (same port,
    counters from zero, a new process start time), as a real one would be."""

    def __init__(self):
        self.port, self.starts = 0, 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        self.registry = CollectorRegistry()
        labels = ["arm", "model_version"]
        self.requests = Counter(
            "mlplatform_requests", "r", [*labels, "status"], registry=self.registry
        )
        self.latency = Histogram(
            "mlplatform_request_latency_seconds", "l", labels, registry=self.registry
        )
        Gauge("process_start_time_seconds", "s", registry=self.registry).set(T0 + self.starts)
        registry = self.registry

        class Metrics(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Metrics)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, canary: int, champion: int) -> None:
        for arm, count in (("canary", canary), ("champion", champion)):
            self.requests.labels(arm, VERSIONS[arm], "200").inc(count)
            for _ in range(count):
                self.latency.labels(arm, VERSIONS[arm]).observe(0.01)


@pytest.fixture
def serving():
    fake = FakeServing()
    yield fake
    fake.kill()


def _counts(client) -> tuple[int, float, float]:
    state = load_state(client, NAME)
    return state.step, state.step_counts["canary"].requests, state.total_counts["canary"].requests


def _restarted_controller_tick(env: dict, url: str, uri: str) -> str:
    """One canary_sensor tick in a fresh process, as a restarted daemon would run it."""
    code = (
        "from mlplatform.lifecycle import tick_sensor\n"
        "print(tick_sensor('canary_sensor').skip_reason)\n"
    )
    env = {**env, "MLFLOW_TRACKING_URI": uri, "MLPLATFORM_SERVING_URL": url}
    env.pop("MLFLOW_REGISTRY_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_serving_and_controller_restarts_resume_the_canary_at_its_step_with_its_counts(
    client, uri, serving, subprocess_env
):
    plan = CanaryPlan(min_requests=100, min_dwell_seconds=0)
    start_canary(client, NAME, "2", plan)
    serving.serve(canary=0, champion=1000)  # traffic from before the canary
    assert _tick_canary(client, NAME, serving.url).action == "hold"  # the baseline
    serving.serve(canary=60, champion=900)
    assert _tick_canary(client, NAME, serving.url).action == "hold"
    assert _counts(client) == (0, 60, 60)

    serving.kill()  # the serving process dies: a tick cannot scrape and writes nothing
    before = load_state(client, NAME)
    with pytest.raises(httpx.ConnectError):
        _tick_canary(client, NAME, serving.url)
    assert load_state(client, NAME) == before

    serving.start()  # back, counters from zero: 30 < 60 is a restart, not -30 requests
    serving.serve(canary=30, champion=500)
    said = _restarted_controller_tick(subprocess_env, serving.url, uri)
    assert "step 1/3 at 5%: 90/100 canary requests" in said, said
    state = load_state(client, NAME)
    assert state.status == "running" and _counts(client) == (0, 90, 90)
    assert "counter_reset" in [e["event"] for e in state.history]

    serving.serve(canary=80, champion=700)
    assert _tick_canary(client, NAME, serving.url).action == "advance"
    assert _counts(client) == (1, 0, 170)
    # A restart after which the counters already exceed their old values (200 > 110): the new
    # start time gives it away, so all 200 count, not 90.
    serving.kill()
    serving.start()
    serving.serve(canary=200, champion=600)
    assert _tick_canary(client, NAME, serving.url).action == "advance"
    assert _counts(client) == (2, 0, 370)
    # The last step has seen no request yet: whatever the restarts, no promotion without it.
    assert _tick_canary(client, NAME, serving.url).action == "hold"
    assert version_for_alias(client, NAME, CHAMPION) == "1"


def _scrape(canary: float, champion: float) -> dict[str, ArmCounts]:
    return {"canary": ArmCounts(requests=canary), "champion": ArmCounts(requests=champion)}


def test_a_canary_without_traffic_rolls_back_at_its_maximum_step_time(client):
    plan = CanaryPlan(min_requests=100, min_dwell_seconds=60, max_step_seconds=600)
    start_canary(client, NAME, "2", plan, now=T0)
    ticks = [(T0, 0), (T0 + 300, 50), (T0 + 599, 50), (T0 + 600, 50)]
    actions = []
    for now, canary in ticks:
        decision = decide(plan, load_state(client, NAME), _scrape(canary, 1000 + now - T0), now)
        apply(client, NAME, decision)
        actions.append(decision.action)
    assert actions == ["hold", "hold", "hold", "rollback"]
    assert decision.reason.startswith("no traffic: step 1/3 at 5%: 50/100 canary requests")
    tags = client.get_model_version(NAME, "2").tags
    assert tags[OUTCOME_TAG] == "rolled_back" and tags[REASON_TAG] == decision.reason
    assert version_for_alias(client, NAME, CHAMPION) == "1"
    assert version_for_alias(client, NAME, CANARY) is None


def test_the_maximum_step_time_must_leave_room_for_the_dwell():
    with pytest.raises(ValueError, match="max_step_seconds .* must exceed min_dwell_seconds"):
        CanaryPlan(min_dwell_seconds=600, max_step_seconds=600)
    policy = DeploymentPolicy(canary_min_dwell_seconds="60", canary_max_step_seconds="30")
    with pytest.raises(ValueError, match="MLPLATFORM_CANARY_MAX_STEP_SECONDS=30 must exceed"):
        policy.canary_plan()
    assert DeploymentPolicy().canary_plan().max_step_seconds == 3600


def test_the_state_tag_stays_under_the_store_limit_keeping_the_newest_events(client):
    start_canary(client, NAME, "2", CanaryPlan(), now=T0)
    state = load_state(client, NAME)
    noisy = tuple(
        event(T0 + i, "counter_reset", step=0, weight=0.05, note="x" * 120) for i in range(100)
    )
    long = replace(state, history=noisy, updated_at=T0 + 100)
    persisted = apply(client, NAME, Decision("hold", "restarts", {}, long, state))
    text = client.get_registered_model(NAME).tags[STATE_TAG]
    assert len(text) <= STATE_TAG_LIMIT
    assert 0 < len(persisted.history) < 100
    assert persisted.history[-1] == noisy[-1]  # the newest events are the ones kept
    assert load_state(client, NAME) == persisted
    assert {k: json.loads(text)[k] for k in ("version", "status")} == {
        "version": "2",
        "status": "running",
    }
