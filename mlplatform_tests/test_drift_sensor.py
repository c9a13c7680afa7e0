"""psi_drift_sensor through build_sensor_context on a real instance, MLflow store and champion."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.datasets.synthetic import DriftConfig, generate_batch
from mlplatform.defs.monitoring.resources import DriftPolicy
from mlplatform.defs.monitoring.sensors import psi_drift_sensor
from mlplatform_tests.conftest import Platform, load_days, retrain, write_spec

TRAIN_DAYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]


@dataclass
class World:
    platform: Platform
    instance: dg.DagsterInstance
    spec: str
    data_dir: Path

    def deliver(self, day: str, rows: int = 1000, **drift) -> None:
        """Writes the day's file and loads it through the data checks."""
        frame = generate_batch(date.fromisoformat(day), rows, seed=9, drift=DriftConfig(**drift))
        frame.to_csv(self.data_dir / f"day_{day}.csv", index=False)
        (run,) = load_days(self.platform, self.instance, [day], dataset=self.spec)
        assert run.success, run

    def tick(self, cursor: str | None = None, **policy):
        resources = self.platform.resources(self.spec)
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=cursor,
            resources={
                "dataset": resources["dataset"],
                "mlflow_tracking": resources["mlflow_tracking"],
                "drift": DriftPolicy(**policy),
            },
        )
        return psi_drift_sensor(context), context


@pytest.fixture
def world(platform, tmp_path):
    data_dir = tmp_path / "deliveries"
    data_dir.mkdir()
    spec = write_spec(
        tmp_path,
        top={"training_window_days": len(TRAIN_DAYS), "min_rows": 50},
        kind="csv",
        path=str(data_dir / "day_{date}.csv"),
    )
    with dg.instance_for_test() as instance:
        w = World(platform, instance, str(spec), data_dir)
        for day in TRAIN_DAYS:
            w.deliver(day)
        # The champion's quality is not under test here, only what the sensor makes of new days.
        assert retrain(platform, instance, dataset=str(spec), min_auc="0.70").success
        yield w


def _requests(result):
    return result.run_requests if isinstance(result, dg.SensorResult) else []


def test_drifted_data_requests_exactly_one_retrain_and_a_second_tick_none(world):
    world.deliver("2026-03-05", spend_multiplier=1.5)
    first, context = world.tick()
    (request,) = _requests(first)
    assert request.run_key.startswith("drift:mlplatform-synthetic_churn:v1:2026-03-05:")
    assert request.tags["trigger"] == "psi_drift"
    assert request.tags["drift/max_feature"] == "monthly_spend"
    assert float(request.tags["drift/max_psi"]) > 0.2
    (event,) = first.asset_events
    assert event.asset_key == dg.AssetKey("drift_report")
    assert "monthly_spend" in event.metadata["features"].value
    assert "data:image/png;base64," in event.metadata["chart"].value
    second, _ = world.tick(cursor=first.cursor)
    assert not _requests(second)
    assert "already checked" in second.skip_message


def test_clean_data_skips_naming_the_largest_psi(world):
    world.deliver("2026-03-05")
    result, _ = world.tick()
    assert not _requests(result)
    assert "max PSI" in result.skip_reason.skip_message
    assert result.asset_events  # the report is written even when nothing fires


def test_a_tiny_sample_is_not_acted_on(world):
    world.deliver("2026-03-05", rows=120, spend_multiplier=1.5)
    result, _ = world.tick()
    assert not _requests(result)
    assert "below the minimum 500" in result.skip_reason.skip_message


def test_unseen_categories_count_as_drift(world):
    world.deliver("2026-03-05", unseen_region_fraction=0.3)
    result, _ = world.tick()
    (request,) = _requests(result)
    assert request.tags["drift/max_feature"] == "region"


def test_the_cooldown_stops_a_flapping_feature_from_retraining_again(world):
    world.deliver("2026-03-05", spend_multiplier=1.5)
    first, _ = world.tick()
    assert len(_requests(first)) == 1
    world.deliver("2026-03-06", spend_multiplier=1.6)
    second, _ = world.tick(cursor=first.cursor)
    assert not _requests(second)
    assert "cooldown" in second.skip_reason.skip_message
    third, _ = world.tick(cursor=first.cursor, cooldown_hours=0)
    assert len(_requests(third)) == 1
    assert json.loads(third.cursor)["seen"].endswith(third.run_requests[0].run_key.split(":")[-1])


def test_without_a_champion_the_sensor_says_so(platform):
    with dg.instance_for_test() as instance:
        resources = platform.resources()
        context = dg.build_sensor_context(
            instance=instance,
            resources={
                "dataset": resources["dataset"],
                "mlflow_tracking": resources["mlflow_tracking"],
                "drift": DriftPolicy(),
            },
        )
        result = psi_drift_sensor(context)
        assert "no champion yet" in result.skip_message
