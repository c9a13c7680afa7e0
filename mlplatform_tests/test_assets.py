"""Assets and checks materialised with dg.materialize on a temporary instance and MLflow store."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from mlflow import MlflowClient

from mlplatform.datasets.synthetic import FaultConfig, generate_days
from mlplatform.definitions import defs
from mlplatform.ml.registry import CHALLENGER, CHAMPION, PREVIOUS, version_for_alias
from mlplatform_tests.conftest import write_spec

LIFECYCLE = [*defs.assets, *defs.asset_checks]


def _materialize(platform, instance, dataset=None, estimator="gradient_boosting", **gates):
    return dg.materialize(
        LIFECYCLE,
        instance=instance,
        resources=platform.resources(dataset, **gates),
        run_config={"ops": {"challenger_model": {"config": {"estimator": estimator}}}},
        raise_on_error=False,
    )


def _materialized(instance, asset: str) -> int:
    return len(instance.fetch_materializations(dg.AssetKey(asset), limit=100).records)


def _aliases(platform, model_name):
    client = MlflowClient(tracking_uri=platform.tracking_uri, registry_uri=platform.tracking_uri)
    return {
        alias: version_for_alias(client, model_name, alias)
        for alias in (CHALLENGER, CHAMPION, PREVIOUS)
    }


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_full_graph_registers_and_promotes_a_first_champion(platform, instance):
    result = _materialize(platform, instance)
    assert result.success
    features = result.asset_value("features")
    evaluation = result.asset_value("evaluation")
    deployment = result.asset_value("deployed_model")
    # The holdout never overlaps training rows.
    assert not set(features.train["customer_id"]) & set(features.holdout["customer_id"])
    assert evaluation.challenger.low <= evaluation.challenger.auc <= evaluation.challenger.high
    assert evaluation.challenger.low >= 0.80 and evaluation.champion is None
    assert _aliases(platform, deployment.model_name) == {
        CHALLENGER: "1",
        CHAMPION: "1",
        PREVIOUS: None,
    }
    materialization = instance.get_latest_materialization_event(dg.AssetKey("evaluation"))
    metadata = materialization.asset_materialization.metadata
    assert "95% CI" in metadata["holdout_auc_ci"].value
    assert "Decision: PROMOTE" in metadata["decision"].value
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["challenger_auc_above_threshold"] is True
    assert checks["champion_serves_valid_probabilities"] is True


def test_second_challenger_is_compared_with_the_champion_on_the_same_holdout(platform, instance):
    first = _materialize(platform, instance)
    second = _materialize(platform, instance, estimator="logistic_regression")
    assert first.success and second.success
    assert (
        first.asset_value("features").holdout_version
        == second.asset_value("features").holdout_version
    )
    evaluation = second.asset_value("evaluation")
    assert evaluation.champion_version == "1" and evaluation.challenger_version == "2"
    assert evaluation.difference is not None
    aliases = _aliases(platform, evaluation.model_name)
    if evaluation.should_promote:
        assert aliases == {CHALLENGER: "2", CHAMPION: "2", PREVIOUS: "1"}
    else:
        assert aliases == {CHALLENGER: "2", CHAMPION: "1", PREVIOUS: None}


def test_auc_gate_blocks_deployment_and_keeps_the_champion(platform, instance):
    assert _materialize(platform, instance).success
    blocked = _materialize(platform, instance, min_auc="0.99")
    assert not blocked.success
    checks = {e.check_name: e for e in blocked.get_asset_check_evaluations()}
    assert checks["challenger_auc_above_threshold"].passed is False
    assert checks["challenger_auc_above_threshold"].severity == dg.AssetCheckSeverity.ERROR
    assert _materialized(instance, "deployed_model") == 1
    model_name = blocked.asset_value("evaluation").model_name
    assert _aliases(platform, model_name)[CHAMPION] == "1"


def test_invalid_rows_fail_validation_naming_the_file_column_and_rows(platform, instance, tmp_path):
    good = _materialize(platform, instance)
    assert good.success
    bad_csv = tmp_path / "bad_batch.csv"
    faulty = generate_days(date(2026, 2, 1), 5, 200, faults=FaultConfig(out_of_range_fraction=0.01))
    faulty.to_csv(bad_csv, index=False)
    spec = write_spec(tmp_path, kind="csv", path=str(bad_csv))
    result = _materialize(platform, instance, dataset=str(spec))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "validated_data"
    error = failure.step_failure_data.error
    message = str(error.cause.message if error.cause else error.message)
    assert "bad_batch.csv" in message and "tenure_months" in message and "rows [" in message
    # Nothing downstream ran; the earlier good versions are still the latest.
    for asset in ("validated_data", "features", "challenger_model", "deployed_model"):
        assert _materialized(instance, asset) == 1, asset
    assert _aliases(platform, good.asset_value("deployed_model").model_name)[CHAMPION] == "1"
