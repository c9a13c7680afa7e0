import dagster as dg

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.training.resources import MLflowResource


def _awaiting(instance: dg.DagsterInstance) -> str | None:
    """The version the latest deploy step left waiting for approval, if it did."""
    record = instance.get_latest_materialization_event(dg.AssetKey("deployed_model"))
    if record is None:
        return None
    metadata = record.asset_materialization.metadata
    status = metadata.get("status")
    if status is None or status.value != "awaiting_approval":
        return None
    return metadata["candidate_version"].value


@dg.sensor(
    job_name="deploy_job",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Continues a deploy that waited for approval once someone approved or "
    "rejected that version.",
)
def approval_sensor(
    context: dg.SensorEvaluationContext, dataset: DatasetResource, mlflow_tracking: MLflowResource
):
    """Re-runs deployed_model once per decision on the version it is waiting for."""
    from mlplatform.deployment.approvals import approval_for

    version = _awaiting(context.instance)
    if version is None:
        return dg.SkipReason("no deploy is waiting for approval")
    name = mlflow_tracking.model_name(dataset.spec().name)
    approval = approval_for(mlflow_tracking.client(), name, version)
    if approval is None:
        return dg.SkipReason(f"{name} v{version} is waiting for approval")
    return dg.RunRequest(
        run_key=f"approval:{name}:v{version}:{approval.at}",
        tags={
            "trigger": "approval",
            "approval/by": approval.by,
            "approval/status": approval.status,
        },
    )


def _tick_canary(client, name: str, serving_url: str):
    """Scrapes the serving metrics, decides, and carries the decision out in the registry."""
    import time

    import httpx

    from mlplatform.deployment.canary import CanaryPlan, decide
    from mlplatform.deployment.canary_state import apply, load_state
    from mlplatform.deployment.metrics import parse_metrics

    state = load_state(client, name)
    if state is None or state.status != "running":
        return None
    text = httpx.get(f"{serving_url.rstrip('/')}/metrics", timeout=10.0).text
    versions = {"canary": state.version, "champion": state.champion_version}
    plan = CanaryPlan.from_dict(state.plan) if state.plan else CanaryPlan()
    decision = decide(plan, state, parse_metrics(text, versions), time.time())
    apply(client, name, decision)
    return decision


@dg.sensor(
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Drives a running canary: 5% -> 25% -> 100% of traffic, or an automatic "
    "rollback when its error rate or p99 latency breaches (sequential test).",
)
def canary_sensor(
    context: dg.SensorEvaluationContext,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
    deployment: DeploymentPolicy,
):
    """One controller step per tick; the state lives in the registry, so restarts resume."""
    from mlplatform.deployment.repair import repair_registry

    name = mlflow_tracking.model_name(dataset.spec().name)
    client = mlflow_tracking.client()
    # A deploy, rollback or canary promotion killed half-way is finished on the next tick.
    repaired = repair_registry(client, name)
    for finished in repaired:
        context.log.warning(f"{name}: {finished}")
    if not deployment.serving_url:
        skipped = "no serving process configured (MLPLATFORM_SERVING_URL)"
        return dg.SkipReason("; ".join([*repaired, skipped]))
    decision = _tick_canary(client, name, deployment.serving_url)
    if decision is None:
        return dg.SkipReason(f"{name} has no canary running")
    state = decision.new_state
    observation = dg.AssetObservation(
        asset_key="deployed_model",
        description=decision.reason,
        metadata={
            "canary_version": state.version,
            "champion_version": state.champion_version or "none",
            "action": decision.action,
            "status": state.status,
            "weight": state.weight,
            "step": state.step,
            "reason": decision.reason,
            "evidence": dg.MetadataValue.json(decision.evidence),
        },
    )
    context.log.info(f"canary v{state.version}: {decision.action} - {decision.reason}")
    return dg.SensorResult(skip_reason=decision.reason, asset_events=[observation])
