from dataclasses import dataclass

import dagster as dg

from mlplatform.defs.training.assets import FOLLOW_THROUGH_GATES
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.ml.evaluation import Evaluation
from mlplatform.ml.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    promote_to_champion,
    version_for_alias,
)


class StaleDecisionError(RuntimeError):
    """The registry changed after the evaluation that decided the promotion."""


@dataclass(frozen=True)
class Deployment:
    """The registry state after a deploy decision."""

    model_name: str
    champion_version: str
    previous_version: str | None
    promoted: bool
    reason: str


@dg.asset(
    group_name="deployment",
    kinds={"mlflow"},
    code_version="2",
    automation_condition=FOLLOW_THROUGH_GATES,
)
def deployed_model(
    context: dg.AssetExecutionContext, evaluation: Evaluation, mlflow_tracking: MLflowResource
) -> dg.Output:
    """The champion model version: the challenger when it passed its gates, else unchanged."""
    client = mlflow_tracking.client()
    name = evaluation.model_name
    if evaluation.should_promote:
        # The decision compared the challenger with one champion on one holdout; if the
        # registry moved since (a rollback, a newer challenger, a concurrent deploy), it no
        # longer applies: refuse rather than promote on a stale comparison.
        current = version_for_alias(client, name, CHAMPION)
        latest_challenger = version_for_alias(client, name, CHALLENGER)
        if current != evaluation.champion_version or (
            latest_challenger != evaluation.challenger_version
        ):
            raise StaleDecisionError(
                f"{name}: the evaluation compared challenger v{evaluation.challenger_version} "
                f"with champion v{evaluation.champion_version or 'none'}, but the registry now "
                f"has champion v{current or 'none'} and challenger v{latest_challenger}; "
                "re-run evaluation"
            )
        promote_to_champion(client, name, evaluation.challenger_version)
        context.log.info(f"promoted {name} v{evaluation.challenger_version}: {evaluation.reason}")
    else:
        context.log.info(f"kept the champion of {name}: {evaluation.reason}")
    champion = version_for_alias(client, name, CHAMPION)
    if champion is None:
        raise RuntimeError(f"{name} has no champion after the deploy step: {evaluation.reason}")
    previous = version_for_alias(client, name, PREVIOUS)
    deployment = Deployment(
        model_name=name,
        champion_version=champion,
        previous_version=previous,
        promoted=evaluation.should_promote,
        reason=evaluation.reason,
    )
    return dg.Output(
        deployment,
        data_version=dg.DataVersion(f"{name}-v{champion}"),
        metadata={
            "model_name": name,
            "champion_version": champion,
            "previous_version": deployment.previous_version or "none",
            "promoted": deployment.promoted,
            "reason": deployment.reason,
            "champion_uri": f"models:/{name}@{CHAMPION}",
        },
    )
