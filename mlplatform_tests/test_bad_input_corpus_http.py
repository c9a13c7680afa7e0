"""The HTTP part of the bad-input corpus against the real serving app on a real socket.

One registry for the module: a pipeline trained on a validated synthetic day (the platform's own
``train_pipeline`` and ``log_and_register``, so the signature is the one serving sees in
production) registered twice, v2 champion and v1 previous. The app runs under uvicorn on
loopback with its default limits: a TestClient would hide what the HTTP server does with a
50 MB body, a chunked upload or a missing Content-Type. After each hostile request:

* the answer is JSON with the expected status, MLflow's error code for it, and a message that
  names the field, column or row (short: an error never echoes the request);
* /metrics counts the request under that status and counts no server error;
* the registry's versions, aliases and tags are unchanged, /health still serves v2 with v1 kept
  as previous, and a good request right after is scored by v2.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import mlflow
import pytest
import uvicorn
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.validation import enforce_spec
from mlplatform.ml.registry import (
    CHAMPION,
    PREVIOUS,
    ensure_experiment,
    log_and_register,
    promote_to_champion,
)
from mlplatform.ml.training import TrainingParams, churn_scores, model_input, train_pipeline
from mlplatform.serving.app import ServingSettings, create_app
from mlplatform.serving.payload import ERROR_CODES
from mlplatform_tests.bad_inputs.http_cases import HTTP_CASES, HttpCase
from mlplatform_tests.bad_inputs.state import registry_state

pytestmark = pytest.mark.bad_input

MODEL = "mlplatform-synthetic_churn"
# No error message needs more: it names a field and a row, and quotes at most a few keys.
MAX_MESSAGE_CHARS = 600


@dataclass(frozen=True)
class Server:
    url: str
    client: MlflowClient
    rows: list[dict]


def _train_and_register(tracking_uri: str, artifacts: str) -> MlflowClient:
    """v1 and v2 of the platform's pipeline on one validated day; v2 champion, v1 previous."""
    spec = load_spec("synthetic_churn")
    rows, report = enforce_spec(generate_batch(date(2026, 3, 1), 1000, seed=3), spec, "day")
    assert report.ok, report.summary()
    pipeline = train_pipeline(rows, spec, TrainingParams(max_iter=20))
    example = model_input(rows, spec).head(5)
    experiment = ensure_experiment("bad-input-corpus", artifacts)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment):
            registered = log_and_register(pipeline, example, churn_scores(pipeline, example), MODEL)
        promote_to_champion(client, MODEL, registered.version)
    return client


def _good_rows() -> list[dict]:
    frame = generate_batch(date(2026, 6, 1), 3, seed=7).drop(columns=["churned"])
    for column in ("signup_date", "snapshot_date"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    spec = load_spec("synthetic_churn")
    # Model inputs and the routing id, as a client sends them (JSON types).
    columns = [spec.id_column, *spec.features.input_columns]
    return json.loads(frame[columns].to_json(orient="records"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """The serving app under uvicorn on a free loopback port, over a fresh registry."""
    root = tmp_path_factory.mktemp("http_corpus")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        # MLflow's URIs are process-global (and mirrored in env vars): undone below.
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            client = _train_and_register(uri, str(root / "artifacts"))
            settings = ServingSettings(tracking_uri=uri, model_name=MODEL, id_column="customer_id")
            config = uvicorn.Config(
                create_app(settings), host="127.0.0.1", port=0, log_level="warning"
            )
            uvicorn_server = uvicorn.Server(config)
            thread = threading.Thread(target=uvicorn_server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 60
            while not uvicorn_server.started:
                assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
            port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
            try:
                yield Server(f"http://127.0.0.1:{port}", client, _good_rows())
            finally:
                uvicorn_server.should_exit = True
                thread.join(timeout=30)
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


def _metrics(url: str) -> dict[tuple[str, tuple], float]:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
        if sample.name in ("mlplatform_requests_total", "mlplatform_errors_total")
    }


def _count(metrics: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in metrics.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def _send(url: str, case: HttpCase, rows: list[dict]) -> httpx.Response:
    body = case.body(rows)
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    # An iterator makes httpx send Transfer-Encoding: chunked, with no Content-Length.
    content = (body[i : i + 2**16] for i in range(0, len(body), 2**16)) if case.chunked else body
    with httpx.Client(timeout=60.0) as http:
        return http.post(f"{url}/invocations", content=content, headers=headers)


def _scores(response: httpx.Response, rows: int) -> list[float]:
    predictions = response.json()["predictions"]
    assert len(predictions) == rows and all(0.0 <= p <= 1.0 for p in predictions)
    return predictions


def test_the_registry_holds_both_good_versions_with_their_aliases(server):
    # What the per-case checks compare against: v2 champion, v1 previous, both ready.
    state = registry_state(server.client, MODEL)
    assert state["aliases"] == {CHAMPION: "2", PREVIOUS: "1"}
    assert {v: status for v, (status, _, _) in state["versions"].items()} == {
        "1": "READY",
        "2": "READY",
    }


@pytest.mark.parametrize("case", HTTP_CASES.values(), ids=HTTP_CASES.keys())
def test_a_hostile_request_gets_a_clear_answer_and_changes_nothing(server, case):
    registry_before = registry_state(server.client, MODEL)
    metrics_before = _metrics(server.url)

    response = _send(server.url, case, server.rows)

    assert response.status_code == case.status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    if case.status == 200:
        _scores(response, len(server.rows))
    else:
        assert answer["error_code"] == ERROR_CODES.get(case.status, "BAD_REQUEST")
        message = answer["message"]
        assert len(message) <= MAX_MESSAGE_CHARS, message[:MAX_MESSAGE_CHARS]
        for fragment in case.says:
            assert fragment in message, message
    # Counted as the client's error (or success), never as the server's.
    metrics = _metrics(server.url)
    status = str(case.status)
    requests = "mlplatform_requests_total"
    assert (
        _count(metrics, requests, status=status)
        == _count(metrics_before, requests, status=status) + 1
    )
    assert _count(metrics, requests) == _count(metrics_before, requests) + 1
    assert _count(metrics, "mlplatform_errors_total") == 0
    # Nothing changed: the registry, what is served, and a good request is still scored.
    assert registry_state(server.client, MODEL) == registry_before
    health = httpx.get(f"{server.url}/health").json()
    assert (health["status"], health["champion_version"], health["previous_version"]) == (
        "ok",
        "2",
        "1",
    )
    good = httpx.post(f"{server.url}/invocations", json={"dataframe_records": server.rows})
    assert good.status_code == 200 and good.headers["X-Model-Version"] == "2"
    _scores(good, len(server.rows))
