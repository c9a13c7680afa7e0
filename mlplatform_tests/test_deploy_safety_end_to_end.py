"""Deploy safety with the real pieces: `mlplatform serve` killed (SIGKILL) mid-canary and
restarted, the controller restarted as a fresh process; and leases, racing approvals and the
canary state's size on an MLflow registry backed by PostgreSQL (127.0.0.1:5432)."""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import httpx
import psycopg2
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from psycopg2 import sql

from mlplatform.datasets.synthetic import generate_batch
from mlplatform.defs.deployment.sensors import _tick_canary
from mlplatform.deployment.approvals import (
    GATE_TAG_PREFIX,
    RECORD_TAG,
    REQUIRED_GATES,
    TRIGGERED_BY_TAG,
)
from mlplatform.deployment.canary import Decision, event
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import STATE_TAG, apply, load_state, start_canary
from mlplatform.ml.registry import CHAMPION, promote_to_champion, version_for_alias
from mlplatform_tests.conftest import retrain
from mlplatform_tests.test_approval_races import _approve_in_process
from mlplatform_tests.test_locks import _contend_in_process

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
MODEL = "mlplatform-synthetic_churn"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(env: dict, cwd: Path, port: int) -> subprocess.Popen:
    log = (cwd / f"serve-{port}-{time.monotonic_ns()}.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "mlplatform"), "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    _wait_for_health(process, port, canary_version="2")
    return process


def _wait_for_health(process: subprocess.Popen, port: int, **expected) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, "mlplatform serve exited"
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).json()
            if all(health.get(k) == v for k, v in expected.items()):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"mlplatform serve on {port} never reported {expected}")


