"""``mlplatform status``: what needs a person (pure rules), the tables, and the state collected
from a real registry and Dagster instance, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import pytest

from mlplatform.status.model import (
    CanaryRow,
    DriftRow,
    GateRow,
    PlatformStatus,
    TriggerRow,
    VersionRow,
    attention,
    drift_level,
)
from mlplatform.status.render import render_json, render_text
from mlplatform_tests.conftest import retrain

MODEL = "mlplatform-synthetic_churn"


def _state(**changes) -> PlatformStatus:
    """A healthy platform: champion v2 (previous v1), a finished canary, no drift."""
    versions = [
        VersionRow("champion", "2", "0.8712", "[0.8650, 0.8774]", "promote", "approved", "bob"),
        VersionRow("previous", "1", "0.8401", "[0.8330, 0.8472]", "promote", "approved", "bob"),
        VersionRow("challenger", "2", "0.8712", "[0.8650, 0.8774]", "promote", "approved", "bob"),
        VersionRow("canary", None),
    ]
    defaults = {
        "dataset": "synthetic_churn",
        "model_name": MODEL,
        "dagster_home": "/tmp/dagster",
        "tracking_uri": "sqlite:///mlflow.db",
        "versions": versions,
        "canary": CanaryRow("2", "1", "promoted", 3, 3, 0.0, 900, 1, 2100, 3, "t", "promoted"),
        "drift": DriftRow("2026-03-04", "t", "2", 1000, 0.04, "tenure_months", "ok", "no drift"),
        "triggers": [TriggerRow("weekly_retrain_schedule", "schedule", "abc", "SUCCESS", "t")],
    }
    return PlatformStatus(**{**defaults, **changes})


def test_a_healthy_platform_needs_nobody():
    assert attention(_state()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"versions": [VersionRow("champion", None)]}, "no champion"),
        ({"awaiting_approval": "7"}, "v7 waits for approval: mlplatform approve 7"),
        (
            {
                "failed_gates": [
                    GateRow("evaluation:challenger_auc_above_threshold", True, "t", "r")
                ]
            },
            "blocking gate evaluation:challenger_auc_above_threshold failed",
        ),
        (
            {"canary": CanaryRow("3", "2", "rolled_back", 1, 3, 0.0, 50, 9, 900, 0, "t", "errors")},
            "canary v3 was rolled back at t: errors",
        ),
        (
            {"drift": DriftRow("2026-03-05", "t", "2", 1000, 0.31, "spend", "drift", "retrain")},
            "data drift on 2026-03-05: max PSI 0.310 on spend",
        ),
        (
            {"triggers": [TriggerRow("psi_drift_sensor", "sensor", "run1", "FAILURE", "t")]},
            "the last run of psi_drift_sensor failed (run run1",
        ),
    ],
)
def test_each_thing_that_needs_a_person_is_named_with_what_to_do(changes, expected):
    items = attention(_state(**changes))
    assert len(items) == 1
    assert expected in items[0]


def test_a_manual_rollback_shows_on_the_replaced_version_now_previous():
    versions = [
        VersionRow("champion", "1", "0.84"),
        VersionRow("previous", "2", "0.87", rolled_back="2026-03-05T10:00:00+00:00 by ann: slow"),
    ]
    (item,) = attention(_state(versions=versions))
    assert item == "v2 was rolled back by hand: 2026-03-05T10:00:00+00:00 by ann: slow"


def test_a_failed_warning_check_is_shown_but_needs_nobody():
    state = _state(failed_gates=[GateRow("evaluation:calibration", False, "t", "run")])
    assert attention(state) == []
    assert "evaluation:calibration" in render_json(state)


@pytest.mark.parametrize(
    ("psi", "level"), [(0.0, "ok"), (0.1, "ok"), (0.1001, "watch"), (0.2, "watch"), (0.21, "drift")]
)
def test_drift_level_follows_the_watch_and_drift_thresholds(psi, level):
    assert drift_level(psi) == level


def test_the_text_shows_versions_with_their_interval_canary_drift_triggers_and_attention():
    state = _state(awaiting_approval="3")
    state.attention = attention(state)
    text = render_text(state)
    assert "0.8712 [0.8650, 0.8774]" in text
    assert "approved by bob" in text
    assert "v2 promoted, step 3/3" in text
    assert "canary 900 req / 1 err (0.1%)" in text
    assert "max PSI 0.040 on tenure_months" in text
    assert "weekly_retrain_schedule" in text
    assert "needs attention (1):" in text and "v3 waits for approval" in text
    assert json.loads(render_json(state))["awaiting_approval"] == "3"


def _collect(platform, instance):
    from mlplatform.definitions import defs
    from mlplatform.status.collect import collect

    tracking = platform.resources()["mlflow_tracking"]
    return collect(
        tracking.client(),
        instance,
        defs,
        dataset="synthetic_churn",
        model_name=MODEL,
        dagster_home=platform.env["DAGSTER_HOME"],
        tracking_uri=platform.tracking_uri,
    )


def test_collected_from_a_real_registry_and_instance(platform, instance):
    from mlplatform.definitions import defs

    before = _collect(platform, instance)
    assert before.version("champion") is None and before.canary is None and before.drift is None
    assert {t.trigger for t in before.triggers} >= {"weekly_retrain_schedule", "psi_drift_sensor"}
    assert "canary_sensor" not in {t.trigger for t in before.triggers}  # it launches no runs

    required = {"require_approval": "true"}
    assert retrain(platform, instance, "", "logistic_regression", deployment=required).success
    waiting = _collect(platform, instance)
    challenger = waiting.version("challenger")
    assert challenger.version == "1" and challenger.approval is None
    assert float(challenger.auc) > 0.8 and challenger.auc_ci.startswith("[")
    assert waiting.awaiting_approval == "1"
    assert any("v1 waits for approval" in item for item in waiting.attention)

    # A run the weekly schedule launched: the evaluation again, under a bar it cannot clear.
    evaluated = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets("evaluation"),
        instance=instance,
        resources=platform.resources(deployment=required, min_auc="0.99"),
        tags={"dagster/schedule_name": "weekly_retrain_schedule"},
        raise_on_error=False,
    )
    assert not evaluated.success
    failing = _collect(platform, instance)
    weekly = next(t for t in failing.triggers if t.trigger == "weekly_retrain_schedule")
    assert weekly.status == "FAILURE" and weekly.run_id == evaluated.run_id
    gate = next(g for g in failing.failed_gates if g.check.endswith("auc_above_threshold"))
    assert gate.blocking and gate.run_id == evaluated.run_id
    assert any(
        item.startswith("blocking gate evaluation:challenger_auc_above_threshold failed")
        for item in failing.attention
    )
    assert f"the last run of weekly_retrain_schedule failed (run {evaluated.run_id}" in "\n".join(
        failing.attention
    )


@pytest.mark.e2e
def test_the_cli_prints_the_table_and_json_and_check_exits_1_when_something_waits(
    platform, subprocess_env
):
    command = [sys.executable, "-m", "mlplatform.cli", "status"]
    text = subprocess.run(command, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "role" in text.stdout and "needs attention (1):" in text.stdout
    machine = subprocess.run(
        [*command, "--json", "--check"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert machine.returncode == 1, machine.stderr
    state = json.loads(machine.stdout)
    assert state["model_name"] == MODEL
    assert [row["role"] for row in state["versions"]] == [
        "champion",
        "previous",
        "challenger",
        "canary",
    ]
    assert state["attention"] == [
        "no champion: nothing serves yet (run `make demo` or retrain_job)"
    ]
