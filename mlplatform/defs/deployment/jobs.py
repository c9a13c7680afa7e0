import dagster as dg
from pydantic import Field

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.training.assets import RETRAIN_RUN_TAGS
from mlplatform.defs.training.resources import MLflowResource


class ApprovalConfig(dg.Config):
    """A decision on one model version, made in the launchpad."""

    version: str = Field(description="Model version, e.g. '7'.")
    decision: str = Field(default="approved", description="'approved' or 'rejected'.")
    by: str = Field(description="Your name; must be on the approvers list.")
    reason: str = Field(description="Why; kept in the audit trail on the model version.")
    supersede: bool = Field(
        default=False,
        description="Replace the decision in force (needed to approve over a rejection).",
    )


@dg.op
def record_approval(
    context: dg.OpExecutionContext,
    config: ApprovalConfig,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
    deployment: DeploymentPolicy,
) -> None:
    """Records the decision as tags on the model version (approval_sensor resumes the deploy)."""
    from mlplatform.deployment.approvals import ApprovalError, record_decision

    name = mlflow_tracking.model_name(dataset.spec().name)
    try:
        approval = record_decision(
            mlflow_tracking.client(),
            name,
            config.version,
            config.decision,
            config.by,
            config.reason,
            deployment.approver_names,
            supersede=config.supersede,
        )
    except ApprovalError as exc:
        raise dg.Failure(description=str(exc)) from exc
    context.log.info(f"{name} v{approval.version} {approval.status} by {approval.by}")


@dg.job(
    description="Approve or reject a model version for deployment (launchpad: version, "
    "decision, by, reason)."
)
def approval_job():
    record_approval()


deploy_job = dg.define_asset_job(
    name="deploy_job",
    selection=dg.AssetSelection.assets("deployed_model"),
    description="The deploy step alone, on the stored evaluation: resumes a deploy that waited "
    "for approval.",
    # It moves aliases: never at the same time as a retrain.
    tags=RETRAIN_RUN_TAGS,
)
