"""A retrain killed with SIGKILL (issue 7): the dagster CLI materialising challenger_model in its
own process group, killed while the estimator fits and again after the artefacts were logged
but before the version was registered. Neither leaves a registered version, an alias moved or
a successful run behind; the next run registers exactly one version.

The kill points are made deterministic from outside the product: a ``sitecustomize`` module on
the child's PYTHONPATH (written by this test) makes the child write a marker file and block at
the chosen point; the test waits for the marker, then kills the process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest
from mlflow import MlflowClient

from mlplatform.lifecycle import ensure_dagster_home
from mlplatform.ml.integrity import verify_model_version
from mlplatform.ml.registry import CHAMPION, promote_to_champion
from mlplatform_tests.conftest import _lifecycle, aliases, load_days

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
MODEL = "mlplatform-synthetic_churn"
BLOCK_AT, MARKER = "MLPLATFORM_TEST_BLOCK_AT", "MLPLATFORM_TEST_BLOCK_MARKER"

# Imported by the child's interpreter at start-up (site imports ``sitecustomize``). Test-only.
SITECUSTOMIZE = f'''
import os
import threading
from pathlib import Path

_POINT, _MARKER = os.environ.get("{BLOCK_AT}"), os.environ.get("{MARKER}")


def _block(detail):
    Path(_MARKER).write_text(detail)
    threading.Event().wait()  # until the test kills this process


if _POINT == "fit":
    from sklearn.ensemble import HistGradientBoostingClassifier

    def _fit(self, *args, **kwargs):
        import mlflow

        _block(mlflow.active_run().info.run_id)

    HistGradientBoostingClassifier.fit = _fit
elif _POINT == "register":
    # log_model calls this after the artefacts are logged, to create the model version.
    import mlflow.tracking._model_registry.fluent as _fluent

    def _register_model(model_uri, *args, **kwargs):
        import mlflow

        _block(mlflow.active_run().info.run_id + " " + model_uri)

    _fluent._register_model = _register_model
'''


def _materialize_challenger(env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    command = [
        str(BIN / "dagster"),
        *("asset", "materialize", "-m", "mlplatform.definitions", "--select", "challenger_model"),
    ]
    with log.open("w") as out:
        # Its own process group and session: the kill reaches every process it started.
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for(marker: Path, process: subprocess.Popen, log: Path, timeout=300.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text():
            return marker.read_text()
        if process.poll() is not None:
            break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"the child never reached its kill point:\n{log.read_text()[-4000:]}")


def _registry(platform) -> tuple[MlflowClient, list[str]]:
    client = MlflowClient(tracking_uri=platform.tracking_uri, registry_uri=platform.tracking_uri)
    found = client.search_model_versions(f"name = '{MODEL}'")
    return client, [str(v) for v in sorted(int(v.version) for v in found)]


def _kill_at(point: str, platform, subprocess_env, tmp_path) -> list[str]:
    """Runs the CLI until it blocks at ``point``, SIGKILLs its group; returns the marker's words."""
    inject = tmp_path / f"inject-{point}"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    marker, log = tmp_path / f"{point}.marker", tmp_path / f"{point}.log"
    env = {**subprocess_env, "PYTHONPATH": str(inject), BLOCK_AT: point, MARKER: str(marker)}
    process = _materialize_challenger(env, platform.root, log)
    detail = _wait_for(marker, process, log)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    return detail.split()


@pytest.mark.fault
def test_a_retrain_killed_mid_fit_or_before_registration_leaves_nothing_and_the_next_succeeds(
    platform, subprocess_env, tmp_path
):
    ensure_dagster_home(Path(platform.env["DAGSTER_HOME"]))
    with dg.DagsterInstance.get() as instance:
        assert all(run.success for run in load_days(platform, instance))
        first = dg.materialize(
            _lifecycle(),
            selection=dg.AssetSelection.assets("features", "challenger_model"),
            instance=instance,
            resources=platform.resources(),
            run_config={"ops": {"features": {"config": {"max_staleness_days": None}}}},
        )
        assert first.success
        earlier_runs = {run.run_id for run in instance.get_runs()}
    client, versions = _registry(platform)
    promote_to_champion(client, MODEL, "1")
    before = aliases(platform, MODEL)
    assert versions == ["1"] and before == {"challenger": "1", CHAMPION: "1", "previous": None}

    (fit_run_id,) = _kill_at("fit", platform, subprocess_env, tmp_path)
    register_run_id, logged_model_uri = _kill_at("register", platform, subprocess_env, tmp_path)

    assert _registry(platform)[1] == ["1"]
    assert aliases(platform, MODEL) == before
    # The second child got as far as logging the artefacts; no version refers to them.
    logged = client.get_logged_model(logged_model_uri.removeprefix("models:/"))
    assert (Path(urlsplit(logged.artifact_location).path) / "MLmodel").is_file()
    for run_id in (fit_run_id, register_run_id):
        assert client.search_model_versions(f"run_id = '{run_id}'") == []
        assert client.get_run(run_id).info.status != "FINISHED"
    # Every registered version is whole: its artefacts hash to the digest recorded with it.
    verify_model_version(client, MODEL, "1", tmp_path / "v1")
    with dg.DagsterInstance.get() as instance:
        killed = [run for run in instance.get_runs() if run.run_id not in earlier_runs]
        assert len(killed) == 2
        assert all(run.status != dg.DagsterRunStatus.SUCCESS for run in killed)

    log = tmp_path / "after.log"
    rerun = _materialize_challenger(subprocess_env, platform.root, log)
    assert rerun.wait(timeout=600) == 0, log.read_text()[-4000:]
    assert "RUN_SUCCESS" in log.read_text()
    assert _registry(platform)[1] == ["1", "2"]
    assert aliases(platform, MODEL) == {**before, "challenger": "2"}
    verify_model_version(client, MODEL, "2", tmp_path / "v2")
