from dataclasses import dataclass

import dagster as dg

from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.training.assets import FOLLOW_THROUGH_GATES
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.deployment.release import (
    AWAITING,
    CANARY,
    KEPT,
    PROMOTED,
    REJECTED,
    StaleDecisionError,
    release,
)
from mlplatform.deployment.repair import repair_registry
from mlplatform.ml.evaluation import Evaluation
from mlplatform.ml.registry import CHAMPION, PREVIOUS, version_for_alias

__all__ = ["AWAITING", "CANARY", "KEPT", "PROMOTED", "REJECTED", "Deployment", "StaleDecisionError"]


@dataclass(frozen=True)
class Deployment:
    """The registry state after a deploy decision.

    Attributes:
        status: kept (the challenger lost), awaiting_approval, rejected (by an approver),
            canary (released to a share of traffic) or promoted (champion now).
    """

    model_name: str
    champion_version: str
    previous_version: str | None
    promoted: bool
    reason: str
    status: str = KEPT
    candidate_version: str | None = None


@dg.asset(
    group_name="deployment",
    kinds={"mlflow"},
    code_version="3",
    automation_condition=FOLLOW_THROUGH_GATES,
)
def deployed_model(
    context: dg.AssetExecutionContext,
    evaluation: Evaluation,
    mlflow_tracking: MLflowResource,
    deployment: DeploymentPolicy,
) -> dg.Output:
    """The champion model version: the challenger once it passed its gates and was approved."""
    client = mlflow_tracking.client()
    name, version = evaluation.model_name, evaluation.challenger_version
    # A deploy, rollback or canary promotion killed half-way is finished before deciding.
    for repaired in repair_registry(client, name):
        context.log.warning(f"{name}: {repaired}")
    approval = None
    if not evaluation.should_promote:
        status, reason = KEPT, evaluation.reason
        context.log.info(f"kept the champion of {name}: {reason}")
    elif version_for_alias(client, name, CHAMPION) == version:
        # A re-run after this very promotion was interrupted (and finished by the repair).
        status, reason = PROMOTED, f"v{version} is the champion already: {evaluation.reason}"
    else:
        # Everything is checked again under the model's leases: a racing deploy, rollback or
        # decision makes this step fail with a conflict instead of acting on a stale view.
        outcome = release(
            client,
            evaluation,
            approval_required=deployment.approval_required,
            approvers=deployment.approver_names,
            canary_plan=deployment.canary_plan() if deployment.serving_url else None,
            started_by=f"deploy run {context.run.run_id}",
        )
        status, reason, approval = outcome.status, outcome.reason, outcome.approval
        context.log.info(f"{name} v{version}: {status} - {reason}")
    champion = version_for_alias(client, name, CHAMPION)
    if champion is None and status in (KEPT, PROMOTED, CANARY):
        raise RuntimeError(f"{name} has no champion after the deploy step: {reason}")
    result = Deployment(
        model_name=name,
        champion_version=champion or "none",
        previous_version=version_for_alias(client, name, PREVIOUS),
        promoted=status == PROMOTED,
        reason=reason,
        status=status,
        candidate_version=version,
    )
    metadata = {
        "model_name": name,
        "status": status,
        "candidate_version": version,
        "champion_version": result.champion_version,
        "previous_version": result.previous_version or "none",
        "promoted": result.promoted,
        "reason": reason,
        "champion_uri": f"models:/{name}@{CHAMPION}",
    }
    if approval is not None:
        metadata["approval"] = dg.MetadataValue.md(
            f"| version | decision | by | at | reason |\n| --- | --- | --- | --- | --- |\n"
            f"| v{version} | {approval.status} | {approval.by} | {approval.at} | "
            f"{approval.reason} |"
        )
    return dg.Output(
        result,
        data_version=dg.DataVersion(f"{name}-v{result.champion_version}-{status}-v{version}"),
        metadata=metadata,
    )
