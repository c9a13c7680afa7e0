"""A canary end to end: `mlplatform serve` on loopback, the gated deployed_model starting the
canary, canary_sensor promoting it step by step, a broken canary rolled back automatically, and
`mlplatform rollback` served within 5 s."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import httpx
import mlflow
import numpy as np
import pytest

from mlplatform.datasets.synthetic import generate_batch
from mlplatform.defs.deployment.sensors import canary_sensor
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import OUTCOME_TAG, REASON_TAG, load_state, start_canary
from mlplatform.ml.integrity import record_artifact_digest
from mlplatform_tests.conftest import aliases, retrain

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
MODEL = "mlplatform-synthetic_churn"
FAST_CANARY = {"canary_min_requests": "40", "canary_min_dwell_seconds": "0"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _server(env: dict[str, str], cwd: Path):
    port = _free_port()
    log = (cwd / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "mlplatform"), "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (cwd / f"serve-{port}.log").read_text()[-3000:]
            time.sleep(0.2)
        else:
            raise AssertionError("mlplatform serve did not become healthy in 120 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _rows(count: int, seed: int) -> list[dict]:
    frame = generate_batch(date(2026, 6, 1), count, seed=seed).drop(columns=["churned"])
    for column in ("signup_date", "snapshot_date"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    return frame.to_dict(orient="records")


def _traffic(url: str, count: int, seed: int) -> dict[str, int]:
    """One request per customer; returns requests per arm (all must succeed)."""
    arms: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for row in _rows(count, seed):
            response = client.post("/invocations", json={"dataframe_records": [row]})
            arm = response.headers.get("X-Model-Arm", "none")
            arms[arm] = arms.get(arm, 0) + (response.status_code == 200)
    return arms


def _tick(platform, instance, url: str):
    resources = platform.resources(deployment={"serving_url": url, **FAST_CANARY})
    context = dg.build_sensor_context(
        instance=instance,
        resources={k: resources[k] for k in ("dataset", "mlflow_tracking", "deployment")},
    )
    return canary_sensor(context)


def _broken_model() -> mlflow.pyfunc.PythonModel:
    """A release that answers NaN: every canary request is an invalid output."""

    # Defined here so cloudpickle stores the class itself: the server cannot import tests.
    class BrokenModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return np.full((len(model_input), 2), np.nan)

    return BrokenModel()


def test_a_gated_canary_is_promoted_step_by_step_and_a_broken_one_rolled_back(
    platform, instance, subprocess_env
):
    # Champion v1: a deliberately weak model (promoted directly: no serving process yet).
    weak = {"max_iter": 5, "learning_rate": 0.01}
    assert retrain(platform, instance, training=weak, min_auc="0.5").success
    client = platform.resources()["mlflow_tracking"].client()
    with _server(subprocess_env, platform.root) as url:
        # The challenger beats it through every gate, serving parity is checked against the
        # running server, and deployed_model starts the canary.
        deployment = {"serving_url": url, **FAST_CANARY}
        assert retrain(platform, instance, deployment=deployment, min_auc="0.5").success
        record = instance.get_latest_materialization_event(dg.AssetKey("deployed_model"))
        assert record.asset_materialization.metadata["status"].value == "canary"
        state = load_state(client, MODEL)
        assert (state.version, state.weight, state.status) == ("2", 0.05, "running")

        weights = []
        for round_number in range(12):
            _tick(platform, instance, url)
            state = load_state(client, MODEL)
            weights.append(state.weight)
            if state.status != "running":
                break
            _traffic(url, 400, seed=round_number)
        assert state.status == "promoted", state.history[-3:]
        assert {0.05, 0.25, 1.0} <= set(weights), weights
        registry = aliases(platform, MODEL)
        assert (registry["champion"], registry["previous"]) == ("2", "1")
        assert client.get_model_version(MODEL, "2").tags[OUTCOME_TAG] == "promoted"

        # A broken release: the controller sees its errors and rolls it back by itself.
        signature = client.get_model_version(MODEL, "2")
        with mlflow.start_run():
            broken = mlflow.pyfunc.log_model(
                name="model",
                python_model=_broken_model(),
                registered_model_name=MODEL,
                signature=mlflow.models.get_model_info(signature.source).signature,
            )
        version = str(broken.registered_model_version)
        # Registered by hand, not by log_and_register: serving loads it only with its digest.
        record_artifact_digest(client, MODEL, version)
        start_canary(client, MODEL, version, CanaryPlan(min_requests=40, min_dwell_seconds=0))
        for round_number in range(8):
            _traffic(url, 300, seed=100 + round_number)
            _tick(platform, instance, url)
            state = load_state(client, MODEL)
            if state.status != "running":
                break
        assert state.status == "rolled_back", state.history[-3:]
        tags = client.get_model_version(MODEL, version).tags
        assert tags[OUTCOME_TAG] == "rolled_back" and "error" in tags[REASON_TAG]
        assert aliases(platform, MODEL)["champion"] == "2"
        # The server picks the rollback up on its next registry poll (every 0.5 s).
        time.sleep(1.0)
        health = httpx.get(f"{url}/health").json()
        assert health["canary_weight"] == 0 and health["champion_version"] == "2"

        # One command back to v1, served end to end within 5 s.
        rolled = subprocess.run(
            [str(BIN / "mlplatform"), "rollback", "--reason", "test", "--by", "oncall"],
            cwd=platform.root,
            env={**subprocess_env, "MLPLATFORM_SERVING_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        seconds = float(re.search(r"serves v1: ([0-9.]+) s end to end", rolled.stdout).group(1))
        assert seconds < 5.0, rolled.stdout
        assert httpx.get(f"{url}/health").json()["champion_version"] == "1"
        scores = _traffic(url, 20, seed=999)
        assert scores.get("champion") == 20
