"""The serving app against real registered models: scoring, errors, metrics, live alias moves."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date

import dagster as dg
import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from mlplatform.datasets.synthetic import generate_batch
from mlplatform.deployment.parity import compare_environments, training_environment
from mlplatform.ml.registry import promote_to_champion
from mlplatform.serving.app import ServingSettings, create_app
from mlplatform.serving.routing import arm_for
from mlplatform.serving.slot_state import CANARY_TAG
from mlplatform_tests.conftest import TEST_DAYS, isolated_platform, load_days, retrain, write_spec

MODEL = "mlplatform-synthetic_churn"
SALT = "serving-test"


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    client: MlflowClient


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """One trained platform for the module: v1 champion and v2 (same data) registered."""
    root = tmp_path_factory.mktemp("serving")
    platform = isolated_platform(root, write_spec(root, top={"training_window_days": 4}))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in platform.env.items():
            patch.setenv(key, value)
        # The app sets MLflow's process-global URIs (and their env vars): undone below.
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        with dg.instance_for_test() as instance:
            assert all(run.success for run in load_days(platform, instance, TEST_DAYS))
            assert retrain(platform, instance).success
            assert retrain(platform, instance).success
        uri = platform.tracking_uri
        yield Registry(uri, MlflowClient(tracking_uri=uri, registry_uri=uri))
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@pytest.fixture
def registry_state(registry):
    """Champion v1, no previous, no canary: every test starts from the same registry."""
    client = registry.client
    client.set_registered_model_alias(MODEL, "champion", "1")
    for alias in ("previous", "canary"):
        client.delete_registered_model_alias(MODEL, alias)
    if CANARY_TAG in client.get_registered_model(MODEL).tags:
        client.delete_registered_model_tag(MODEL, CANARY_TAG)
    return registry


@pytest.fixture
def serving(registry_state):
    settings = ServingSettings(
        tracking_uri=registry_state.tracking_uri,
        model_name=MODEL,
        id_column="customer_id",
        max_rows=50,
        max_bytes=100_000,
        salt=SALT,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _rows(n: int = 20) -> list[dict]:
    raw = generate_batch(date(2026, 6, 1), n, seed=7).drop(columns=["churned"])
    return json.loads(raw.to_json(orient="records", date_format="iso", date_unit="s"))


def _post(client, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/invocations", content=data, headers={"Content-Type": content_type})


def _metric(client, name: str, **labels) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _wait_for(client, timeout: float, **expected) -> float:
    """Seconds until /health shows ``expected``; fails after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        health = client.get("/health").json()
        if all(health[key] == value for key, value in expected.items()):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"/health still {health} after {timeout}s, expected {expected}")


def test_health_reports_the_served_versions_and_the_training_environment(serving, registry):
    response = serving.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["model_name"] == MODEL
    assert (health["champion_version"], health["previous_version"]) == ("1", None)
    assert (health["canary_version"], health["canary_weight"]) == (None, 0.0)
    for name in ("python", "scikit-learn", "numpy", "pandas", "scipy", "mlflow"):
        assert health["environment"][name][0].isdigit(), name
    assert "fastapi" in health["serving_stack"]
    # What the deploy gate does with it: same keys and versions as the training run.
    run_id = registry.client.get_model_version(MODEL, "1").run_id
    trained = training_environment(registry.client.get_run(run_id).data.tags)
    assert compare_environments(trained, health["environment"]) == []


