"""The platform ``benchmarks/serving.py`` serves, and its server subprocesses.

An isolated platform built the way the tests build it (``mlplatform_tests/conftest.py``):
champion v1 and a canary of v2 at ``CANARY_WEIGHT``, plus the synthetic request rows both
servers answer; ``running`` keeps one server subprocess up for a ``with`` block.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
CANARY_WEIGHT = 0.25
DISTINCT_ROWS = 500


def build_platform(root: Path) -> tuple[dict[str, str], str, list[dict]]:
    """An isolated platform with champion v1 and a running canary of v2; its env, model name and
    request rows."""
    sys.path.insert(0, str(REPO_ROOT / "mlplatform_tests"))
    import dagster as dg
    from conftest import TEST_DAYS, isolated_platform, load_days, retrain, write_spec
    from mlflow import MlflowClient

    from mlplatform.datasets.spec import load_spec
    from mlplatform.datasets.synthetic import generate_batch
    from mlplatform.demo_release import request_rows
    from mlplatform.deployment.canary_plan import CanaryPlan
    from mlplatform.deployment.canary_state import start_canary
    from mlplatform.ml.registry import CHAMPION, version_for_alias

    spec_path = write_spec(root, top={"training_window_days": len(TEST_DAYS)})
    platform = isolated_platform(root, spec_path)
    os.environ.update(platform.env)
    logging.disable(logging.INFO)  # Dagster's step-by-step run log
    try:
        with dg.instance_for_test() as instance:
            if not all(run.success for run in load_days(platform, instance)):
                raise RuntimeError("loading the synthetic days failed")
            for _ in range(2):
                if not retrain(platform, instance).success:
                    raise RuntimeError("retraining failed")
    finally:
        logging.disable(logging.NOTSET)
    spec = load_spec(str(spec_path))
    name = f"mlplatform-{spec.name}"
    client = MlflowClient(tracking_uri=platform.tracking_uri, registry_uri=platform.tracking_uri)
    if version_for_alias(client, name, CHAMPION) != "1":
        raise RuntimeError(f"expected v1 as champion of {name}")
    start_canary(client, name, "2", CanaryPlan(steps=(CANARY_WEIGHT, 1.0)))
    batch = generate_batch(date(2026, 3, 10), DISTINCT_ROWS, seed=7)
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in request_rows(batch, spec)
    ]
    return dict(platform.env), name, rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path, ready_path: str):
    """A server subprocess until the block ends; yields its URL once ``ready_path`` answers 200."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-3000:]
                raise RuntimeError(f"{' '.join(command[:3])} did not start:\n{tail}")
            try:
                if httpx.get(url + ready_path, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
