"""Reads the platform's state from the MLflow registry and the Dagster instance."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlplatform.status.model import (
    ROLES,
    CanaryRow,
    DriftRow,
    GateRow,
    PlatformStatus,
    TriggerRow,
    VersionRow,
    attention,
    drift_level,
)

# Tags the daemon puts on the runs a schedule or a sensor (automation sensors included) launched.
_TRIGGER_TAG = {"schedule": "dagster/schedule_name", "sensor": "dagster/sensor_name"}


def at(timestamp: float | None) -> str | None:
    """Epoch seconds as a compact UTC time, e.g. ``2026-12-03 09:41:07Z``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _version_by_alias(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def version_rows(client: MlflowClient, name: str) -> list[VersionRow]:
    """Champion, previous, challenger and canary with their holdout AUC, decision and approval."""
    from mlplatform.deployment.approvals import approval_from_tags
    from mlplatform.deployment.canary_state import OUTCOME_TAG
    from mlplatform.deployment.rollback import ROLLED_BACK_TAG

    rows = []
    for role in ROLES:
        found = _version_by_alias(client, name, role)
        if found is None:
            rows.append(VersionRow(role, None))
            continue
        tags = found.tags
        approval = approval_from_tags(str(found.version), tags)
        rows.append(
            VersionRow(
                role=role,
                version=str(found.version),
                auc=tags.get("holdout_auc"),
                auc_ci=tags.get("holdout_auc_ci"),
                decision=tags.get("decision"),
                approval=None if approval is None else approval.status,
                approval_by=None if approval is None else approval.by,
                approval_at=None if approval is None else approval.at,
                created_at=at(found.creation_timestamp / 1000),
                rolled_back=tags.get(ROLLED_BACK_TAG),
                canary_outcome=tags.get(OUTCOME_TAG),
            )
        )
    return rows


def canary_row(client: MlflowClient, name: str) -> CanaryRow | None:
    """The latest canary of the model (running or finished), or None if it never had one."""
    from mlplatform.deployment.canary_plan import CanaryPlan
    from mlplatform.deployment.canary_state import load_state

    try:
        state = load_state(client, name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if state is None:
        return None
    plan = CanaryPlan.from_dict(state.plan) if state.plan else CanaryPlan()
    last = state.history[-1] if state.history else {}
    canary, champion = state.total_counts["canary"], state.total_counts["champion"]
    return CanaryRow(
        version=state.version,
        champion_version=state.champion_version,
        status=state.status,
        step=state.step + 1,
        steps=len(plan.steps),
        weight=state.weight,
        canary_requests=canary.requests,
        canary_errors=canary.errors,
        champion_requests=champion.requests,
        champion_errors=champion.errors,
        updated_at=at(state.updated_at),
        last_event=str(last.get("reason") or last.get("event", "")),
    )


def drift_row(instance: dg.DagsterInstance) -> DriftRow | None:
    """The drift sensor's latest report (the ``drift_report`` asset), or None before the first."""
    record = instance.get_latest_materialization_event(dg.AssetKey("drift_report"))
    if record is None:
        return None
    meta = {key: value.value for key, value in record.asset_materialization.metadata.items()}
    max_psi = float(meta.get("max_psi", 0.0))
    return DriftRow(
        day=str(meta.get("day", "")),
        checked_at=at(record.timestamp),
        champion_version=str(meta.get("champion_version", "")),
        rows=int(meta.get("rows", 0)),
        max_psi=max_psi,
        max_feature=str(meta.get("max_feature", "")),
        level=drift_level(max_psi),
        decision=str(meta.get("decision", "")),
    )


def trigger_rows(instance: dg.DagsterInstance, triggers: list[tuple[str, str]]) -> list[TriggerRow]:
    """The last run each (name, kind) trigger launched; kind is "schedule" or "sensor"."""
    rows = []
    for trigger, kind in triggers:
        runs = instance.get_run_records(
            filters=dg.RunsFilter(tags={_TRIGGER_TAG[kind]: trigger}), limit=1
        )
        if not runs:
            rows.append(TriggerRow(trigger, kind))
            continue
        record = runs[0]
        rows.append(
            TriggerRow(
                trigger,
                kind,
                run_id=record.dagster_run.run_id,
                status=record.dagster_run.status.value,
                started_at=at(record.start_time or record.create_timestamp.timestamp()),
            )
        )
    return rows


def failed_gates(instance: dg.DagsterInstance, asset_graph) -> list[GateRow]:
    """The asset checks whose latest evaluation failed (blocking ones stop what is downstream)."""
    keys = sorted(asset_graph.asset_check_keys, key=lambda key: key.to_user_string())
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    rows = []
    for key, record in latest.items():
        if record.event is None or record.event.asset_check_evaluation is None:
            continue
        evaluation = record.event.asset_check_evaluation
        if evaluation.passed:
            continue
        rows.append(
            GateRow(
                check=key.to_user_string(),
                blocking=asset_graph.get_check_spec(key).blocking,
                evaluated_at=at(record.create_timestamp),
                run_id=record.run_id,
                partition=record.partition,
                description=evaluation.description,
            )
        )
    return sorted(rows, key=lambda row: (not row.blocking, row.check))


def awaiting_approval(instance: dg.DagsterInstance, client: MlflowClient, name: str) -> str | None:
    """The version the latest deploy step left waiting, while nobody has decided on it."""
    from mlplatform.defs.deployment.sensors import awaiting_approval_version
    from mlplatform.deployment.approvals import approval_for

    version = awaiting_approval_version(instance)
    return version if version is not None and approval_for(client, name, version) is None else None


def collect(
    client: MlflowClient,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    *,
    dataset: str,
    model_name: str,
    dagster_home: str,
    tracking_uri: str,
) -> PlatformStatus:
    """Everything ``mlplatform status`` shows, with the attention items worked out.

    Args:
        client: MLflow client of the registry.
        instance: The Dagster instance the daemon and the CLI run against.
        defs: The code location's definitions (its triggers and asset checks).
        dataset: The data set's name.
        model_name: Its registered model.
        dagster_home: Where the instance lives (shown, not read).
        tracking_uri: The MLflow tracking URI, credentials already redacted (shown, not read).

    Returns:
        The status.
    """
    repository = defs.get_repository_def()
    triggers = [(s.name, "schedule") for s in repository.schedule_defs]
    # canary_sensor launches no runs (it moves aliases): its state is the canary row.
    triggers += [
        (s.name, "sensor")
        for s in repository.sensor_defs
        if s.targets or isinstance(s, dg.AutomationConditionSensorDefinition)
    ]
    status = PlatformStatus(
        dataset=dataset,
        model_name=model_name,
        dagster_home=dagster_home,
        tracking_uri=tracking_uri,
        versions=version_rows(client, model_name),
        canary=canary_row(client, model_name),
        drift=drift_row(instance),
        triggers=trigger_rows(instance, sorted(triggers)),
        failed_gates=failed_gates(instance, repository.asset_graph),
        awaiting_approval=awaiting_approval(instance, client, model_name),
    )
    status.attention = attention(status)
    return status
