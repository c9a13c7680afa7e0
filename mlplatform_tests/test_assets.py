"""Assets and checks materialised with dg.materialize on a temporary instance and MLflow store."""

from __future__ import annotations

import platform as platform_module
from datetime import date
from importlib import metadata
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
from mlflow import MlflowClient

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import FaultConfig, generate_batch
from mlplatform.ml.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    load_pipeline,
)
from mlplatform.ml.training import churn_scores, model_input
from mlplatform_tests.conftest import (
    TEST_DAYS,
    aliases,
    load_days,
    materialized_count,
    retrain,
    write_spec,
)


def test_full_graph_registers_and_promotes_a_first_champion(platform, instance):
    result = retrain(platform, instance)
    assert result.success
    features = result.asset_value("features")
    evaluation = result.asset_value("evaluation")
    deployment = result.asset_value("deployed_model")
    # The holdout never overlaps training rows.
    assert not set(features.train["customer_id"]) & set(features.holdout["customer_id"])
    assert evaluation.challenger.low <= evaluation.challenger.auc <= evaluation.challenger.high
    assert evaluation.challenger.low >= 0.80 and evaluation.champion is None
    assert aliases(platform, deployment.model_name) == {
        CHALLENGER: "1",
        CHAMPION: "1",
        PREVIOUS: None,
    }
    materialization = instance.get_latest_materialization_event(dg.AssetKey("evaluation"))
    metadata = materialization.asset_materialization.metadata
    assert "95% CI" in metadata["holdout_auc_ci"].value
    assert "Decision: PROMOTE" in metadata["decision"].value
    assert "![ROC curves](data:image/png;base64,iVBOR" in metadata["decision"].value
    client = MlflowClient(tracking_uri=platform.tracking_uri)
    tags = client.get_model_version(deployment.model_name, "1").tags
    assert tags["decision"] == "PROMOTE" and tags["compared_with_champion"] == "none"
    assert tags["holdout_version"] == features.holdout_version
    run_id = result.asset_value("challenger_model").run_id
    artifacts = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert artifacts == {"evaluation/roc.png", "evaluation/decision.md"}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["challenger_auc_above_threshold"] is True
    assert checks["champion_serves_valid_probabilities"] is True


def test_second_challenger_is_compared_with_the_champion_on_the_same_holdout(platform, instance):
    first = retrain(platform, instance)
    second = retrain(platform, instance, estimator="logistic_regression")
    assert first.success and second.success
    assert (
        first.asset_value("features").holdout_version
        == second.asset_value("features").holdout_version
    )
    evaluation = second.asset_value("evaluation")
    assert evaluation.champion_version == "1" and evaluation.challenger_version == "2"
    assert evaluation.difference is not None
    current = aliases(platform, evaluation.model_name)
    if evaluation.should_promote:
        assert current == {CHALLENGER: "2", CHAMPION: "2", PREVIOUS: "1"}
    else:
        assert current == {CHALLENGER: "2", CHAMPION: "1", PREVIOUS: None}


def test_auc_gate_blocks_deployment_and_keeps_the_champion(platform, instance):
    assert retrain(platform, instance).success
    blocked = retrain(platform, instance, min_auc="0.99")
    assert not blocked.success
    checks = {e.check_name: e for e in blocked.get_asset_check_evaluations()}
    assert checks["challenger_auc_above_threshold"].passed is False
    assert checks["challenger_auc_above_threshold"].severity == dg.AssetCheckSeverity.ERROR
    assert materialized_count(instance, "deployed_model") == 1
    model_name = blocked.asset_value("evaluation").model_name
    assert aliases(platform, model_name)[CHAMPION] == "1"


def test_training_reads_only_the_rolling_window(platform, instance):
    assert all(r.success for r in load_days(platform, instance, ["2026-02-20", "2026-02-27"]))
    result = retrain(platform, instance)
    assert result.success
    features = result.asset_value("features")
    assert features.window.startswith("2026-03-01..2026-03-04 (4 partitions, 0 missing)")
    days = set(features.train["snapshot_date"].dt.date.astype(str))
    assert days <= set(TEST_DAYS)


