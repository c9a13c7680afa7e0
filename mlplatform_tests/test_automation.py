"""Retrain on a code change: declarative automation, evaluated with evaluate_automation_conditions."""

from __future__ import annotations

import dagster as dg

from mlplatform.defs.training.assets import RETRAIN_ON_CODE_CHANGE, TRAINING_CODE_VERSION


def _graph(code_version: str):
    @dg.asset
    def features() -> int:
        return 1

    @dg.asset(
        deps=[features], code_version=code_version, automation_condition=RETRAIN_ON_CODE_CHANGE
    )
    def challenger_model() -> None:
        return None

    return [features, challenger_model]


def _requested(result) -> int:
    return result.get_num_requested(dg.AssetKey("challenger_model"))


def test_the_training_code_version_is_a_digest_of_the_training_code():
    assert len(TRAINING_CODE_VERSION) == 16 and int(TRAINING_CODE_VERSION, 16) >= 0


def test_a_new_training_code_version_requests_one_retrain_and_only_once():
    with dg.instance_for_test() as instance:
        assert dg.materialize(_graph("v1"), instance=instance).success
        first = dg.evaluate_automation_conditions(_graph("v1"), instance)
        assert _requested(first) == 0
        unchanged = dg.evaluate_automation_conditions(_graph("v1"), instance, cursor=first.cursor)
        assert _requested(unchanged) == 0
        changed = dg.evaluate_automation_conditions(_graph("v2"), instance, cursor=unchanged.cursor)
        assert _requested(changed) == 1
        again = dg.evaluate_automation_conditions(_graph("v2"), instance, cursor=changed.cursor)
        assert _requested(again) == 0


def test_a_run_of_another_trigger_finishing_as_the_code_changes_does_not_swallow_the_change():
    with dg.instance_for_test() as instance:
        assert dg.materialize(_graph("v1"), instance=instance).success
        seen = dg.evaluate_automation_conditions(_graph("v1"), instance)
        # A scheduled retrain with the old code finishes just before the new code is loaded.
        assert dg.materialize(_graph("v1"), instance=instance).success
        changed = dg.evaluate_automation_conditions(_graph("v2"), instance, cursor=seen.cursor)
        assert _requested(changed) == 1
        again = dg.evaluate_automation_conditions(_graph("v2"), instance, cursor=changed.cursor)
        assert _requested(again) == 0


def test_no_retrain_while_an_upstream_blocking_check_fails():
    @dg.asset
    def features() -> int:
        return 1

    @dg.asset_check(asset=features, blocking=True)
    def features_ok() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR)

    def model(code_version):
        @dg.asset(
            deps=[features], code_version=code_version, automation_condition=RETRAIN_ON_CODE_CHANGE
        )
        def challenger_model() -> None:
            return None

        return challenger_model

    with dg.instance_for_test() as instance:
        dg.materialize([features, model("v1")], instance=instance, raise_on_error=False)
        dg.materialize([features, features_ok], instance=instance, raise_on_error=False)
        first = dg.evaluate_automation_conditions([features, features_ok, model("v1")], instance)
        changed = dg.evaluate_automation_conditions(
            [features, features_ok, model("v2")], instance, cursor=first.cursor
        )
        assert _requested(changed) == 0
