"""Pictures in the Dagster UI and MLflow: the canary timeline (pure figure, and canary_sensor
ticks against a fake /metrics on a real instance and registry), the evaluation's ROC with its
CI and slice table, the drift report's PSI chart."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import matplotlib.image
import numpy as np
import pytest
from mlflow import MlflowClient
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from registry_faults import restored_mlflow_globals

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.deployment.sensors import TIMELINE_ARTIFACT, canary_sensor
from mlplatform.defs.monitoring.resources import DriftPolicy
from mlplatform.defs.monitoring.sensors import psi_drift_sensor
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.deployment.canary import CanaryPlan, decide, initial_state
from mlplatform.deployment.canary_state import load_state, start_canary
from mlplatform.deployment.metrics import ArmCounts
from mlplatform.deployment.timeline_plot import CanaryTick, canary_timeline_figure
from mlplatform.ml.metrics import AucEstimate
from mlplatform.ml.plots import png_bytes, psi_bar_chart, roc_figure
from mlplatform.ml.registry import CHAMPION, promote_to_champion, version_for_alias
from mlplatform_tests.conftest import load_days, retrain
from mlplatform_tests.tiny_registry import build_template, copy_registry

NAME = "mlplatform-synthetic_churn"  # what the code location calls the synthetic_churn model
T0 = 1_780_000_000.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INLINE_PNG = re.compile(r"^!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def _decoded(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_MAGIC)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def _inline_png(markdown: str) -> bytes:
    match = INLINE_PNG.search(markdown.strip().splitlines()[-1])
    assert match, markdown[:200]
    return base64.b64decode(match.group(1))


# --- the pure figure ---------------------------------------------------------------------------


def _ticks() -> list[CanaryTick]:
    """Hold, advance to 25%, hold, advance to 100%, roll back: cumulative counts per tick."""
    rows = [  # action, weight before, after, canary req/err, champion req/err, canary p99
        ("hold", 0.05, 0.05, 0, 0, 0, 0, None),
        ("advance", 0.05, 0.25, 40, 0, 760, 8, 0.012),
        ("hold", 0.25, 0.25, 240, 2, 1360, 14, 0.013),
        ("advance", 0.25, 1.0, 440, 4, 1960, 20, 0.013),
        ("rollback", 1.0, 0.0, 840, 40, 1960, 20, 0.020),
    ]
    return [
        CanaryTick(T0 + 30 * (i + 1), a, wb, w, cr, ce, br, be, p99, None if p99 is None else 0.011)
        for i, (a, wb, w, cr, ce, br, be, p99) in enumerate(rows)
    ]


def test_the_timeline_draws_the_weight_steps_the_error_rate_per_arm_and_the_decisions():
    figure = canary_timeline_figure(
        _ticks(),
        started_at=T0,
        events=[{"time": T0 + 75, "event": "counter_reset"}, {"time": T0, "event": "started"}],
        max_error_rate=0.05,
    )
    weight_axes, error_axes, p99_axes = figure.axes
    weight = weight_axes.get_lines()[0]
    assert weight.get_drawstyle() == "steps-post"
    assert list(weight.get_xdata()) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]  # minutes since the start
    assert list(weight.get_ydata()) == [5.0, 5.0, 25.0, 25.0, 100.0, 0.0]
    by_label = {line.get_label(): line for line in error_axes.get_lines()}
    canary = by_label["canary (840 req)"]
    champion = by_label["champion (1960 req)"]
    # An arm without requests yet has no rate: the first tick is not drawn as 0%.
    assert list(canary.get_xdata()) == [1.0, 1.5, 2.0, 2.5]
    assert np.allclose(canary.get_ydata(), [0.0, 100 * 2 / 240, 100 * 4 / 440, 100 * 40 / 840])
    champion_rates = [100 * 8 / 760, 100 * 14 / 1360, 100 * 20 / 1960, 100 * 20 / 1960]
    assert np.allclose(champion.get_ydata(), champion_rates)
    ceiling = [line for line in error_axes.get_lines() if line.get_label() == "ceiling"]
    assert list(ceiling[0].get_ydata()) == [5.0, 5.0]
    p99 = {line.get_label() for line in p99_axes.get_lines()}
    assert {label for label in p99 if not label.startswith("_")} == {"canary", "champion"}
    # Two advances, the rollback and the serving restart are marked; "started" and holds not.
    labels = sorted(text.get_text() for text in weight_axes.texts)
    assert labels == ["100%", "25%", "restart", "rollback"]
    marked = sorted(line.get_xdata()[0] for line in weight_axes.get_lines()[1:])
    assert marked == [1.0, 1.25, 2.0, 2.5]
    assert p99_axes.get_xlabel() == "minutes since the canary started"
    png = png_bytes(figure)
    assert _decoded(png).shape[:2] == (414, 540)
    assert len(png) < 60_000  # small enough to inline in every observation


def test_without_latency_the_timeline_has_two_panels_and_a_single_tick_draws():
    (tick,) = [replace(t, canary_p99_seconds=None, champion_p99_seconds=None) for t in _ticks()[:1]]
    figure = canary_timeline_figure([tick])
    assert len(figure.axes) == 2
    assert figure.axes[-1].get_xlabel() == "seconds since the canary started"
    _decoded(png_bytes(figure))
    with pytest.raises(ValueError, match="at least one tick"):
        canary_timeline_figure([])


def test_a_tick_comes_from_a_decision_and_survives_json():
    plan = CanaryPlan(min_requests=10, min_dwell_seconds=0)
    state = initial_state(plan, NAME, "2", "1", T0)
    baseline = decide(plan, state, {"canary": ArmCounts(0), "champion": ArmCounts(100)}, T0 + 10)
    scrape = {"canary": ArmCounts(50, 1), "champion": ArmCounts(1100, 10)}
    decision = decide(plan, baseline.new_state, scrape, T0 + 40)
    tick = CanaryTick.from_decision(decision)
    assert (tick.action, tick.weight_before, tick.weight, tick.time) == (
        "advance",
        0.05,
        0.25,
        T0 + 40,
    )
    assert (tick.canary_requests, tick.canary_errors) == (50, 1)
    assert (tick.champion_requests, tick.champion_errors) == (1000, 10)
    assert CanaryTick.from_dict(json.loads(json.dumps(tick.to_dict()))) == tick


# --- ROC and PSI figures -----------------------------------------------------------------------


def test_the_roc_legend_carries_each_auc_with_its_ci_and_the_psi_chart_its_thresholds():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 400)
    curves = {
        "challenger v2": (
            labels + rng.normal(0, 0.8, 400),
            AucEstimate(0.81, 0.02, 0.77, 0.85, 1, 1),
        ),
        "champion v1": (
            labels + rng.normal(0, 1.2, 400),
            AucEstimate(0.71, 0.02, 0.67, 0.75, 1, 1),
        ),
    }
    legend = [t.get_text() for t in roc_figure(labels, curves).axes[0].get_legend().get_texts()]
    assert legend == ["challenger v2: 0.810 [0.770, 0.850]", "champion v1: 0.710 [0.670, 0.750]"]
    chart = psi_bar_chart({"tenure": 0.05, "monthly_spend": 0.3}, watch=0.1, drift=0.2)
    lines = {line.get_label(): line.get_xdata()[0] for line in chart.axes[0].get_lines()}
    assert lines == {"watch 0.1": 0.1, "drift 0.2": 0.2}
    _decoded(png_bytes(chart))


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


def _tick(instance, uri: str, url: str):
    """One canary_sensor evaluation; its observation is recorded as the daemon would."""
    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "dataset": DatasetResource(),  # synthetic_churn: the model is NAME
            "mlflow_tracking": MLflowResource(tracking_uri=uri),
            "deployment": DeploymentPolicy(serving_url=url),
        },
    )
    result = canary_sensor(context)
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
        _decoded(_inline_png(first["timeline"].value))
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
    png = _inline_png(third["timeline"].value)
    assert len(png) < 60_000
    _decoded(png)
    assert third["timeline_artifact"].value == f"runs:/{run_id}/{TIMELINE_ARTIFACT}"
    assert _artifacts(client, run_id) == {TIMELINE_ARTIFACT, "canary/timeline.json"}
    assert _logged_ticks(client, run_id, tmp_path) == ["hold", "advance", "promote"]
    logged = client.download_artifacts(run_id, TIMELINE_ARTIFACT, str(tmp_path))
    with open(logged, "rb") as picture:
        _decoded(picture.read())
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
    _decoded(_inline_png(rolled_back["timeline"].value))  # the UI still has the picture
    assert load_state(client, NAME).status == "rolled_back"


# --- evaluation and drift report, through a real retrain ----------------------------------------


def test_evaluation_shows_the_roc_with_its_ci_and_the_slices_and_drift_logs_its_chart(
    platform, instance, monkeypatch
):
    import mlplatform.defs.evaluation.assets as evaluation_assets

    drawn = []

    def recording_roc_figure(*args, **kwargs):
        drawn.append(roc_figure(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(evaluation_assets, "roc_figure", recording_roc_figure)
    result = retrain(platform, instance)
    assert result.success
    challenger = result.asset_value("evaluation").challenger
    (figure,) = drawn
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == [
        f"challenger v1: {challenger.auc:.3f} [{challenger.low:.3f}, {challenger.high:.3f}]"
    ]
    record = instance.get_latest_materialization_event(dg.AssetKey("evaluation"))
    metadata = record.asset_materialization.metadata
    _decoded(_inline_png(metadata["decision"].value))
    slices = metadata["slices"].value.splitlines()
    assert slices[0].startswith("| slice | rows | pos/neg | AUC [95% CI] |")
    assert slices[1].startswith("| --- |") and slices[2].startswith("| ")

    # A new day: the drift report's chart is in the UI and on the champion's run in MLflow.
    assert all(run.success for run in load_days(platform, instance, ["2026-03-05"]))
    resources = platform.resources()
    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "dataset": resources["dataset"],
            "mlflow_tracking": resources["mlflow_tracking"],
            "drift": DriftPolicy(),
        },
    )
    (report,) = psi_drift_sensor(context).asset_events
    _decoded(_inline_png(report.metadata["chart"].value))
    run_id = result.asset_value("challenger_model").run_id
    assert report.metadata["chart_artifact"].value == f"runs:/{run_id}/drift/2026-03-05/psi.png"
    client = MlflowClient(platform.tracking_uri, platform.tracking_uri)
    logged = {a.path for a in client.list_artifacts(run_id, "drift/2026-03-05")}
    assert logged == {"drift/2026-03-05/psi.png", "drift/2026-03-05/psi.md"}
