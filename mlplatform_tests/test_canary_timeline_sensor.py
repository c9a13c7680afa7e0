"""canary_sensor's timeline: each tick's observation shows the canary so far (ticks against a
fake /metrics on a real instance and registry), it survives a daemon restart, and MLflow gets
the picture when the canary finishes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from mlflow import MlflowClient
from pictures import decoded_png, inline_png
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from registry_faults import restored_mlflow_globals

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.deployment.sensors import TIMELINE_ARTIFACT, canary_sensor
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import abort_canary, load_state, start_canary
from mlplatform.ml.registry import CHAMPION, promote_to_champion, version_for_alias
from mlplatform_tests.tiny_registry import build_template, copy_registry

NAME = "mlplatform-synthetic_churn"  # what the code location calls the synthetic_churn model


# --- canary_sensor: the timeline on each observation, in MLflow when the canary finishes --------


class FakeMetrics:
    """A serving process's ``/metrics`` on loopback: requests, errors and latency per arm."""

    def __init__(self, versions: dict[str, str]):
        self.versions = versions
        self.registry = CollectorRegistry()
        labels = ["arm", "model_version"]
        self.requests = Counter(
            "mlplatform_requests", "r", [*labels, "status"], registry=self.registry
        )
        self.errors = Counter("mlplatform_errors", "e", [*labels, "kind"], registry=self.registry)
        self.latency = Histogram(
            "mlplatform_request_latency_seconds", "l", labels, registry=self.registry
        )
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, arm: str, requests: int, errors: int = 0, seconds: float = 0.01) -> None:
        version = self.versions[arm]
        self.requests.labels(arm, version, "200").inc(requests - errors)
        self.requests.labels(arm, version, "500").inc(errors)
        self.errors.labels(arm, version, "server").inc(errors)
        for _ in range(requests):
            self.latency.labels(arm, version).observe(seconds)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("registry"), NAME, 2)


@pytest.fixture
def registry(template, tmp_path):
    """Champion v1 and a canary candidate v3 registered from a run of this test's own (the
    template's runs share one artefact folder between tests)."""
    uri = copy_registry(template, tmp_path)
    with restored_mlflow_globals():
        client = MlflowClient(uri, uri)
        promote_to_champion(client, NAME, "1")
        experiment = client.create_experiment("ui-pictures", (tmp_path / "artifacts").as_uri())
        run = client.create_run(experiment)
        # Nothing loads this version: the controller only reads metrics and moves aliases.
        client.create_model_version(NAME, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        yield uri, client, run.info.run_id


@pytest.fixture
def metrics():
    fake = FakeMetrics({"canary": "3", "champion": "1"})
    yield fake
    fake.close()


def _context(instance, uri: str, url: str):
    return dg.build_sensor_context(
        instance=instance,
        resources={
            "dataset": DatasetResource(),  # synthetic_churn: the model is NAME
            "mlflow_tracking": MLflowResource(tracking_uri=uri),
            "deployment": DeploymentPolicy(serving_url=url),
        },
    )


def _tick(instance, uri: str, url: str):
    """One canary_sensor evaluation; its observation is recorded as the daemon would."""
    result = canary_sensor(_context(instance, uri, url))
    (observation,) = result.asset_events
    instance.report_runless_asset_event(observation)
    return observation.metadata


PLAN = CanaryPlan(steps=(0.5, 1.0), min_requests=20, min_dwell_seconds=0)


def _storage(tmp_path) -> str:
    """A Dagster instance's folder that outlives the instance (as a daemon's home does)."""
    folder = tmp_path / "dagster"
    folder.mkdir()
    return str(folder)


def _artifacts(client, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, "canary")}


def _logged_ticks(client, run_id: str, tmp_path) -> list[str]:
    path = client.download_artifacts(run_id, "canary/timeline.json", str(tmp_path))
    with open(path) as data:
        return [tick["action"] for tick in json.load(data)["ticks"]]


def test_each_tick_shows_the_timeline_so_far_and_it_survives_a_daemon_restart(
    registry, metrics, tmp_path
):
    uri, client, run_id = registry
    start_canary(client, NAME, "3", PLAN, started_by="deploy run")
    storage = _storage(tmp_path)
    with dg.instance_for_test(temp_dir=storage) as instance:
        first = _tick(instance, uri, metrics.url)  # the baseline scrape
        assert (first["action"].value, first["timeline_ticks"].value) == ("hold", 1)
        decoded_png(inline_png(first["timeline"].value))
        metrics.serve("canary", 40)
        metrics.serve("champion", 40)
        second = _tick(instance, uri, metrics.url)
        assert (second["action"].value, second["timeline_ticks"].value) == ("advance", 2)
        assert "timeline_artifact" not in second  # still running: nothing in MLflow yet
        assert _artifacts(client, run_id) == set()
    # A restarted daemon is a new process: the earlier ticks come back from the event log.
    with dg.instance_for_test(temp_dir=storage) as instance:
        metrics.serve("canary", 40, seconds=0.02)
        third = _tick(instance, uri, metrics.url)
    assert (third["action"].value, third["timeline_ticks"].value) == ("promote", 3)
    png = inline_png(third["timeline"].value)
    assert len(png) < 15_000  # stored with every tick: a 64-colour palette PNG
    decoded_png(png)
    assert third["timeline_artifact"].value == f"runs:/{run_id}/{TIMELINE_ARTIFACT}"
    assert _artifacts(client, run_id) == {TIMELINE_ARTIFACT, "canary/timeline.json"}
    assert _logged_ticks(client, run_id, tmp_path) == ["hold", "advance", "promote"]
    logged = client.download_artifacts(run_id, TIMELINE_ARTIFACT, str(tmp_path))
    with open(logged, "rb") as picture:
        decoded_png(picture.read())
    assert version_for_alias(client, NAME, CHAMPION) == "3"


