import dagster as dg

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.training.resources import MLflowResource

TIMELINE_ARTIFACT = "canary/timeline.png"
TIMELINE_DATA_ARTIFACT = "canary/timeline.json"
# Ticks drawn at most: a canary lasts at most steps x max_step_seconds (3 h by default), which
# at one tick per 15 s is 720 ticks.
MAX_TIMELINE_TICKS = 1_000
# Dagster stamps observations with the daemon's clock, the canary's start is the deploy run's.
CLOCK_SKEW_SECONDS = 300.0


def awaiting_approval_version(instance: dg.DagsterInstance) -> str | None:
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

    version = awaiting_approval_version(context.instance)
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

    from mlplatform.deployment.canary import decide
    from mlplatform.deployment.canary_plan import CanaryPlan
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


def _observations_since_start(instance: dg.DagsterInstance, state) -> list:
    """``deployed_model``'s observations since the canary started, newest first."""
    return instance.fetch_observations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("deployed_model"),
            after_timestamp=state.started_at - CLOCK_SKEW_SECONDS,
        ),
        limit=MAX_TIMELINE_TICKS,
    ).records


def _earlier_ticks(instance: dg.DagsterInstance, state) -> list:
    """This canary's ticks recorded in earlier observations, oldest first (they outlive the
    daemon: the instance's event log keeps them)."""
    from mlplatform.deployment.timeline_plot import CanaryTick

    ticks = []
    for record in reversed(_observations_since_start(instance, state)):
        metadata = record.asset_observation.metadata
        if "tick" not in metadata or "canary_started_at" not in metadata:
            continue
        # The same version may be released twice: its start time tells the two canaries apart.
        same_canary = metadata["canary_version"].value == state.version and (
            abs(metadata["canary_started_at"].value - state.started_at) < 1e-3
        )
        if same_canary:
            ticks.append(CanaryTick.from_dict(metadata["tick"].value))
    return ticks


def _timeline(state, ticks: list):
    """The canary's timeline figure and its metadata value (a PNG inline in markdown)."""
    from mlplatform.deployment.canary_plan import CanaryPlan
    from mlplatform.deployment.timeline_plot import canary_timeline_figure
    from mlplatform.ml.plots import markdown_image, png_bytes

    plan = CanaryPlan.from_dict(state.plan) if state.plan else CanaryPlan()
    champion = f"champion v{state.champion_version}" if state.champion_version else "no champion"
    figure = canary_timeline_figure(
        ticks,
        started_at=state.started_at,
        events=[e for e in state.history if e.get("event") in ("counter_reset", "aborted")],
        max_error_rate=plan.max_error_rate,
        title=f"canary v{state.version} vs {champion}: {state.status.replace('_', ' ')}",
    )
    alt = f"canary v{state.version} timeline"
    return figure, dg.MetadataValue.md(markdown_image(png_bytes(figure), alt))


def _log_timeline(mlflow_tracking: MLflowResource, client, state, figure, ticks: list) -> str:
    """Logs the finished canary's timeline on the run its version came from; returns where."""
    run_id = client.get_model_version(state.model_name, state.version).run_id
    if not run_id:
        return f"not logged: {state.model_name} v{state.version} has no source run"
    data = {
        "model_name": state.model_name,
        "version": state.version,
        "champion_version": state.champion_version,
        "started_at": state.started_at,
        "status": state.status,
        "ticks": [t.to_dict() for t in ticks],
        "history": list(state.history),
    }
    # Both overwrite the same files when repeated, so a retry cannot duplicate anything.
    mlflow_tracking.retrying(
        f"log {TIMELINE_ARTIFACT} on run {run_id}",
        lambda: client.log_figure(run_id, figure, TIMELINE_ARTIFACT),
    )
    mlflow_tracking.retrying(
        f"log {TIMELINE_DATA_ARTIFACT} on run {run_id}",
        lambda: client.log_dict(run_id, data, TIMELINE_DATA_ARTIFACT),
    )
    return f"runs:/{run_id}/{TIMELINE_ARTIFACT}"


def _timeline_metadata(context, mlflow_tracking, client, decision) -> dict:
    """The tick's own record, the timeline so far as a picture and, once the canary finished,
    where in MLflow the picture was logged."""
    from mlplatform.deployment.timeline_plot import CanaryTick

    state, tick = decision.new_state, CanaryTick.from_decision(decision)
    metadata = {
        "canary_started_at": state.started_at,
        "tick": dg.MetadataValue.json(tick.to_dict()),
    }
    finished = decision.action in ("promote", "rollback")
    return {
        **metadata,
        **_drawn_timeline(context, mlflow_tracking, client, state, [tick], finished),
    }


def _drawn_timeline(context, mlflow_tracking, client, state, new_ticks: list, log: bool) -> dict:
    """The timeline (earlier ticks and ``new_ticks``) as a picture, logged to MLflow if ``log``."""
    metadata = {}
    # The decision is already carried out: a picture that fails must not lose its record.
    try:
        ticks = [*_earlier_ticks(context.instance, state), *new_ticks]
        metadata["timeline_ticks"] = len(ticks)
        if not ticks:  # stopped before the controller's first tick: nothing to draw
            return metadata
        figure, metadata["timeline"] = _timeline(state, ticks)
        if log:
            metadata["timeline_artifact"] = _log_timeline(
                mlflow_tracking, client, state, figure, ticks
            )
    except Exception as exc:  # noqa: BLE001 - reported, and the observation still goes out
        context.log.warning(f"canary v{state.version}: timeline not drawn or logged: {exc!r}")
        metadata["timeline_error"] = repr(exc)[:500]
    return metadata


def _stopped_by_hand(context, mlflow_tracking, client, name: str):
    """The closing observation of a canary stopped by hand (a rollback while it ran): its
    timeline up to the stop, in the UI and in MLflow, recorded once; None when there is none."""
    from mlplatform.deployment.canary_state import load_state

    state = load_state(client, name)
    if state is None or not state.history or state.history[-1].get("event") != "aborted":
        return None
    if _stop_recorded(context.instance, state):
        return None
    reason = f"stopped by hand: {state.history[-1].get('reason', 'no reason given')}"
    metadata = {
        "canary_version": state.version,
        "champion_version": state.champion_version or "none",
        "action": "aborted",
        "status": state.status,
        "weight": state.weight,
        "step": state.step,
        "reason": reason,
        "canary_started_at": state.started_at,
        **_drawn_timeline(context, mlflow_tracking, client, state, [], log=True),
    }
    observation = dg.AssetObservation(
        asset_key="deployed_model", description=reason, metadata=metadata
    )
    context.log.info(f"canary v{state.version}: {reason}")
    return dg.SensorResult(skip_reason=reason, asset_events=[observation])


def _stop_recorded(instance: dg.DagsterInstance, state) -> bool:
    """Whether an observation already closed this canary's timeline after a stop by hand."""
    for record in _observations_since_start(instance, state):
        metadata = record.asset_observation.metadata
        if metadata.get("action") is None or metadata["action"].value != "aborted":
            continue
        started = metadata.get("canary_started_at")
        if started is not None and abs(started.value - state.started_at) < 1e-3:
            return True
    return False


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
        stopped = _stopped_by_hand(context, mlflow_tracking, client, name)
        return stopped or dg.SkipReason(f"{name} has no canary running")
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
            **_timeline_metadata(context, mlflow_tracking, client, decision),
        },
    )
    context.log.info(f"canary v{state.version}: {decision.action} - {decision.reason}")
    return dg.SensorResult(skip_reason=decision.reason, asset_events=[observation])
