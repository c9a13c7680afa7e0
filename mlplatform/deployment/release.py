"""Releasing an evaluated challenger: every check again under the model's leases, then one move.

The deploy step decided on one evaluation, one approval and the gate tags some time ago; two
deploys (a retrain and a resumed deploy, or two pods) may race. Under the ``deploy`` lease (the
one rollback and the canary controller hold) and the ``approval`` lease (so no decision lands
half-way), the release re-reads the registry: a champion or challenger that moved, a gate that
did not pass, a missing or voided approval stop it, and of two racing releases exactly one
acts, the other getting a conflict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow import MlflowClient

from mlplatform.deployment.approvals import (
    APPROVAL_LEASE,
    TRIGGERED_BY_TAG,
    Approval,
    approval_from_tags,
    gate_failures,
    parse_approvers,
    rolled_back_after,
)
from mlplatform.deployment.canary_state import DEPLOY_LEASE, LEASE_WAIT_SECONDS, start_canary
from mlplatform.deployment.locks import ConflictError, held
from mlplatform.ml.registry import CHALLENGER, CHAMPION, promote_to_champion, version_for_alias

if TYPE_CHECKING:
    from mlplatform.deployment.canary_plan import CanaryPlan
    from mlplatform.ml.evaluation import Evaluation

KEPT, AWAITING, REJECTED, CANARY, PROMOTED = (
    "kept",
    "awaiting_approval",
    "rejected",
    "canary",
    "promoted",
)


class StaleDecisionError(ConflictError):
    """The registry changed after the evaluation that decided the promotion."""


class ReleaseRefused(RuntimeError):
    """The version must not reach traffic (a deploy gate did not pass); the message says which."""


@dataclass(frozen=True)
class ReleaseOutcome:
    """What the release did (status, see the constants above), why, and the approval it used."""

    status: str
    reason: str
    approval: Approval | None = None


def check_not_stale(client: MlflowClient, evaluation: Evaluation) -> None:
    """Raises StaleDecisionError when champion or challenger moved since the evaluation."""
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


def release(
    client: MlflowClient,
    evaluation: Evaluation,
    approval_required: bool,
    approvers: tuple[str, ...],
    canary_plan: CanaryPlan | None,
    started_by: str,
) -> ReleaseOutcome:
    """Moves a challenger that passed its evaluation towards traffic, if it still may.

    Args:
        client: MLflow client of the registry.
        evaluation: The evaluation that decided to promote (``should_promote``).
        approval_required: Whether a recorded, valid approval is needed.
        approvers: Who may approve (re-checked: the list may have changed).
        canary_plan: Start a canary with this plan when there is a champion to compare with;
            None promotes directly (no serving process to watch).
        started_by: Who releases (the deploy run id), recorded in the canary state.

    Returns:
        Awaiting approval, rejected, canary or promoted, with the reason.

    Raises:
        StaleDecisionError: Champion or challenger moved since the evaluation (for example a
            racing deploy promoted first).
        CanaryConflict: A racing deploy already started this canary.
        LeaseConflict: A rollback, canary step or decision held the model for the whole wait.
        ReleaseRefused: A deploy gate failed or never ran.
    """
    name, version = evaluation.model_name, evaluation.challenger_version
    what = f"release of v{version} by {started_by}"
    with (
        held(client, name, DEPLOY_LEASE, what, wait_seconds=LEASE_WAIT_SECONDS),
        held(client, name, APPROVAL_LEASE, what, wait_seconds=LEASE_WAIT_SECONDS),
    ):
        check_not_stale(client, evaluation)
        tags = client.get_model_version(name, version).tags
        failures = gate_failures(tags)
        if failures:
            raise ReleaseRefused(
                f"{name} v{version} is not released: deploy gate(s) not passed: "
                + "; ".join(failures)
            )
        approval = approval_from_tags(version, tags)
        if approval_required:
            if approval is None:
                reason = (
                    f"v{version} passed its gates and waits for approval: `mlplatform approve "
                    f"{version} --by <approver> --reason ...` (approvers: "
                    f"{', '.join(approvers) or 'none configured'})"
                )
                return ReleaseOutcome(AWAITING, reason)
            if not approval.approved:
                reason = f"v{version} rejected by {approval.by} at {approval.at}: {approval.reason}"
                return ReleaseOutcome(REJECTED, reason, approval)
            blocker = release_blocker(approval, tags, approvers)
            if blocker:
                return ReleaseOutcome(AWAITING, f"v{version} not released: {blocker}", approval)
        if canary_plan is not None and evaluation.champion_version is not None:
            state = start_canary(client, name, version, canary_plan, started_by=started_by)
            reason = f"canary at {state.weight:.0%} of traffic: {evaluation.reason}"
            return ReleaseOutcome(CANARY, reason, approval)
        promote_to_champion(client, name, version)
        return ReleaseOutcome(PROMOTED, evaluation.reason, approval)


def release_blocker(
    approval: Approval, tags: dict[str, str], approvers: Iterable[str]
) -> str | None:
    """Why an approved version must not be released now (None: it may be).

    Re-checked at release time, because tags can be edited outside this module: the approver
    must still be on the list and not be the trainer, the deploy gates must have passed, and a
    version rolled back after its approval (automatically by the canary, or by hand) needs a
    new one.
    """
    if approval.by not in parse_approvers(approvers):
        return f"approved by {approval.by!r}, who is not on the approvers list"
    trainer = tags.get(TRIGGERED_BY_TAG, "")
    if not trainer.strip() or trainer.casefold() == approval.by.casefold():
        return f"approved by {approval.by!r}, but the trainer is {trainer or 'unknown'} (four eyes)"
    failures = gate_failures(tags)
    if failures:
        return "deploy gate(s) not passed: " + "; ".join(failures)
    latest = rolled_back_after(approval, tags)
    if latest is not None:
        return (
            f"rolled back at {latest.isoformat()} after its approval at {approval.at}: it needs "
            "a new approval"
        )
    return None