def test_a_rollback_logs_its_timeline_and_a_second_release_of_the_version_starts_afresh(
    registry, metrics, tmp_path
):
    uri, client, run_id = registry
    start_canary(client, NAME, "3", PLAN, started_by="first release")
    with dg.instance_for_test(temp_dir=_storage(tmp_path)) as instance:
        _tick(instance, uri, metrics.url)
        metrics.serve("canary", 100, errors=60)
        metrics.serve("champion", 100)
        rolled_back = _tick(instance, uri, metrics.url)
        assert (rolled_back["action"].value, rolled_back["timeline_ticks"].value) == ("rollback", 2)
        assert rolled_back["timeline_artifact"].value == f"runs:/{run_id}/{TIMELINE_ARTIFACT}"
        assert _logged_ticks(client, run_id, tmp_path) == ["hold", "rollback"]
        # The same version released again is another canary: its timeline starts empty.
        start_canary(client, NAME, "3", PLAN, started_by="second release")
        again = _tick(instance, uri, metrics.url)
    assert (again["action"].value, again["timeline_ticks"].value) == ("hold", 1)


def test_a_canary_stopped_by_hand_gets_its_timeline_closed_and_logged_once(
    registry, metrics, tmp_path
):
    uri, client, run_id = registry
    start_canary(client, NAME, "3", PLAN, started_by="deploy run")
    with dg.instance_for_test(temp_dir=_storage(tmp_path)) as instance:
        _tick(instance, uri, metrics.url)
        metrics.serve("canary", 40)
        metrics.serve("champion", 40)
        _tick(instance, uri, metrics.url)
        # What `mlplatform rollback` does to a running canary, between two controller ticks.
        abort_canary(client, NAME, "rollback: complaints from the support team")
        closing = _tick(instance, uri, metrics.url)
        again = canary_sensor(_context(instance, uri, metrics.url))
    assert closing["action"].value == "aborted" and closing["status"].value == "rolled_back"
    assert "complaints from the support team" in closing["reason"].value
    assert closing["timeline_ticks"].value == 2
    decoded_png(inline_png(closing["timeline"].value))
    assert closing["timeline_artifact"].value == f"runs:/{run_id}/{TIMELINE_ARTIFACT}"
    assert _logged_ticks(client, run_id, tmp_path) == ["hold", "advance"]
    assert isinstance(again, dg.SkipReason) and "no canary running" in again.skip_message


def test_a_canary_stopped_before_its_first_tick_is_recorded_without_a_picture(
    registry, metrics, tmp_path
):
    uri, client, run_id = registry
    start_canary(client, NAME, "3", PLAN, started_by="deploy run")
    abort_canary(client, NAME, "rollback: wrong version released")
    with dg.instance_for_test(temp_dir=_storage(tmp_path)) as instance:
        closing = _tick(instance, uri, metrics.url)
    assert (closing["action"].value, closing["timeline_ticks"].value) == ("aborted", 0)
    assert "timeline" not in closing and "timeline_error" not in closing
    assert _artifacts(client, run_id) == set()


def test_a_timeline_mlflow_cannot_take_does_not_lose_the_decision(
    registry, metrics, tmp_path, monkeypatch
):
    uri, client, run_id = registry
    start_canary(client, NAME, "3", PLAN, started_by="deploy run")

    def store_down(*args, **kwargs):
        raise RuntimeError("artifact store unreachable")

    monkeypatch.setattr(MlflowClient, "log_figure", store_down)
    with dg.instance_for_test(temp_dir=_storage(tmp_path)) as instance:
        _tick(instance, uri, metrics.url)
        metrics.serve("canary", 100, errors=60)
        metrics.serve("champion", 100)
        rolled_back = _tick(instance, uri, metrics.url)
    assert rolled_back["action"].value == "rollback"
    assert "artifact store unreachable" in rolled_back["timeline_error"].value
    decoded_png(inline_png(rolled_back["timeline"].value))  # the UI still has the picture
    assert load_state(client, NAME).status == "rolled_back"
