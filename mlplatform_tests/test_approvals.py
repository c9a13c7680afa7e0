"""Manual approval: who may decide, four eyes, the audit trail on the version, and the deploy
that waits for it and resumes through approval_sensor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import dagster as dg
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from mlplatform.defs.deployment.sensors import approval_sensor
from mlplatform.deployment.approvals import (
    GATE_TAG_PREFIX,
    REQUIRED_GATES,
    TRIGGERED_BY_TAG,
    ApprovalError,
    approval_for,
    parse_approvers,
    record_decision,
    triggered_by,
)
from mlplatform.deployment.release import release_blocker
from mlplatform_tests.conftest import aliases, materialized_count, retrain

NAME = "approval-test"
APPROVERS = "alice, bob"


@pytest.fixture(scope="module")
def registry_client(tmp_path_factory):
    """One sqlite registry for the module: creating its tables takes seconds."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        # mlflow.set_*_uri also export these; the context puts them back afterwards.
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield MlflowClient(uri, uri)
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@pytest.fixture
def registry(registry_client):
    """A fresh model: v1 passed its gates, v2 kept the champion; both trained by carol."""
    global NAME  # one registered model per test, in the module's registry
    NAME = f"approval-test-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(registry_client._tracking_client.tracking_uri)
    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    for _ in range(2):
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=NAME,
                pip_requirements=["scikit-learn"],  # no requirement inference: fast
            )
    for version, decision in (("1", "PROMOTE"), ("2", "KEEP CHAMPION")):
        registry_client.set_model_version_tag(NAME, version, "decision", decision)
        registry_client.set_model_version_tag(NAME, version, TRIGGERED_BY_TAG, "carol")
        for gate in REQUIRED_GATES:
            registry_client.set_model_version_tag(NAME, version, GATE_TAG_PREFIX + gate, "passed")
    return registry_client


def _decide(client, version="1", status="approved", by="alice", reason="looked at slices", **kw):
    return record_decision(client, NAME, version, status, by, reason, APPROVERS, **kw)


def test_an_approval_is_recorded_on_the_version_with_who_when_and_why(registry):
    when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    record_decision(registry, NAME, "1", "approved", "alice", "slices fine", APPROVERS, when)
    approval = approval_for(registry, NAME, "1")
    assert approval.approved and approval.by == "alice" and approval.reason == "slices fine"
    assert approval.at == "2026-11-25T10:00:00+00:00"
    # The audit trail is in the registry: a fresh client (another process) sees it.
    fresh = MlflowClient(registry._tracking_client.tracking_uri)
    assert approval_for(fresh, NAME, "1") == approval


def test_every_decision_is_kept_in_the_history_and_the_latest_wins(registry):
    _decide(registry, by="alice")
    _decide(registry, status="rejected", by="bob", reason="drift in region")
    assert approval_for(registry, NAME, "1").status == "rejected"
    history = registry.get_model_version(NAME, "1").tags["mlplatform.approval.history"]
    assert '"by": "alice"' in history and '"by": "bob"' in history
    # Approving over a rejection must be explicit: the approver may not have seen it.
    with pytest.raises(ApprovalError, match="was rejected by bob .* --supersede"):
        _decide(registry, by="alice", reason="fixed")
    _decide(registry, by="alice", reason="fixed", supersede=True)
    assert approval_for(registry, NAME, "1").by == "alice"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "mallory"}, "'mallory' is not an approver; approvers: alice, bob"),
        ({"by": "carol"}, "'carol' is not an approver"),
        ({"reason": "  "}, "a reason is required"),
        ({"version": "99"}, "has no version '99'"),
        ({"version": "2"}, "did not pass its gates \\(evaluation decision: KEEP CHAMPION"),
        ({"status": "maybe"}, "decision must be 'approved' or 'rejected'"),
    ],
)
def test_disallowed_decisions_are_refused_and_change_nothing(registry, kwargs, message):
    with pytest.raises(ApprovalError, match=message):
        _decide(registry, **kwargs)
    if kwargs.get("version") != "99":
        assert approval_for(registry, NAME, kwargs.get("version", "1")) is None


def test_the_person_who_triggered_training_cannot_approve_it(registry):
    with pytest.raises(ApprovalError, match="carol triggered the training .*four eyes"):
        record_decision(registry, NAME, "1", "approved", "carol", "mine", "alice, carol")
    # Rejecting your own model is allowed: it can only make deployment safer.
    record_decision(registry, NAME, "1", "rejected", "carol", "found a bug", "alice, carol")


