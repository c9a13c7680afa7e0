from dataclasses import dataclass

import dagster as dg

from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.training.assets import FOLLOW_THROUGH_GATES
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.deployment.approvals import approval_for, release_blocker
from mlplatform.ml.evaluation import Evaluation
from mlplatform.ml.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    promote_to_champion,
    version_for_alias,
)

KEPT, AWAITING, REJECTED, CANARY, PROMOTED = (
    "kept",
    "awaiting_approval",
    "rejected",
    "canary",
    "promoted",
)


class StaleDecisionError(RuntimeError):
    """The registry changed after the evaluation that decided the promotion."""


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


def _check_not_stale(client, evaluation: Evaluation) -> None:
    # The decision compared the challenger with one champion on one holdout; if the registry
    # moved since (a rollback, a newer challenger, a concurrent deploy), it no longer applies.
    name = evaluation.model_name
    current = version_for_alias(client, name, CHAMPION)
    latest_challenger = version_for_alias(client, name, CHALLENGER)
    if current != evaluation.champion_version or latest_challenger != evaluation.challenger_version:
        raise StaleDecisionError(
            f"{name}: the evaluation compared challenger v{evaluation.challenger_version} "
            f"with champion v{evaluation.champion_version or 'none'}, but the registry now "
            f"has champion v{current or 'none'} and challenger v{latest_challenger}; "
            "re-run evaluation"
        )


def _release(context, client, evaluation: Evaluation, policy: DeploymentPolicy) -> tuple[str, str]:
    """Moves a gated, approved challenger towards traffic; returns (status, reason)."""
    name, version = evaluation.model_name, evaluation.challenger_version
    if policy.serving_url and evaluation.champion_version is not None:
        from mlplatform.deployment.canary_state import start_canary

        state = start_canary(client, name, version, policy.canary_plan())
        context.log.info(f"canary v{version} started at weight {state.weight:.0%}")
        return CANARY, f"canary at {state.weight:.0%} of traffic: {evaluation.reason}"
    # No serving process to watch (or nothing to compare a canary with): promote directly.
    promote_to_champion(client, name, version)
    context.log.info(f"promoted {name} v{version}: {evaluation.reason}")
    return PROMOTED, evaluation.reason


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
    approval = None
    if not evaluation.should_promote:
        status, reason = KEPT, evaluation.reason
        context.log.info(f"kept the champion of {name}: {reason}")
    else:
        _check_not_stale(client, evaluation)
        approval = approval_for(client, name, version)
        if deployment.approval_required and approval is None:
            status = AWAITING
            reason = (
                f"v{version} passed its gates and waits for approval: `mlplatform approve "
                f"{version} --by <approver> --reason ...` (approvers: "
                f"{', '.join(deployment.approver_names) or 'none configured'})"
            )
        elif deployment.approval_required and not approval.approved:
            status = REJECTED
            reason = f"v{version} rejected by {approval.by} at {approval.at}: {approval.reason}"
        elif deployment.approval_required and (
            blocker := release_blocker(
                approval, client.get_model_version(name, version).tags, deployment.approver_names
            )
        ):
            status, reason = AWAITING, f"v{version} not released: {blocker}"
        else:
            status, reason = _release(context, client, evaluation, deployment)
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
