"""End to end through the real CLIs (dagster, mlplatform) and the real MLflow registry."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from dagster._core.storage.runs import SqliteRunStorage
from mlflow import MlflowClient

from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.telco import load_telco_csv
from mlplatform.lifecycle import ensure_dagster_home
from mlplatform_tests.conftest import TELCO_CSV, TEST_DAYS

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def _run(args, env, cwd, timeout=600):
    # cwd outside the repository: dagster CLIs load a .env from cwd, and it would win over env.
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def _champion(platform, model_name):
    mlflow.set_tracking_uri(platform.tracking_uri)
    mlflow.set_registry_uri(platform.tracking_uri)
    return mlflow.pyfunc.load_model(f"models:/{model_name}@champion")


def _as_json_records(frame: pd.DataFrame) -> pd.DataFrame:
    """What a client sends: JSON-typed values, extra columns included."""
    return pd.read_json(
        pd.io.common.StringIO(frame.to_json(orient="records", date_format="iso")),
        orient="records",
        convert_dates=False,
    )


def _wait_for_runs(instance, count: int, timeout: float = 420.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        if len(runs) >= count and all(run.is_finished for run in runs):
            return runs
        time.sleep(1.0)
    states = [(r.tags.get("dagster/partition"), r.status.value) for r in instance.get_runs()]
    raise AssertionError(f"runs not finished after {timeout}s: {states}")


def run_cli_lifecycle(platform, env: dict[str, str]) -> None:
    """The README's commands on the instance and MLflow store that ``env`` points at.

    A backfill queued by the dagster CLI and run by the daemon, the whole graph for one day,
    then the retrain path alone, all materialised by the dagster CLI; the champion then scores
    raw rows. Shared by the embedded and the production-storage (PostgreSQL) tests.
    """
    # Create both stores before several processes race to migrate them.
    dg.DagsterInstance.get().dispose()
    MlflowClient(tracking_uri=platform.tracking_uri).search_experiments()
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "mlplatform.definitions"],
        cwd=platform.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = _run(
            [
                str(BIN / "dagster"),
                "job",
                "backfill",
                "-m",
                "mlplatform.definitions",
                "-j",
                "daily_data_job",
                "--from",
                TEST_DAYS[0],
                "--to",
                TEST_DAYS[-1],
                "--noprompt",
            ],
            env,
            platform.root,
        )
        assert "Launched backfill job" in result.stdout + result.stderr
        with dg.DagsterInstance.get() as instance:
            runs = _wait_for_runs(instance, len(TEST_DAYS))
            assert sorted(r.tags["dagster/partition"] for r in runs) == TEST_DAYS
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            validated = instance.get_materialized_partitions(dg.AssetKey("validated_data"))
            assert validated == set(TEST_DAYS)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    fixed_days = '{"ops": {"features": {"config": {"max_staleness_days": null}}}}'
    materialize = [str(BIN / "dagster"), "asset", "materialize", "-m", "mlplatform.definitions"]
    # The whole graph for one day: that day's data, then training on the window ending there.
    whole = ["--select", "*", "--partition", TEST_DAYS[-1], "--config-json", fixed_days]
    assert "RUN_SUCCESS" in _run([*materialize, *whole], env, platform.root).stderr
    # A selection: the retrain path alone, on the days already stored.
    selection = ["--select", "features*", "--config-json", fixed_days]
    assert "RUN_SUCCESS" in _run([*materialize, *selection], env, platform.root).stderr
    with dg.DagsterInstance.get() as instance:
        assert len(instance.fetch_materializations(dg.AssetKey("deployed_model"), 5).records) == 2
    model = _champion(platform, "mlplatform-synthetic_churn")
    raw = generate_batch(date(2026, 6, 1), 50, seed=7).drop(columns=["churned"])
    raw["signup_date"] = raw["signup_date"].dt.strftime("%Y-%m-%d")
    raw["snapshot_date"] = raw["snapshot_date"].dt.strftime("%Y-%m-%d")
    probabilities = np.asarray(model.predict(raw))[:, 1]
    assert probabilities.shape == (50,)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_cli_backfill_through_the_daemon_then_training_and_a_champion_that_scores(
    platform, subprocess_env
):
    """The lifecycle on the embedded default: SQLite instance storage, SQLite MLflow store."""
    ensure_dagster_home(Path(platform.env["DAGSTER_HOME"]), storage="sqlite")
    run_cli_lifecycle(platform, subprocess_env)
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, SqliteRunStorage)
    assert (platform.root / "mlflow.db").is_file()


def test_mlplatform_backfill_runs_the_days_in_process_and_reports_a_bad_range(
    platform, subprocess_env
):
    result = _run(
        [str(BIN / "mlplatform"), "backfill", "--from", "2026-03-01", "--to", "2026-03-02"],
        subprocess_env,
        platform.root,
    )
    assert "2/2 days loaded and validated (0 failed)" in result.stdout
    assert "[backfill] 2/2 days" in result.stderr  # the progress, plain in a pipe
    bad = subprocess.run(
        [str(BIN / "mlplatform"), "backfill", "--from", "2019-01-01", "--to", "2019-01-02"],
        cwd=platform.root,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert "'2019-01-01' is not a daily partition (partitions run 2025-01-01.." in bad.stderr


@pytest.mark.skipif(not TELCO_CSV.exists(), reason="shared Telco data not beside the repository")
def test_mlplatform_demo_on_telco_registers_a_champion_that_scores_raw_rows(
    platform, subprocess_env
):
    env = {**subprocess_env, "MLPLATFORM_DATASET": "telco", "MLPLATFORM_REQUIRE_APPROVAL": "true"}
    result = _run([str(BIN / "mlplatform"), "demo"], env, platform.root)
    assert "approval_sensor resumed the deploy (promoted): champion now v1" in result.stdout
    assert "data set 'telco'" in result.stdout
    assert "drift drill skipped" in result.stdout
    model = _champion(platform, "mlplatform-telco")
    rows = load_telco_csv(TELCO_CSV).head(40)
    rows = rows[rows["total_spend"].notna()].drop(columns=["churned"])
    probabilities = np.asarray(model.predict(rows))[:, 1]
    assert len(probabilities) == len(rows)
    assert np.all(np.isfinite(probabilities))


def test_mlplatform_demo_on_synthetic_data_tells_the_whole_story(platform, subprocess_env):
    # 4 days instead of the demo's 30: a wider AUC interval, so a lower bar for the baseline.
    env = {**subprocess_env, "MLPLATFORM_MIN_AUC": "0.75", "MLPLATFORM_REQUIRE_APPROVAL": "true"}
    result = _run([str(BIN / "mlplatform"), "demo"], env, platform.root)
    out = result.stdout
    for expected in (
        "[7/7]",
        "AUC",
        "95% CI",
        "deploy: v1 waits for approval",
        "approved v1 as reviewer",
        "approval_sensor resumed the deploy (promoted): champion now v1",
        "approval_sensor resumed the deploy (canary)",
        "weight   5%",
        "weight  25%",
        "weight 100%",
        "promoted",
        "rolled_back canary v",
        "a drifted day arrives",
        "psi_drift_sensor fired: run_key drift:",
        "next tick on the same day: 0 new run(s)",
        "s end to end",
        "http://127.0.0.1:3000",
    ):
        assert expected in out, expected
    assert "FAILED" not in out
    seconds = float(out.split(" s end to end")[0].rsplit("after ", 1)[1])
    assert seconds < 5.0
    with dg.DagsterInstance.get() as instance:
        drift_runs = instance.get_runs(dg.RunsFilter(tags={"trigger": "psi_drift"}))
        reports = instance.fetch_materializations(dg.AssetKey("drift_report"), limit=5).records
    (run,) = drift_runs
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/run_key"].startswith("drift:")
    assert run.tags["dagster/sensor_name"] == "psi_drift_sensor"
    assert float(run.tags["drift/max_psi"]) > 0.2
    assert len(reports) == 1  # the re-tick on the same day stops before computing PSI
