"""The release half of ``mlplatform demo``: a real server, a canary, a broken release, rollback.

Everything goes through the platform's own parts: ``mlplatform serve`` in a subprocess, the
gated ``deployed_model`` starting the canary, ``canary_sensor`` ticks deciding each step, the
registry holding the state, and ``roll_back`` for the manual rollback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

# Fast enough for a demo; production keeps the defaults (200 requests, 60 s per step).
DEMO_CANARY = {"MLPLATFORM_CANARY_MIN_REQUESTS": "60", "MLPLATFORM_CANARY_MIN_DWELL_SECONDS": "2"}


# MLflow warns at class creation that predict has no type hints; this demo model needs none.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)

    class FailsOnOneCategory(mlflow.pyfunc.PythonModel):
        """A bad release: the champion's pipeline, except that it crashes on one category value."""

        def __init__(self, column: str, value: str):
            self.column, self.value = column, value

        def load_context(self, context):
            import mlflow.sklearn

            self.pipeline = mlflow.sklearn.load_model(context.artifacts["pipeline"])

        def predict(self, context, model_input, params=None):
            if (model_input[self.column] == self.value).any():
                raise ValueError(f"unhandled {self.column} {self.value!r}")
            return self.pipeline.predict_proba(model_input)


def broken_category(spec) -> tuple[str, str]:
    """The category the broken release crashes on: the first value of the first category."""
    column = spec.features.categorical[0]
    return column, str(spec.columns[column].domain[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(log_dir: Path):
    """``mlplatform serve`` on a free loopback port until the block ends; yields its URL."""
    import httpx

    port = _free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "serve.log"
    command = [str(Path(sys.executable).parent / "mlplatform"), "serve", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"mlplatform serve did not become healthy; see {log}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def request_rows(holdout: pd.DataFrame, spec) -> list[dict]:
    """Holdout customers as clients send them: JSON-typed raw columns plus the id."""
    from mlplatform.ml.training import model_input

    frame = model_input(holdout, spec)
    frame.insert(0, spec.id_column, holdout[spec.id_column].astype(str).to_numpy())
    return frame.to_dict(orient="records")


def send_traffic(url: str, rows: list[dict], start: int, count: int) -> dict[str, int]:
    """``count`` single-customer requests; returns answers per arm and status."""
    import httpx

    tally: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(start, start + count):
            response = client.post(
                "/invocations", json={"dataframe_records": [rows[i % len(rows)]]}
            )
            key = f"{response.headers.get('X-Model-Arm', 'none')} {response.status_code}"
            tally[key] = tally.get(key, 0) + 1
    return tally


def drive_canary(client, name: str, url: str, rows: list[dict], rounds: int = 40):
    """Traffic, then one ``canary_sensor`` tick, until the canary is promoted or rolled back."""
    from mlplatform.deployment.canary_state import load_state
    from mlplatform.lifecycle import tick_sensor

    sent = 0
    for _ in range(rounds):
        tick = tick_sensor("canary_sensor")
        state = load_state(client, name)
        print(f"    weight {state.weight:>4.0%}  {state.status:<11} {tick.skip_reason}")
        if state.status != "running":
            return state
        tally = send_traffic(url, rows, sent, 250)
        sent += 250
        print(f"    {250} requests: " + ", ".join(f"{k} x{v}" for k, v in sorted(tally.items())))
    raise RuntimeError(f"canary of {name} still running after {rounds} rounds")


def register_broken_release(client, name: str, column: str, value: str) -> str:
    """Registers the champion's pipeline wrapped to crash on one category; returns the version."""
    from mlplatform.ml.integrity import record_artifact_digest
    from mlplatform.ml.registry import CHAMPION, version_for_alias

    champion = version_for_alias(client, name, CHAMPION)
    source = f"models:/{name}/{champion}"
    signature = mlflow.models.get_model_info(source).signature
    with mlflow.start_run(run_name="demo-broken-release"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FailsOnOneCategory(column, value),
            artifacts={"pipeline": source},
            signature=signature,
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    # Registered by hand, not by log_and_register: serving loads it only with its digest.
    record_artifact_digest(client, name, version)
    return version


def demo_plan():
    """The demo's short canary steps, as a plan."""
    from mlplatform.deployment.canary_plan import CanaryPlan

    return CanaryPlan(
        min_requests=int(DEMO_CANARY["MLPLATFORM_CANARY_MIN_REQUESTS"]),
        min_dwell_seconds=float(DEMO_CANARY["MLPLATFORM_CANARY_MIN_DWELL_SECONDS"]),
    )


def serving_url() -> str:
    return os.environ.get("MLPLATFORM_SERVING_URL", "")