def test_all_three_formats_score_like_the_model_itself(serving):
    rows = _rows()
    columns = list(rows[0])
    bodies = [
        {"dataframe_records": rows},
        {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}},
        {"inputs": rows},
    ]
    answers = [_post(serving, body) for body in bodies]
    assert [a.status_code for a in answers] == [200] * 3
    assert {(a.headers["X-Model-Version"], a.headers["X-Model-Arm"]) for a in answers} == {
        ("1", "champion")
    }
    predictions = [a.json()["predictions"] for a in answers]
    assert predictions[0] == predictions[1] == predictions[2]
    model = serving.app.state.slots.snapshot().champion.model
    frame = generate_batch(date(2026, 6, 1), 20, seed=7).drop(columns=["churned"])
    for column in ("signup_date", "snapshot_date"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    expected = np.asarray(model.predict(frame))[:, 1]
    np.testing.assert_allclose(predictions[0], expected, rtol=0, atol=1e-12)


def _with(column, value):
    rows = _rows(2)
    rows[1][column] = value
    return {"dataframe_records": rows}


@pytest.mark.parametrize(
    "body, content_type, status, code, words",
    [
        ({"inputs": []}, "text/csv", 415, "BAD_REQUEST", "application/json"),
        (b"", "application/json", 400, "BAD_REQUEST", "empty"),
        (b'{"inputs": [{"tenure_months": NaN}]}', "application/json", 400, "BAD_REQUEST", "NaN"),
        (b"\xff{}", "application/json", 400, "BAD_REQUEST", "UTF-8"),
        ({"rows": []}, "application/json", 400, "BAD_REQUEST", "exactly one key"),
        (_with("tenure_months", "long"), "application/json", 422, "INVALID_PARAMETER_VALUE",
         "'tenure_months' row 1"),
        ({"inputs": [{"tenure_months": 3}]}, "application/json", 422, "INVALID_PARAMETER_VALUE",
         "monthly_spend"),
        ({"inputs": _rows(51)}, "application/json", 413, "REQUEST_LIMIT_EXCEEDED", "51 rows"),
        (b'{"inputs": "' + b"x" * 100_001 + b'"}', "application/json", 413,
         "REQUEST_LIMIT_EXCEEDED", "limit"),
    ],
)  # fmt: skip
def test_bad_requests_get_json_errors_and_are_counted(
    serving, body, content_type, status, code, words
):
    response = _post(serving, body, content_type)
    assert response.status_code == status
    assert response.json()["error_code"] == code
    assert words in response.json()["message"]
    assert _metric(serving, "mlplatform_requests_total", status=str(status)) == 1
    assert _metric(serving, "mlplatform_errors_total") == 0  # the client's error, not ours


def test_unknown_categories_and_missing_floats_are_scored(serving):
    rows = _rows(2)
    rows[0].update(region="atlantis", monthly_spend=None, contract_type=None)
    response = _post(serving, {"inputs": rows})
    assert response.status_code == 200
    assert all(0 <= p <= 1 for p in response.json()["predictions"])


def test_metrics_count_requests_latency_and_weight_per_arm_and_version(serving):
    for _ in range(3):
        assert _post(serving, {"inputs": _rows(3)}).status_code == 200
    assert _post(serving, {"inputs": [{}]}).status_code == 422
    labels = {"arm": "champion", "model_version": "1"}
    assert _metric(serving, "mlplatform_requests_total", status="200", **labels) == 3
    assert _metric(serving, "mlplatform_requests_total", status="422", **labels) == 1
    assert _metric(serving, "mlplatform_request_latency_seconds_count", **labels) == 4
    assert _metric(serving, "mlplatform_request_latency_seconds_bucket", le="5.0", **labels) == 4
    assert _metric(serving, "mlplatform_canary_weight") == 0.0
    assert _metric(serving, "process_start_time_seconds") > 0  # lets a scraper see restarts


def test_alias_moves_and_the_canary_are_live_within_a_second(serving, registry_state):
    client = registry_state.client
    slots = serving.app.state.slots
    v1 = slots.snapshot().champion
    # A canary: v2 at 40 % of customers. v2 is not loaded yet, so this includes one load.
    client.set_registered_model_alias(MODEL, "canary", "2")
    tag = {"version": "2", "weight": 0.4, "status": "running"}
    client.set_registered_model_tag(MODEL, CANARY_TAG, json.dumps(tag))
    assert _wait_for(serving, 3.0, canary_version="2", canary_weight=0.4) < 3.0
    assert _metric(serving, "mlplatform_canary_weight") == 0.4

    rows = _rows(60)
    arms = {}
    for row in rows:
        response = _post(serving, {"dataframe_records": [row]})
        assert response.status_code == 200
        arms[row["customer_id"]] = response.headers["X-Model-Arm"]
        expected_version = "2" if arms[row["customer_id"]] == "canary" else "1"
        assert response.headers["X-Model-Version"] == expected_version
    assert arms == {i: arm_for(i, 0.4, SALT) for i in arms}  # sticky, by the id's hash
    assert 0 < list(arms.values()).count("canary") < len(arms)
    for row in rows[:10]:  # the same customer again: the same arm
        again = _post(serving, {"inputs": [row]}).headers["X-Model-Arm"]
        assert again == arms[row["customer_id"]]
    assert _metric(serving, "mlplatform_requests_total", arm="canary", model_version="2") > 0

    # Promotion: v2 champion, v1 previous; both loaded, so a pointer swap.
    promote_to_champion(client, MODEL, "2")
    tag["status"] = "promoted"
    client.set_registered_model_tag(MODEL, CANARY_TAG, json.dumps(tag))
    seconds = _wait_for(serving, 1.0, champion_version="2", previous_version="1", canary_weight=0.0)
    assert seconds < 1.0
    assert _post(serving, {"inputs": rows[:1]}).headers["X-Model-Version"] == "2"

    # Rollback: champion back to v1, the very object loaded at start.
    client.set_registered_model_alias(MODEL, "champion", "1")
    assert _wait_for(serving, 1.0, champion_version="1") < 1.0
    assert slots.snapshot().champion is v1