def _traffic(url: str, count: int, seed: int) -> dict[str, int]:
    """One request per customer; returns successful requests per arm."""
    frame = generate_batch(date(2026, 6, 1), count, seed=seed).drop(columns=["churned"])
    for column in ("signup_date", "snapshot_date"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    arms: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for row in frame.to_dict(orient="records"):
            response = client.post("/invocations", json={"dataframe_records": [row]})
            assert response.status_code == 200, response.text
            arm = response.headers["X-Model-Arm"]
            arms[arm] = arms.get(arm, 0) + 1
    return arms


def _restarted_controller_tick(env: dict, url: str) -> str:
    """One canary_sensor tick in a fresh process, as a restarted daemon runs it."""
    code = "from mlplatform.lifecycle import tick_sensor\nprint(tick_sensor('canary_sensor'))\n"
    env = {**env, "MLPLATFORM_SERVING_URL": url}
    env.pop("MLFLOW_REGISTRY_URI", None)  # the platform's tracking URI is its registry too
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.fault
def test_serving_killed_mid_canary_and_a_restarted_controller_resume_it(
    platform, instance, subprocess_env
):
    assert retrain(platform, instance).success and retrain(platform, instance).success
    client = platform.resources()["mlflow_tracking"].client()
    client.set_registered_model_alias(MODEL, CHAMPION, "1")  # v2 is the canary, whatever won
    plan = CanaryPlan(steps=(0.5, 1.0), min_requests=30, min_dwell_seconds=0)
    start_canary(client, MODEL, "2", plan)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start_server(subprocess_env, platform.root, port)
    try:
        assert _tick_canary(client, MODEL, url).action == "hold"  # baseline
        before = _traffic(url, 20, seed=1).get("canary", 0)
        assert _tick_canary(client, MODEL, url).action == "hold"
        assert load_state(client, MODEL).step_counts["canary"].requests == before

        server.kill()  # SIGKILL mid-canary: its counters are gone
        server.wait(timeout=60)
        server = _start_server(subprocess_env, platform.root, port)
        after = _traffic(url, 10, seed=2).get("canary", 0)
        said = _restarted_controller_tick(subprocess_env, url)
        state = load_state(client, MODEL)
        # Resumed at its step with its counts (the restart's zeroed counters are an increase,
        # not negative traffic), and not promoted: 30 canary requests are needed.
        assert (state.status, state.step, state.weight) == ("running", 0, 0.5), said
        assert state.step_counts["canary"].requests == before + after < 30
        assert "counter_reset" in [e["event"] for e in state.history]
        assert version_for_alias(client, MODEL, CHAMPION) == "1"

        for seed in range(3, 20):
            _traffic(url, 40, seed=seed)
            decision = _tick_canary(client, MODEL, url)
            if decision.action in ("promote", "rollback"):
                break
        assert decision.action == "promote", decision.reason
        # Each of the two steps saw its 30 canary requests after the restart, none invented.
        totals = load_state(client, MODEL).total_counts["canary"].requests
        assert totals >= before + after + 30 + 30
        assert version_for_alias(client, MODEL, CHAMPION) == "2"
    finally:
        server.kill()
        server.wait(timeout=60)


@contextmanager
def _postgres_registry() -> Iterator[str]:
    """An MLflow registry in a fresh PostgreSQL database, dropped afterwards."""
    name = f"mlplatform_test_locks_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cursor.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        admin.close()


def _spawn(target, *args) -> list[multiprocessing.Process]:
    context = multiprocessing.get_context("spawn")
    return [context.Process(target=target, args=a) for a in args]


@pytest.mark.production_storage
@pytest.mark.fault
def test_on_postgres_leases_and_approvals_race_safely_and_the_state_fits_its_tag(tmp_path):
    with _postgres_registry() as uri:
        client = MlflowClient(uri, uri)
        client.create_registered_model(MODEL)
        for version in ("1", "2"):
            client.create_model_version(MODEL, (tmp_path / version).as_uri())
            for key, value in (("decision", "PROMOTE"), (TRIGGERED_BY_TAG, "carol")):
                client.set_model_version_tag(MODEL, version, key, value)
            for gate in REQUIRED_GATES:
                client.set_model_version_tag(MODEL, version, GATE_TAG_PREFIX + gate, "passed")
        context = multiprocessing.get_context("spawn")

        barrier, done, results = context.Barrier(2), context.Event(), context.Queue()
        racers = _spawn(_contend_in_process, *[(uri, barrier, done, results)] * 2)
        for racer in racers:
            racer.start()
        outcomes = sorted(results.get(timeout=300)[0] for _ in racers)
        done.set()
        for racer in racers:
            racer.join(timeout=120)
        assert outcomes == ["conflict", "won"]

        barrier, results = context.Barrier(2), context.Queue()
        deciders = _spawn(
            _approve_in_process,
            (uri, "alice", barrier, results),
            (uri, "bob", barrier, results),
        )
        for decider in deciders:
            decider.start()
        decided = dict(results.get(timeout=300) for _ in deciders)
        for decider in deciders:
            decider.join(timeout=120)
        assert sorted(o.split(":")[0] for o in decided.values()) == ["conflict", "recorded"]
        record = json.loads(client.get_model_version(MODEL, "1").tags[RECORD_TAG])
        assert len(record["history"]) == 1

        # PostgreSQL enforces the 5,000-character registered-model tag limit ...
        with pytest.raises(MlflowException):
            client.set_registered_model_tag(MODEL, "probe", "x" * 5001)
        # ... and a canary with a long timeline still fits, keeping its newest events.
        promote_to_champion(client, MODEL, "1")
        state = start_canary(client, MODEL, "2", CanaryPlan())
        noisy = tuple(event(1.0 + i, "counter_reset", note="x" * 120) for i in range(100))
        long = replace(state, history=noisy, updated_at=state.updated_at + 1)
        persisted = apply(client, MODEL, Decision("hold", "restarts", {}, long, state))
        assert persisted.history[-1] == noisy[-1]
        assert len(client.get_registered_model(MODEL).tags[STATE_TAG]) <= 5000