def test_a_hole_in_the_training_window_fails_features_and_names_the_missing_days(
    platform, tmp_path
):
    spec = write_spec(tmp_path, top={"training_window_days": 5})
    with dg.instance_for_test() as instance:
        assert all(r.success for r in load_days(platform, instance, ["2026-03-01", "2026-03-05"]))
        result = retrain(platform, instance, dataset=str(spec))
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert failure.step_key == "features"
        message = failure.step_failure_data.error.cause.message
        assert "2026-03-02, 2026-03-03, 2026-03-04" in message and "backfill" in message
        assert materialized_count(instance, "challenger_model") == 0


def test_a_bad_day_fails_at_the_data_stage_and_keeps_its_last_good_version(
    platform, instance, tmp_path
):
    good = retrain(platform, instance)
    assert good.success
    bad_csv = tmp_path / "bad_{date}.csv"
    faulty = generate_batch(date(2026, 3, 4), 1000, faults=FaultConfig(out_of_range_fraction=0.01))
    faulty.to_csv(str(bad_csv).replace("{date}", "2026-03-04"), index=False)
    spec = write_spec(tmp_path, kind="csv", path=str(bad_csv))
    (bad_run,) = load_days(platform, instance, ["2026-03-04"], dataset=str(spec))
    assert not bad_run.success
    failed = [e for e in bad_run.get_asset_check_evaluations() if not e.passed]
    assert failed and all(e.severity == dg.AssetCheckSeverity.ERROR for e in failed)
    described = " ".join(str(e.metadata) for e in failed)
    assert "tenure_months" in described
    # validated_data for that day still holds the good version; nothing downstream ran.
    assert materialized_count(instance, "validated_data") == len(TEST_DAYS)
    assert materialized_count(instance, "features") == 1
    assert aliases(platform, good.asset_value("deployed_model").model_name)[CHAMPION] == "1"


def test_retraining_on_the_same_data_version_and_seed_gives_the_same_model(platform, instance):
    first, second = retrain(platform, instance), retrain(platform, instance)
    assert first.success and second.success
    features = first.asset_value("features")
    assert second.asset_value("features").train_version == features.train_version
    models = [r.asset_value("challenger_model") for r in (first, second)]
    assert [m.version for m in models] == ["1", "2"]
    spec = load_spec(platform.env["MLPLATFORM_DATASET"])
    holdout = model_input(features.holdout, spec)
    mlflow.set_tracking_uri(platform.tracking_uri)
    scores = [churn_scores(load_pipeline(m.name, m.version), holdout) for m in models]
    np.testing.assert_array_equal(scores[0], scores[1])
    # Each model's MLflow run names the exact data it was trained and judged on.
    client = MlflowClient(tracking_uri=platform.tracking_uri)
    for model in models:
        inputs = client.get_run(model.run_id).inputs.dataset_inputs
        digests = {i.tags[0].value: i.dataset.digest for i in inputs}
        assert digests == {"training": features.train_version, "holdout": features.holdout_version}


def test_a_model_records_its_code_seed_and_exact_environment(platform, instance):
    result = retrain(platform, instance)
    assert result.success
    model = result.asset_value("challenger_model")
    client = MlflowClient(tracking_uri=platform.tracking_uri)
    run = client.get_run(model.run_id)
    assert run.data.params["seed"] == "42" and run.data.tags["seed"] == "42"
    assert len(run.data.tags["git_commit"]) == 40  # the tests run from the git checkout
    assert run.data.tags["python_version"] == platform_module.python_version()
    version = client.get_model_version(model.name, model.version)
    assert version.tags["code_version"] == run.data.tags["code_version"]
    mlflow.set_tracking_uri(platform.tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{model.run_id}/model"))
    requirements = (local / "requirements.txt").read_text().split()
    for name in ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops"):
        assert f"{name}=={metadata.version(name)}" in requirements, name
    assert f"python: {platform_module.python_version()}" in (local / "python_env.yaml").read_text()
