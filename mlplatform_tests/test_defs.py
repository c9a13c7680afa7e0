"""The code location loads, with the six lifecycle assets, their checks and the schedule."""

import subprocess
import sys
from datetime import UTC, datetime

import dagster as dg
import pytest

from mlplatform.definitions import defs
from mlplatform.defs.monitoring.schedules import (
    CRON_VARIABLE,
    TIMEZONE_VARIABLE,
    build_weekly_retrain_schedule,
    weekly_retrain,
)
from mlplatform.defs.training.assets import RETRAIN_RUN_TAGS
from mlplatform_tests.conftest import REPO_ROOT

ASSETS = [
    "raw_data",
    "validated_data",
    "features",
    "challenger_model",
    "evaluation",
    "deployed_model",
]
GROUPS = {
    "raw_data": "data",
    "validated_data": "data",
    "features": "features",
    "challenger_model": "training",
    "evaluation": "evaluation",
    "deployed_model": "deployment",
}


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def test_defs_is_a_definitions_object():
    assert isinstance(defs, dg.Definitions)


def test_has_the_six_lifecycle_assets(graph):
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert set(ASSETS) <= keys


@pytest.mark.parametrize("asset,group", GROUPS.items())
def test_asset_group_and_one_sentence_description(graph, asset, group):
    node = graph.get(dg.AssetKey(asset))
    assert node.group_name == group
    description = node.description or ""
    assert description.endswith(".") and description.count(". ") == 0, description


def test_lineage_is_a_chain_from_raw_data_to_deployed_model(graph):
    for upstream, downstream in zip(ASSETS, ASSETS[1:], strict=False):
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, f"{downstream} does not read {upstream}"


BLOCKING_CHECKS = [
    "raw_data:schema",
    "raw_data:completeness",
    "raw_data:ranges",
    "raw_data:categories",
    "raw_data:unique_ids",
    "raw_data:row_count",
    "raw_data:label_balance",
    "evaluation:challenger_auc_above_threshold",
    "evaluation:slice_auc_above_threshold",
    "evaluation:behavioural_expectations",
    "evaluation:prediction_coverage",
]
WARNING_CHECKS = [
    "raw_data:unseen_categories",
    "validated_data:distribution",
    "evaluation:calibration",
    "evaluation:holdout_power",
]


def test_hard_data_and_model_checks_are_blocking_and_soft_ones_are_not(graph):
    checks = {key.to_user_string(): key for key in graph.asset_check_keys}
    assert set(BLOCKING_CHECKS + WARNING_CHECKS) <= set(checks)
    for name in BLOCKING_CHECKS:
        assert graph.get_check_spec(checks[name]).blocking, name
    for name in WARNING_CHECKS:
        assert not graph.get_check_spec(checks[name]).blocking, name


def test_data_assets_and_their_checks_are_daily_partitioned(graph):
    for asset in ("raw_data", "validated_data"):
        partitions = graph.get(dg.AssetKey(asset)).partitions_def
        assert isinstance(partitions, dg.DailyPartitionsDefinition)
        assert partitions.get_first_partition_key() == "2025-01-01"
    for key in graph.asset_check_keys:
        if key.asset_key.to_user_string() in ("raw_data", "validated_data"):
            assert graph.get_check_spec(key).partitions_def is not None, key
    assert graph.get(dg.AssetKey("features")).partitions_def is None


def test_daily_ingest_schedule_loads_yesterday_at_0100_utc():
    schedule = defs.resolve_schedule_def("daily_ingest_schedule")
    assert schedule.cron_schedule == "0 1 * * *"
    assert schedule.execution_timezone == "UTC"
    job = defs.resolve_job_def(schedule.job_name)
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert selected == {"raw_data", "validated_data"}
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 5, 1, tzinfo=UTC)
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-03-04"