def test_a_failed_deploy_gate_blocks_approval(registry):
    registry.set_model_version_tag(NAME, "1", f"{GATE_TAG_PREFIX}serving_parity", "failed")
    with pytest.raises(ApprovalError, match="deploy gate\\(s\\) not passed: serving_parity failed"):
        _decide(registry)


def test_no_approvers_configured_means_nobody_may_approve(registry):
    with pytest.raises(ApprovalError, match="no approvers are configured"):
        record_decision(registry, NAME, "1", "approved", "alice", "ok", "")


def test_a_version_without_a_recorded_trainer_cannot_be_approved(registry):
    registry.delete_model_version_tag(NAME, "1", TRIGGERED_BY_TAG)
    with pytest.raises(ApprovalError, match="records no trainer"):
        _decide(registry)


def test_a_version_rolled_back_after_its_approval_needs_a_new_one(registry):
    approval = record_decision(
        registry,
        NAME,
        "1",
        "approved",
        "alice",
        "ok",
        APPROVERS,
        datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    )
    tags = dict(registry.get_model_version(NAME, "1").tags)
    assert release_blocker(approval, tags, APPROVERS) is None
    rolled = {
        **tags,
        "mlplatform.canary.outcome": "rolled_back",
        "mlplatform.canary.decided_at": "2026-11-25T11:00:00+00:00",
    }
    assert "needs a new approval" in release_blocker(approval, rolled, APPROVERS)
    by_hand = {**tags, "mlplatform.rolled_back": "2026-11-25T12:00:00+00:00 by bob: slow"}
    assert "needs a new approval" in release_blocker(approval, by_hand, APPROVERS)
    # The rollback voided the approval in force, so a new one is not a conflict.
    registry.set_model_version_tag(
        NAME, "1", "mlplatform.rolled_back", by_hand["mlplatform.rolled_back"]
    )
    later = record_decision(
        registry,
        NAME,
        "1",
        "approved",
        "bob",
        "fixed",
        APPROVERS,
        datetime(2026, 11, 25, 13, 0, tzinfo=UTC),
    )
    assert release_blocker(later, by_hand, APPROVERS) is None


def test_an_approval_edited_by_hand_is_not_trusted_at_release(registry):
    approval = _decide(registry)
    tags = dict(registry.get_model_version(NAME, "1").tags)
    forged = approval.__class__(**{**approval.__dict__, "by": "carol"})
    assert "four eyes" in release_blocker(forged, tags, "alice, bob, carol")
    assert "not on the approvers list" in release_blocker(forged, tags, APPROVERS)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"dagster/user": "dana@example.com"}, "dana@example.com"),
        ({"dagster/schedule_name": "weekly_retrain_schedule"}, "schedule:weekly_retrain_schedule"),
        ({"dagster/sensor_name": "psi_drift_sensor"}, "sensor:psi_drift_sensor"),
        ({}, "os-user"),
    ],
)
def test_who_triggered_a_training_run(tags, expected):
    assert triggered_by(tags, "os-user") == expected


def test_approvers_are_parsed_from_a_comma_separated_setting():
    assert parse_approvers(" alice,bob ,, carol") == ("alice", "bob", "carol")


def test_a_deploy_waits_for_approval_then_approval_sensor_resumes_it(platform, instance):
    required = {"require_approval": "true"}
    assert retrain(platform, instance, deployment=required).success
    record = instance.get_latest_materialization_event(dg.AssetKey("deployed_model"))
    assert record.asset_materialization.metadata["status"].value == "awaiting_approval"
    name = "mlplatform-synthetic_churn"
    assert aliases(platform, name).get("champion") is None
    resources = platform.resources(deployment=required)
    context = dg.build_sensor_context(instance=instance, resources=resources)
    assert isinstance(approval_sensor(context), dg.SkipReason)

    client = resources["mlflow_tracking"].client()
    record_decision(client, name, "1", "approved", "reviewer", "gates and slices fine", "reviewer")
    request = approval_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert request.run_key.startswith(f"approval:{name}:v1:")
    assert request.tags["trigger"] == "approval"
    from mlplatform.definitions import defs

    assert defs.resolve_job_def("deploy_job").tags["mlplatform/lane"] == "retrain"
    resumed = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets("deployed_model"),
        instance=instance,
        resources=resources,
        tags=request.tags,
    )
    assert resumed.success
    assert aliases(platform, name)["champion"] == "1"
    record = instance.get_latest_materialization_event(dg.AssetKey("deployed_model"))
    metadata = record.asset_materialization.metadata
    assert metadata["status"].value == "promoted"
    assert "reviewer" in metadata["approval"].value
    assert materialized_count(instance, "deployed_model") == 2
