"""Manual approval of a model version before it may be deployed: who, when, why, four eyes.

The decision is stored as tags on the MLflow model version, so the audit trail lives where the
model lives and survives restarts of every process. Every decision (approve or reject) is also
appended to a JSON history tag; the latest decision wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

STATUS_TAG = "mlplatform.approval.status"
BY_TAG = "mlplatform.approval.by"
AT_TAG = "mlplatform.approval.at"
REASON_TAG = "mlplatform.approval.reason"
HISTORY_TAG = "mlplatform.approval.history"
TRIGGERED_BY_TAG = "mlplatform.triggered_by"
# Deploy gates outside the evaluation (serving parity, smoke test) record "passed"/"failed".
GATE_TAG_PREFIX = "mlplatform.gate."
APPROVED, REJECTED = "approved", "rejected"
# MLflow keeps tag values up to 5,000 characters (sqlite store); history keeps the newest.
_MAX_TAG = 4_900


class ApprovalError(ValueError):
    """An approval or rejection that is not allowed; the message says why."""


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


def approval_for(client: MlflowClient, model_name: str, version: str) -> Approval | None:
    """The latest decision recorded on a version, or None when nobody decided yet."""
    tags = _version(client, model_name, version).tags
    if STATUS_TAG not in tags:
        return None
    return Approval(
        str(version),
        tags[STATUS_TAG],
        tags.get(BY_TAG, ""),
        tags.get(AT_TAG, ""),
        tags.get(REASON_TAG, ""),
    )


def record_decision(
    client: MlflowClient,
    model_name: str,
    version: str,
    status: str,
    by: str,
    reason: str,
    approvers: Iterable[str],
    now: datetime | None = None,
) -> Approval:
    """Records an approval or rejection of one model version, after checking who may decide.

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

    Returns:
        The recorded decision.

    Raises:
        ApprovalError: Unknown version, not an approver, the trainer approving their own model,
            no reason, or approving a version whose evaluation did not pass its gates.
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
    model_version = _version(client, model_name, version)
    tags = model_version.tags
    trainer = tags.get(TRIGGERED_BY_TAG, "")
    if status == APPROVED and not trainer.strip():
        raise ApprovalError(
            f"{model_name} v{version} records no trainer ({TRIGGERED_BY_TAG}): four eyes cannot "
            "be checked, so it cannot be approved"
        )
    if status == APPROVED and trainer.casefold() == by.casefold():
        raise ApprovalError(
            f"{by} triggered the training of {model_name} v{version}: someone else must approve "
            "it (four eyes)"
        )
    decision = tags.get("decision")
    if status == APPROVED and decision != "PROMOTE":
        raise ApprovalError(
            f"{model_name} v{version} did not pass its gates (evaluation decision: "
            f"{decision or 'not evaluated'}; {tags.get('decision_reason', 'no reason recorded')})"
        )
    failed_gates = [
        k.removeprefix(GATE_TAG_PREFIX)
        for k, v in tags.items()
        if k.startswith(GATE_TAG_PREFIX) and v == "failed"
    ]
    if status == APPROVED and failed_gates:
        raise ApprovalError(
            f"{model_name} v{version} failed the deploy gate(s) {', '.join(sorted(failed_gates))}"
        )
    at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    approval = Approval(str(version), status, by, at, reason)
    history = json.loads(tags.get(HISTORY_TAG, "[]"))
    history.append(asdict(approval))
    encoded = json.dumps(history)
    while len(encoded) > _MAX_TAG and len(history) > 1:
        history.pop(0)
        encoded = json.dumps(history)
    for key, value in (
        (HISTORY_TAG, encoded),
        (BY_TAG, by),
        (AT_TAG, at),
        (REASON_TAG, reason[:_MAX_TAG]),
        # Status last: a reader that sees the status sees who, when and why with it.
        (STATUS_TAG, status),
    ):
        client.set_model_version_tag(model_name, str(version), key, value)
    return approval


def release_blocker(
    approval: Approval, tags: dict[str, str], approvers: Iterable[str]
) -> str | None:
    """Why an approved version must not be released now (None: it may be).

    Re-checked at release time, because tags can be edited outside this module: the approver
    must still be on the list and not be the trainer, and a version rolled back after its
    approval (automatically by the canary, or by hand) needs a new one.
    """
    if approval.by not in parse_approvers(approvers):
        return f"approved by {approval.by!r}, who is not on the approvers list"
    trainer = tags.get(TRIGGERED_BY_TAG, "")
    if not trainer.strip() or trainer.casefold() == approval.by.casefold():
        return f"approved by {approval.by!r}, but the trainer is {trainer or 'unknown'} (four eyes)"
    rolled_back = [
        tags.get("mlplatform.rolled_back", "").split(" ", 1)[0],
        tags.get("mlplatform.canary.decided_at", "")
        if tags.get("mlplatform.canary.outcome") == "rolled_back"
        else "",
    ]
    latest = max((_instant(t) for t in rolled_back if t), default=None)
    if latest is not None and _instant(approval.at) <= latest:
        return (
            f"rolled back at {latest.isoformat()} after its approval at {approval.at}: it needs "
            "a new approval"
        )
    return None


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
