"""The platform's state at a glance, as plain data, and what in it needs a person.

Collected by :mod:`mlplatform.status.collect` from the MLflow registry and the Dagster instance;
rendered by :mod:`mlplatform.status.render`. Nothing here reads a store, so the rules of what
needs attention are tested on hand-built states.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ROLES = ("champion", "previous", "challenger", "canary")


@dataclass(frozen=True)
class VersionRow:
    """One model version in a role (alias), with its holdout AUC, decision and approval."""

    role: str
    version: str | None
    auc: str | None = None
    auc_ci: str | None = None
    decision: str | None = None
    approval: str | None = None
    approval_by: str | None = None
    approval_at: str | None = None
    created_at: str | None = None
    rolled_back: str | None = None
    canary_outcome: str | None = None


@dataclass(frozen=True)
class CanaryRow:
    """The latest canary: its step, weight and the requests and errors counted per arm."""

    version: str
    champion_version: str | None
    status: str
    step: int
    steps: int
    weight: float
    canary_requests: float
    canary_errors: float
    champion_requests: float
    champion_errors: float
    updated_at: str
    last_event: str


@dataclass(frozen=True)
class DriftRow:
    """The drift sensor's last check: the day, its largest PSI, the feature and the decision."""

    day: str
    checked_at: str
    champion_version: str
    rows: int
    max_psi: float
    max_feature: str
    level: str
    decision: str


@dataclass(frozen=True)
class TriggerRow:
    """The last run a trigger (schedule, sensor, automation) launched, or none."""

    trigger: str
    kind: str
    run_id: str | None = None
    status: str | None = None
    started_at: str | None = None


@dataclass(frozen=True)
class GateRow:
    """The latest evaluation of one asset check that failed."""

    check: str
    blocking: bool
    evaluated_at: str
    run_id: str
    partition: str | None = None
    description: str | None = None


@dataclass
class PlatformStatus:
    """Everything ``mlplatform status`` shows; ``attention`` is filled by :func:`attention`."""

    dataset: str
    model_name: str
    dagster_home: str
    tracking_uri: str
    versions: list[VersionRow]
    canary: CanaryRow | None = None
    drift: DriftRow | None = None
    triggers: list[TriggerRow] = field(default_factory=list)
    failed_gates: list[GateRow] = field(default_factory=list)
    awaiting_approval: str | None = None
    attention: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return asdict(self)

    def version(self, role: str) -> VersionRow | None:
        """The row of a role, or None when no version holds it."""
        return next((row for row in self.versions if row.role == role and row.version), None)


def drift_level(max_psi: float, watch: float = 0.1, drift: float = 0.2) -> str:
    """ "drift" above the drift threshold, "watch" above the watch threshold, else "ok"."""
    return "drift" if max_psi > drift else "watch" if max_psi > watch else "ok"


def attention(status: PlatformStatus) -> list[str]:
    """What needs a person, most urgent first: each item says what and what to do.

    Args:
        status: The collected state (``attention`` itself is ignored).

    Returns:
        One sentence per item; empty when nothing waits.
    """
    items = []
    if status.version("champion") is None:
        items.append("no champion: nothing serves yet (run `make demo` or retrain_job)")
    for gate in (g for g in status.failed_gates if g.blocking):
        where = f" on {gate.partition}" if gate.partition else ""
        detail = f": {gate.description}" if gate.description else ""
        items.append(
            f"blocking gate {gate.check} failed{where} at {gate.evaluated_at} (run {gate.run_id[:8]})"
            + detail
        )
    if status.awaiting_approval:
        version = status.awaiting_approval
        items.append(
            f"v{version} waits for approval: "
            f'mlplatform approve {version} --by <you> --reason "..." (or reject)'
        )
    canary = status.canary
    if canary is not None and canary.status == "rolled_back":
        items.append(
            f"canary v{canary.version} was rolled back at {canary.updated_at}: {canary.last_event}"
        )
    previous = status.version("previous")
    if previous is not None and previous.rolled_back:
        items.append(f"v{previous.version} was rolled back by hand: {previous.rolled_back}")
    if status.drift is not None and status.drift.level == "drift":
        d = status.drift
        items.append(
            f"data drift on {d.day}: max PSI {d.max_psi:.3f} on {d.max_feature} "
            f"vs what champion v{d.champion_version} was trained on"
        )
    for trigger in status.triggers:
        if trigger.status == "FAILURE":
            items.append(
                f"the last run of {trigger.trigger} failed (run {trigger.run_id}, "
                f"{trigger.started_at})"
            )
    return items
