"""End to end through the real CLIs (dagster, mlplatform) and the real MLflow registry."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.telco import load_telco_csv
from mlplatform_tests.conftest import TELCO_CSV

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


def test_dagster_cli_materialises_the_graph_and_the_champion_scores_raw_rows(
    platform, subprocess_env
):
    _run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "mlplatform.definitions",
            "--select",
            "*",
        ],
        subprocess_env,
        platform.root,
    )
    model = _champion(platform, "mlplatform-synthetic_churn")
    raw = generate_batch(date(2026, 6, 1), 50, seed=7).drop(columns=["churned"])
    raw["signup_date"] = raw["signup_date"].dt.strftime("%Y-%m-%d")
    raw["snapshot_date"] = raw["snapshot_date"].dt.strftime("%Y-%m-%d")
    probabilities = np.asarray(model.predict(raw))[:, 1]
    assert probabilities.shape == (50,)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


@pytest.mark.skipif(not TELCO_CSV.exists(), reason="shared Telco data not beside the repository")
def test_mlplatform_demo_on_telco_registers_a_champion_that_scores_raw_rows(
    platform, subprocess_env
):
    env = {**subprocess_env, "MLPLATFORM_DATASET": "telco"}
    result = _run([str(BIN / "mlplatform"), "demo"], env, platform.root)
    assert "champion now: v1" in result.stdout
    assert "data set 'telco'" in result.stdout
    model = _champion(platform, "mlplatform-telco")
    rows = load_telco_csv(TELCO_CSV).head(40)
    rows = rows[rows["total_spend"].notna()].drop(columns=["churned"])
    probabilities = np.asarray(model.predict(rows))[:, 1]
    assert len(probabilities) == len(rows)
    assert np.all(np.isfinite(probabilities))


def test_mlplatform_demo_on_synthetic_data_prints_the_summary(platform, subprocess_env):
    result = _run([str(BIN / "mlplatform"), "demo"], subprocess_env, platform.root)
    out = result.stdout
    for expected in (
        "rows",
        "holdout",
        "AUC",
        "95% CI",
        "champion now: v",
        "Scored 3 raw rows",
        "http://127.0.0.1:3000",
    ):
        assert expected in out, expected
    assert "FAILED" not in out
