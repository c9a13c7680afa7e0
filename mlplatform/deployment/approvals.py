"""Manual approval of a model version before it may be deployed: who, when, why, four eyes.

The decision is stored on the MLflow model version, so the audit trail lives where the model
lives and survives restarts of every process. One tag, ``mlplatform.approval.record``, holds the
decision in force and the history of every decision (approve or reject) as one JSON value: one
write records it, so no reader ever sees the status of one decision with the name of another.
The readable tags (status, by, at, reason, history) are copies written after it.

Decisions on a model are serialised by its ``approval`` lease (:mod:`locks`): everything is
checked again under it, and a decision that would silently replace another (a second approval,
an approval over a rejection) is refused as a conflict unless explicitly superseding.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlplatform.deployment.locks import ConflictError, LeaseConflict, held

RECORD_TAG = "mlplatform.approval.record"
STATUS_TAG = "mlplatform.approval.status"
BY_TAG = "mlplatform.approval.by"
AT_TAG = "mlplatform.approval.at"
REASON_TAG = "mlplatform.approval.reason"
HISTORY_TAG = "mlplatform.approval.history"
TRIGGERED_BY_TAG = "mlplatform.triggered_by"
# Deploy gates outside the evaluation (serving parity, smoke test) record "passed"/"failed";
# approval and release need each required one to say "passed" (a gate that never ran fails).
GATE_TAG_PREFIX = "mlplatform.gate."
REQUIRED_GATES = ("serving_parity", "serving_smoke_test")
APPROVED, REJECTED = "approved", "rejected"
APPROVAL_LEASE = "approval"
# Two people deciding at once: the second waits for the first, then sees its decision.
LEASE_WAIT_SECONDS = 15.0
# Tag values stay under 5,000 characters (the registered-model limit of SQL stores); the
# history keeps the newest decisions.
_MAX_TAG = 4_900


class ApprovalError(ValueError):
    """An approval or rejection that is not allowed; the message says why."""


class ApprovalConflict(ApprovalError, ConflictError):
    """Another decision on the version got there first (or is being recorded); nothing changed."""


@dataclass(frozen=True)
class Approval:
    """The latest approval decision on one model version.

    Attributes:
        version: Model version.
        status: "approved" or "rejected".
        by: Who decided.
        at: When (ISO 8601, UTC).
        reason: Why.
    """

    version: str
    status: str
    by: str
    at: str
    reason: str

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


def triggered_by(run_tags: dict[str, str], fallback_user: str) -> str:
    """Who started a training run: the Dagster user, else the schedule or sensor, else the OS
    user of the process that launched it (the CLI)."""
    if run_tags.get("dagster/user"):
        return run_tags["dagster/user"]
    for key, kind in (("dagster/schedule_name", "schedule"), ("dagster/sensor_name", "sensor")):
        if run_tags.get(key):
            return f"{kind}:{run_tags[key]}"
    return run_tags.get("mlplatform/triggered_by") or fallback_user


def parse_approvers(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Approver names from a comma-separated string (or a list), trimmed, empty ones dropped."""
    names = raw.split(",") if isinstance(raw, str) else raw
    return tuple(name.strip() for name in names if name and name.strip())


def _version(client: MlflowClient, model_name: str, version: str):
    try:
        return client.get_model_version(model_name, str(version))
    except MlflowException as exc:
        raise ApprovalError(f"{model_name} has no version {version!r}") from exc


def approval_from_tags(version: str, tags: dict[str, str]) -> Approval | None:
    """The decision in force from a version's tags (its record), or None when nobody decided."""
    raw = tags.get(RECORD_TAG)
    if raw is not None:
        return Approval(**json.loads(raw)["decision"])
    if STATUS_TAG not in tags:
        return None
    # Recorded before the single record tag existed: the individual tags.
    return Approval(
        str(version),
        tags[STATUS_TAG],
        tags.get(BY_TAG, ""),
        tags.get(AT_TAG, ""),
        tags.get(REASON_TAG, ""),
    )


def approval_for(client: MlflowClient, model_name: str, version: str) -> Approval | None:
    """The latest decision recorded on a version, or None when nobody decided yet."""
    return approval_from_tags(str(version), _version(client, model_name, version).tags)


def gate_failures(tags: dict[str, str]) -> list[str]:
    """The deploy gates a version has not passed, from its tags (empty: all passed).

    A required gate counts only when its tag says "passed": one that failed, never ran or
    records anything else is listed, and so is any other recorded gate that did not pass.
    """
    recorded = {
        key.removeprefix(GATE_TAG_PREFIX): value
        for key, value in tags.items()
        if key.startswith(GATE_TAG_PREFIX)
    }
    failures = [
        f"{gate} never ran (no {GATE_TAG_PREFIX}{gate} tag)"
        for gate in REQUIRED_GATES
        if gate not in recorded
    ]
    failures += [
        f"{gate} {value}" if value == "failed" else f"{gate} recorded {value!r}, not 'passed'"
        for gate, value in sorted(recorded.items())
        if value != "passed"
    ]
    return failures


