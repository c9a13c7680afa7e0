"""psi_drift_sensor evaluated twice for one drift cause, as two daemons would: one retrain.

The sensor names each cause by its run key (champion version + day + data version); the sensor
daemon creates at most one run per run key and sensor. Here the real daemon code
(``execute_sensor_iteration``) ticks twice on one instance, the second time with the cursor from
before the first tick (a second daemon that read the sensor's state before the first one wrote
it), and then once more for a new drifted day inside the cooldown.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorType, SensorInstigatorData, TickStatus
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._time import get_current_datetime

from mlplatform.datasets.synthetic import DriftConfig, generate_batch
from mlplatform.defs.monitoring.resources import DriftPolicy
from mlplatform.defs.monitoring.sensors import psi_drift_sensor
from mlplatform_tests.conftest import load_days, retrain, write_spec

pytestmark = pytest.mark.fault
TRAIN_DAYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
SENSOR = "psi_drift_sensor"
# Runs are created and "launched" into a list, never executed: only their number matters.
MOCK_LAUNCHER = {
    "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
}


@pytest.fixture
def drifting(platform, tmp_path, monkeypatch):
    """An instance with a champion trained on four days, and a way to deliver one more day."""
    data_dir = tmp_path / "deliveries"
    data_dir.mkdir()
    spec = str(
        write_spec(
            tmp_path,
            top={"training_window_days": len(TRAIN_DAYS), "min_rows": 50},
            kind="csv",
            path=str(data_dir / "day_{date}.csv"),
        )
    )
    monkeypatch.setenv("MLPLATFORM_DATASET", spec)  # what the code location's resources read
    with dg.instance_for_test(overrides=MOCK_LAUNCHER) as instance:

        def deliver(day: str, **drift) -> None:
            frame = generate_batch(
                date.fromisoformat(day), 1000, seed=9, drift=DriftConfig(**drift)
            )
            frame.to_csv(data_dir / f"day_{day}.csv", index=False)
            (run,) = load_days(platform, instance, [day], dataset=spec)
            assert run.success

        for day in TRAIN_DAYS:
            deliver(day)
        assert retrain(platform, instance, dataset=spec, min_auc="0.70").success
        yield instance, deliver, platform.resources(spec)


def _daemon_tick(workspace: WorkspaceProcessContext) -> None:
    """One iteration of the sensor daemon, as `dagster-daemon run` does it."""
    logger = logging.getLogger("sensor-daemon-test")
    list(execute_sensor_iteration(workspace, logger, None, None))


def _sensor_state(instance):
    (state,) = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.instigator_name == SENSOR
    ]
    return state


def _drift_runs(instance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={SENSOR_NAME_TAG: SENSOR})))


def _set_cursor(instance, cursor: str | None) -> None:
    state = _sensor_state(instance)
    data = state.instigator_data
    instance.update_instigator_state(
        state.with_data(
            SensorInstigatorData(
                last_tick_timestamp=data.last_tick_timestamp,
                last_run_key=data.last_run_key,
                min_interval=data.min_interval,
                cursor=cursor,
                last_tick_start_timestamp=data.last_tick_start_timestamp,
                last_sensor_start_timestamp=data.last_sensor_start_timestamp,
                sensor_type=data.sensor_type,
            )
        )
    )


def _latest_tick(instance):
    state = _sensor_state(instance)
    return instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)[0]


def test_two_evaluations_of_one_drift_cause_give_one_run_and_the_cooldown_holds(drifting):
    instance, deliver, resources = drifting
    deliver("2026-03-05", spend_multiplier=1.5)

    # Two daemons' sensor contexts see the same cause and ask with the same run key.
    sensor_resources = {k: resources[k] for k in ("dataset", "mlflow_tracking")}
    first, second = (
        psi_drift_sensor(
            dg.build_sensor_context(
                instance=instance, resources={**sensor_resources, "drift": DriftPolicy()}
            )
        )
        for _ in range(2)
    )
    (one,), (other,) = first.run_requests, second.run_requests
    assert one.run_key == other.run_key

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            module_name="mlplatform_tests.drift_daemon_defs",
            attribute="defs",
            working_directory=str(Path(__file__).resolve().parents[1]),
        )
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace:
        now = get_current_datetime()
        with freeze_time(now):
            _daemon_tick(workspace)
        (run,) = _drift_runs(instance)
        assert run.tags[RUN_KEY_TAG] == one.run_key and run.tags["trigger"] == "psi_drift"
        cursor_after_first = _sensor_state(instance).instigator_data.cursor

        # A second daemon that read the sensor's state before the first wrote it.
        _set_cursor(instance, None)
        with freeze_time(now + timedelta(seconds=301)):
            _daemon_tick(workspace)
        assert [r.run_id for r in _drift_runs(instance)] == [run.run_id]
        # The sensor did ask again (a run id was reserved for its request); the daemon found
        # the run of that run key and created none.
        tick = _latest_tick(instance)
        assert tick.status == TickStatus.SKIPPED
        (reserved,) = tick.tick_data.reserved_run_ids
        assert reserved != run.run_id and instance.get_run_by_id(reserved) is None

        # A new drifted day within the cooldown: no second retrain.
        _set_cursor(instance, cursor_after_first)
        deliver("2026-03-06", spend_multiplier=1.6)
        with freeze_time(now + timedelta(seconds=602)):
            _daemon_tick(workspace)
        assert [r.run_id for r in _drift_runs(instance)] == [run.run_id]
        tick = _latest_tick(instance)
        assert tick.status == TickStatus.SKIPPED and "cooldown" in (tick.skip_reason or "")
