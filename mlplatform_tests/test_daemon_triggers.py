"""The three retrain triggers (drift sensor, code change, calendar) in a real dagster-daemon.

One isolated platform: a champion trained on four recent days, then a drifted day arrives.
Session 1 of the daemon runs the shipped code with a schedule cron of every minute:
psi_drift_sensor fires once and each calendar tick launches one retrain. Session 2 runs a copy of
the code whose training module changed: the code change launches the retrain path once, and the
drift does not fire again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import InstigatorType

from mlplatform.lifecycle import ensure_dagster_home, run_job, window_partition_keys
from mlplatform_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
DRIFT = {"spend_multiplier": 1.5, "tenure_shift_months": 6.0}
RETRAIN_LANE = {"mlplatform/lane": "retrain"}
CODE_CHANGE = {"dagster/sensor_name": "retrain_on_code_change_sensor"}
CALENDAR = {"dagster/schedule_name": "weekly_retrain_schedule"}


def _runs(instance: dg.DagsterInstance, **tags: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags=tags)))


def _ticks(instance: dg.DagsterInstance, sensor: str) -> list:
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == sensor:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return []


def _wait(what: str, done: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(2.0)
    raise AssertionError(f"daemon: still waiting after {timeout:.0f}s for {what}")


def _selected(runs: list[dg.DagsterRun]) -> set[str]:
    return {key.to_user_string() for run in runs for key in (run.asset_selection or ())}


def _finished(runs: list[dg.DagsterRun]) -> bool:
    return bool(runs) and all(run.is_finished for run in runs)


class Daemon:
    """``dagster-daemon run`` on the platform's instance, stopped on exit."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.log = root / f"daemon-{time.monotonic_ns()}.log"
        self.args = (
            [str(BIN / "dagster-daemon"), "run", "-m", "mlplatform.definitions"],
            root,
            env,
        )

    def __enter__(self) -> Daemon:
        args, cwd, env = self.args
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def _changed_code(root: Path) -> Path:
    """A copy of the package whose training module changed (a comment is enough)."""
    code = root / "changed_code"
    shutil.copytree(REPO_ROOT / "mlplatform", code / "mlplatform")
    # load_from_defs_folder finds the package through the project's pyproject.toml.
    shutil.copy(REPO_ROOT / "pyproject.toml", code)
    training = code / "mlplatform" / "ml" / "training.py"
    training.write_text(training.read_text() + "\n# A change to the training code.\n")
    return code


def test_drift_code_change_and_calendar_each_launch_one_retrain_in_the_daemon(
    platform, subprocess_env
):
    ensure_dagster_home(Path(platform.env["DAGSTER_HOME"]))
    *window, drifted_day = window_partition_keys(5)
    with dg.DagsterInstance.get() as instance:
        for day in window:
            assert run_job("daily_data_job", partition_key=day, instance=instance).success
        assert run_job("retrain_job", instance=instance).success
        drill = {"ops": {"raw_data": {"config": {"simulate_drift": DRIFT}}}}
        assert run_job("daily_data_job", drifted_day, drill, instance).success

        # Session 1, the shipped code, with a calendar of every minute: the drift fires once,
        # each calendar tick launches one retrain, and the code-change sensor only records the
        # code version it saw.
        every_minute = {**subprocess_env, "MLPLATFORM_RETRAIN_CRON": "* * * * *"}
        with Daemon(platform.root, every_minute) as daemon:
            _wait(
                f"a drift retrain, a scheduled one and two code-change ticks (log {daemon.log})",
                lambda: (
                    _finished(_runs(instance, trigger="psi_drift"))
                    and _finished(_runs(instance, **CALENDAR))
                    and len(_ticks(instance, "retrain_on_code_change_sensor")) >= 2
                ),
            )
        (drift_run,) = _runs(instance, trigger="psi_drift")
        assert drift_run.tags["dagster/sensor_name"] == "psi_drift_sensor"
        assert drift_run.tags["dagster/run_key"].startswith("drift:mlplatform-")
        scheduled = _runs(instance, **CALENDAR)
        ticks = [run.tags["dagster/tick"] for run in scheduled]
        assert len(ticks) == len(set(ticks)), ticks  # one run per calendar tick
        assert not _runs(instance, **CODE_CHANGE)

        # Session 2: the training code changed (the calendar is back to Mondays).
        changed = {**subprocess_env, "PYTHONPATH": str(_changed_code(platform.root))}
        with Daemon(platform.root, changed) as daemon:
            _wait(
                f"a code-change retrain through deployed_model (log {daemon.log})",
                lambda: (
                    _finished(_runs(instance, **CODE_CHANGE))
                    and "deployed_model" in _selected(_runs(instance, **CODE_CHANGE))
                ),
            )
            later = len(_ticks(instance, "retrain_on_code_change_sensor")) + 2
            _wait(
                "two more code-change ticks",
                lambda: len(_ticks(instance, "retrain_on_code_change_sensor")) >= later,
            )
        code_runs = _runs(instance, **CODE_CHANGE)
        # One retrain: challenger_model once; evaluation and deployed_model follow it (in the
        # same run or the automation's next tick).
        trained = [run for run in code_runs if "challenger_model" in _selected([run])]
        assert len(trained) == 1, [_selected([run]) for run in code_runs]
        assert {"challenger_model", "evaluation", "deployed_model"} <= _selected(code_runs)
        assert len(_runs(instance, trigger="psi_drift")) == 1
        for run in (drift_run, *code_runs, *scheduled):
            assert run.status == dg.DagsterRunStatus.SUCCESS, run.run_id
            assert RETRAIN_LANE.items() <= run.tags.items(), run.tags