def test_resources_are_bound_to_environment_variables():
    resources = defs.resources
    assert {"dataset", "mlflow_tracking", "gates"} <= set(resources)
    assert resources["mlflow_tracking"].tracking_uri == dg.EnvVar("MLFLOW_TRACKING_URI")
    assert resources["dataset"].name == dg.EnvVar("MLPLATFORM_DATASET")
    assert resources["gates"].min_auc == dg.EnvVar("MLPLATFORM_MIN_AUC")


def test_weekly_schedule_runs_the_retrain_path_monday_0300_utc():
    schedule = defs.resolve_schedule_def("weekly_retrain_schedule")
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.execution_timezone == "UTC"
    job = defs.resolve_job_def(schedule.job_name)
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert selected == set(ASSETS[2:])
    assert job.tags == RETRAIN_RUN_TAGS
    monday = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 2, 3, tzinfo=UTC))
    (request,) = schedule.evaluate_tick(monday).run_requests
    assert request.partition_key is None


@pytest.mark.parametrize(
    ("cron", "timezone"), [("0 4 * * 0", "Europe/Berlin"), ("30 2 1 * *", "America/New_York")]
)
def test_weekly_schedule_cron_and_timezone_come_from_the_environment(monkeypatch, cron, timezone):
    monkeypatch.setenv(CRON_VARIABLE, cron)
    monkeypatch.setenv(TIMEZONE_VARIABLE, timezone)
    (schedule,) = weekly_retrain().schedules
    assert (schedule.cron_schedule, schedule.execution_timezone) == (cron, timezone)
    assert schedule.job_name == "retrain_job"


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("61 3 * * 1", "UTC", "MLPLATFORM_RETRAIN_CRON='61 3 \\* \\* 1' is not a valid cron"),
        ("every monday", "UTC", "MLPLATFORM_RETRAIN_CRON='every monday' is not a valid cron"),
        ("0 3 * * 1", "Mars/Base", "MLPLATFORM_RETRAIN_TIMEZONE='Mars/Base' is not an IANA"),
    ],
)
def test_a_bad_retrain_cron_or_timezone_is_refused_naming_the_variable(cron, timezone, message):
    with pytest.raises(ValueError, match=message):
        build_weekly_retrain_schedule(cron, timezone)


def test_code_changes_are_watched_by_a_running_automation_sensor_on_the_retrain_lane():
    sensor = defs.resolve_sensor_def("retrain_on_code_change_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.run_tags == RETRAIN_RUN_TAGS
    graph = defs.resolve_asset_graph()
    targeted = {k.to_user_string() for k in sensor.asset_selection.resolve(graph)}
    assert targeted == {"challenger_model", "evaluation", "deployed_model"}


def test_dagster_definitions_validate_accepts_the_workspace(platform, subprocess_env):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(REPO_ROOT / "workspace.yaml"),
        ],
        cwd=platform.root,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed validation" in result.stdout + result.stderr


def test_the_drift_sensor_and_code_change_automation_are_defined(graph):
    sensor = defs.resolve_sensor_def("psi_drift_sensor")
    assert sensor.job_name == "retrain_job"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert dg.AssetKey("drift_report") in graph.get_all_asset_keys()
    condition = graph.get(dg.AssetKey("challenger_model")).automation_condition
    assert condition is not None and "code change" in condition.get_label()
    for asset in ("evaluation", "deployed_model"):
        assert graph.get(dg.AssetKey(asset)).automation_condition is not None


def test_steps_run_in_process_by_default_and_as_kubernetes_jobs_on_request(monkeypatch):
    from mlplatform.defs.platform.executors import EXECUTOR_VARIABLE, executor

    assert defs.executor.name == "in_process"
    monkeypatch.setenv(EXECUTOR_VARIABLE, "k8s_job")
    assert executor().executor.name == "k8s"
    monkeypatch.setenv(EXECUTOR_VARIABLE, "multiprocess")
    with pytest.raises(ValueError, match="MLPLATFORM_EXECUTOR='multiprocess': use"):
        executor()
