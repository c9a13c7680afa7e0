"""The promotion gate end to end: what gets promoted, what is kept, and what blocks a deploy."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml
from mlflow import MlflowClient

from mlplatform.datasets.spec import load_spec
from mlplatform.definitions import defs
from mlplatform.defs.deployment.assets import StaleDecisionError
from mlplatform.ml.registry import CHALLENGER, CHAMPION, PREVIOUS
from mlplatform_tests.conftest import aliases, materialized_count, retrain

MODEL_CHECKS = {
    "challenger_auc_above_threshold",
    "slice_auc_above_threshold",
    "behavioural_expectations",
    "prediction_coverage",
    "calibration",
    "holdout_power",
}


def test_a_truly_better_challenger_is_promoted_and_the_old_champion_kept_as_previous(
    platform, instance
):
    # A deliberately weak champion (one stump), let through by lowered AUC and slice gates.
    weak = retrain(
        platform,
        instance,
        training={"max_iter": 1, "max_depth": 1},
        min_auc="0.5",
        min_slice_auc=0.0,
    )
    assert weak.success, weak
    strong = retrain(platform, instance)
    assert strong.success
    evaluation = strong.asset_value("evaluation")
    assert evaluation.difference.low > 0.005 and evaluation.should_promote
    assert evaluation.decision == "PROMOTE"
    model_name = evaluation.model_name
    assert aliases(platform, model_name) == {CHALLENGER: "2", CHAMPION: "2", PREVIOUS: "1"}
    client = MlflowClient(tracking_uri=platform.tracking_uri)
    tags = client.get_model_version(model_name, "2").tags
    assert tags["decision"] == "PROMOTE" and tags["compared_with_champion"] == "1"
    checks = {e.check_name: e for e in strong.get_asset_check_evaluations()}
    assert MODEL_CHECKS <= set(checks)
    for name in MODEL_CHECKS - {"calibration", "holdout_power"}:
        assert checks[name].passed, (name, checks[name].description)
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("evaluation")
    ).asset_materialization.metadata
    for key in ("slices", "behaviours", "prediction_coverage", "calibration"):
        assert "|" in metadata[key].value, key
    assert "p-value" in metadata["decision"].value


def test_a_broken_behavioural_expectation_blocks_deployment(platform, instance, tmp_path):
    spec = load_spec(platform.env["MLPLATFORM_DATASET"])
    raw = yaml.safe_load(Path(platform.env["MLPLATFORM_DATASET"]).read_text())
    # Longer contracts lower churn in this world: expecting the opposite must fail.
    raw["behaviours"] = [
        {
            "name": "longer_contract_raises_churn",
            "column": "contract_type",
            "from": "monthly",
            "to": "annual",
            "expect": "increase",
            "min_fraction": 0.9,
        }
    ]
    wrong = tmp_path / "wrong_behaviour.yaml"
    wrong.write_text(yaml.safe_dump(raw))
    assert spec.behaviours and spec.behaviours[0].expect == "decrease"
    result = retrain(platform, instance, dataset=str(wrong))
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = checks["behavioural_expectations"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert "longer_contract_raises_churn" in failed.description
    assert materialized_count(instance, "deployed_model") == 0


def test_a_challenger_better_by_noise_only_is_not_promoted(platform, instance):
    assert retrain(platform, instance).success
    # A near-identical configuration: any AUC difference is noise.
    noisy = retrain(platform, instance, training={"learning_rate": 0.045, "max_iter": 330})
    assert noisy.success
    evaluation = noisy.asset_value("evaluation")
    assert abs(evaluation.difference.delta) < 0.01
    assert evaluation.decision == "KEEP CHAMPION" and not evaluation.should_promote
    assert evaluation.gate_p_value > 0.025
    assert aliases(platform, evaluation.model_name)[CHAMPION] == "1"
    tags = (
        MlflowClient(tracking_uri=platform.tracking_uri)
        .get_model_version(evaluation.model_name, "2")
        .tags
    )
    assert tags["decision"] == "KEEP CHAMPION" and tags["compared_with_champion"] == "1"


def test_a_failed_blocking_model_test_is_in_the_decision_not_only_in_the_check(
    platform, instance, tmp_path
):
    raw = yaml.safe_load(Path(platform.env["MLPLATFORM_DATASET"]).read_text())
    raw["behaviours"][0]["expect"] = "increase"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(raw))
    result = retrain(platform, instance, dataset=str(wrong))
    evaluation = result.asset_value("evaluation")
    assert not evaluation.should_promote and evaluation.decision == "REJECT"
    assert "failed blocking model tests: behaviour" in evaluation.reason
    tags = (
        MlflowClient(tracking_uri=platform.tracking_uri)
        .get_model_version(evaluation.model_name, evaluation.challenger_version)
        .tags
    )
    assert tags["decision"] == "REJECT" and "behaviour" in tags["failed_model_tests"]
    # Materialising deployed_model alone later still does not promote it.
    alone = dg.materialize(
        [*defs.assets],
        selection=dg.AssetSelection.assets("deployed_model"),
        instance=instance,
        resources=platform.resources(str(wrong)),
        raise_on_error=False,
    )
    assert not alone.success  # no champion at all: the deploy step says so loudly
    assert aliases(platform, evaluation.model_name)[CHAMPION] is None


def test_deploy_refuses_a_decision_the_registry_has_moved_past(platform, instance):
    assert retrain(
        platform,
        instance,
        training={"max_iter": 1, "max_depth": 1},
        min_auc="0.5",
        min_slice_auc=0.0,
    ).success
    evaluated = retrain(platform, instance)
    assert evaluated.asset_value("evaluation").should_promote
    # Someone moved the champion after this evaluation (a rollback, another deploy).
    client = MlflowClient(tracking_uri=platform.tracking_uri)
    name = evaluated.asset_value("evaluation").model_name
    client.set_registered_model_alias(name, CHAMPION, "2")
    client.set_registered_model_alias(name, CHAMPION, "1")
    client.set_registered_model_alias(name, CHALLENGER, "1")
    redo = dg.materialize(
        [*defs.assets],
        selection=dg.AssetSelection.assets("deployed_model"),
        instance=instance,
        resources=platform.resources(),
        raise_on_error=False,
    )
    assert not redo.success
    failure = next(e for e in redo.all_events if e.is_step_failure)
    assert StaleDecisionError.__name__ in str(failure.step_failure_data.error.cause.cls_name)