def record_decision(
    client: MlflowClient,
    model_name: str,
    version: str,
    status: str,
    by: str,
    reason: str,
    approvers: Iterable[str],
    now: datetime | None = None,
    supersede: bool = False,
) -> Approval:
    """Records an approval or rejection of one model version, after checking who may decide.

    Everything is checked again under the model's approval lease, so of two people deciding at
    once exactly one decision is recorded and the other gets :class:`ApprovalConflict`.

    Args:
        client: MLflow client of the registry.
        model_name: Registered model name.
        version: The version decided on.
        status: "approved" or "rejected".
        by: The person deciding; must be a configured approver and, to approve, not the one who
            triggered the version's training (four eyes).
        reason: Why; required.
        approvers: Names allowed to decide.
        now: Decision time (default: now, UTC).
        supersede: Replace a decision in force with this one (a rejection may always replace
            an approval: it only makes deployment safer).

    Returns:
        The recorded decision.

    Raises:
        ApprovalError: Unknown version, not an approver, the trainer approving their own model,
            no reason, or approving a version whose evaluation or deploy gates did not pass
            (or never ran).
        ApprovalConflict: The same decision is already in force, an approval would replace a
            rejection without ``supersede``, or another decision held the lease too long.
    """
    if status not in (APPROVED, REJECTED):
        raise ApprovalError(f"decision must be '{APPROVED}' or '{REJECTED}', not {status!r}")
    allowed = parse_approvers(approvers)
    by, reason = by.strip(), reason.strip()
    if not allowed:
        raise ApprovalError("no approvers are configured (MLPLATFORM_APPROVERS): nobody may decide")
    if by not in allowed:
        raise ApprovalError(f"{by!r} is not an approver; approvers: {', '.join(allowed)}")
    if not reason:
        raise ApprovalError("a reason is required: say why (it is kept in the audit trail)")
    _version(client, model_name, version)  # an unknown version is an error, not a conflict
    try:
        with held(
            client,
            model_name,
            APPROVAL_LEASE,
            f"{by} recording '{status}' on v{version}",
            wait_seconds=LEASE_WAIT_SECONDS,
        ):
            tags = _version(client, model_name, version).tags
            _check_allowed(model_name, str(version), status, by, tags)
            _check_no_conflict(model_name, str(version), status, tags, supersede)
            at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
            approval = Approval(str(version), status, by, at, reason[:_MAX_TAG])
            _write(client, model_name, str(version), approval, tags)
    except LeaseConflict as exc:
        raise ApprovalConflict(f"{exc} (another decision on {model_name})") from exc
    return approval


def _check_allowed(name: str, version: str, status: str, by: str, tags: dict[str, str]) -> None:
    if status != APPROVED:
        return  # anyone on the list may reject: it can only make deployment safer
    trainer = tags.get(TRIGGERED_BY_TAG, "")
    if not trainer.strip():
        raise ApprovalError(
            f"{name} v{version} records no trainer ({TRIGGERED_BY_TAG}): four eyes cannot "
            "be checked, so it cannot be approved"
        )
    if trainer.casefold() == by.casefold():
        raise ApprovalError(
            f"{by} triggered the training of {name} v{version}: someone else must approve "
            "it (four eyes)"
        )
    decision = tags.get("decision")
    if decision != "PROMOTE":
        raise ApprovalError(
            f"{name} v{version} did not pass its gates (evaluation decision: "
            f"{decision or 'not evaluated'}; {tags.get('decision_reason', 'no reason recorded')})"
        )
    failures = gate_failures(tags)
    if failures:
        raise ApprovalError(
            f"{name} v{version} cannot be approved: deploy gate(s) not passed: "
            + "; ".join(failures)
        )


def _check_no_conflict(
    name: str, version: str, status: str, tags: dict[str, str], supersede: bool
) -> None:
    current = approval_from_tags(version, tags)
    if current is None or supersede:
        return
    if current.approved and rolled_back_after(current, tags) is not None:
        return  # an approval a rollback voided is no longer in force
    what = f"{name} v{version} was {current.status} by {current.by} at {current.at}"
    if current.status == status:
        raise ApprovalConflict(f"{what} ({current.reason}): nothing recorded")
    if status == APPROVED:
        raise ApprovalConflict(
            f"{what} ({current.reason}): nothing recorded. To approve it anyway, decide again "
            "with --supersede"
        )


def _write(
    client: MlflowClient, name: str, version: str, approval: Approval, tags: dict[str, str]
) -> None:
    if RECORD_TAG in tags:
        history = json.loads(tags[RECORD_TAG])["history"]
    else:  # decisions recorded before the record tag existed
        history = json.loads(tags.get(HISTORY_TAG, "[]"))
    history.append(asdict(approval))
    record = {"decision": asdict(approval), "history": history}
    encoded = json.dumps(record)
    while len(encoded) > _MAX_TAG and len(history) > 1:
        history.pop(0)
        encoded = json.dumps(record)
    # The record is the decision (one write); the rest are readable copies of it.
    client.set_model_version_tag(name, version, RECORD_TAG, encoded)
    for key, value in (
        (HISTORY_TAG, json.dumps(history)),
        (BY_TAG, approval.by),
        (AT_TAG, approval.at),
        (REASON_TAG, approval.reason),
        (STATUS_TAG, approval.status),
    ):
        client.set_model_version_tag(name, version, key, value)


def rolled_back_after(approval: Approval, tags: dict[str, str]) -> datetime | None:
    """When the version was rolled back after this approval (voiding it), or None."""
    rolled_back = [
        tags.get("mlplatform.rolled_back", "").split(" ", 1)[0],
        tags.get("mlplatform.canary.decided_at", "")
        if tags.get("mlplatform.canary.outcome") == "rolled_back"
        else "",
    ]
    latest = max((_instant(t) for t in rolled_back if t), default=None)
    if latest is not None and _instant(approval.at) <= latest:
        return latest
    return None


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
