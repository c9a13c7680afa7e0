"""Canary release decisions: hold, advance the weight, promote, or roll back.

:func:`decide` is pure: it takes the plan, the state persisted in the registry and a raw scrape
of the serving process's metrics, and returns the action with its evidence and the next state.
Persisting the state and moving aliases is :mod:`mlplatform.deployment.canary_state`'s job.
Rollback checks come before step progression, so a breach is never outrun by a promotion.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.metrics import ARMS, ArmCounts, accumulate, add, compare_p99
from mlplatform.deployment.sequential import (
    CeilingCheck,
    ErrorComparison,
    check_error_ceiling,
    compare_error_rates,
    conditional_log_lr,
)

RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"
Action = Literal["hold", "advance", "promote", "rollback"]
# Restarts of the serving process add events; the tag must not grow without bound.
MAX_HISTORY = 100


def _zero_counts() -> dict[str, ArmCounts]:
    return {arm: ArmCounts() for arm in ARMS}


@dataclass(frozen=True)
class CanaryState:
    """Everything needed to resume a canary, as persisted in the registry (see ``to_json``).

    Counts are the controller's own running totals (``total_counts`` since the start,
    ``step_counts`` since the current step began), not the serving process's counters, which
    restart at zero; ``last_raw`` is the last scrape, to turn the next one into an increase.
    ``log_lr`` is the accumulated SPRT statistic. ``history`` is the event timeline.
    ``started_by`` says who started it (the deploy run), to tell a retry from a second start.
    """

    model_name: str
    version: str
    champion_version: str | None
    step: int
    weight: float
    status: str
    started_at: float
    step_started_at: float
    updated_at: float
    log_lr: float = 0.0
    step_counts: dict[str, ArmCounts] = field(default_factory=_zero_counts)
    total_counts: dict[str, ArmCounts] = field(default_factory=_zero_counts)
    last_raw: dict[str, ArmCounts] | None = None
    history: tuple[dict[str, Any], ...] = ()
    plan: dict[str, Any] = field(default_factory=dict)
    started_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; keeps ``version``, ``weight`` and ``status`` at the top level."""
        raw = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("step_counts", "total_counts", "last_raw"):
            if raw[key] is not None:
                raw[key] = {arm: counts.to_dict() for arm, counts in raw[key].items()}
        raw["history"] = list(self.history)
        return raw

    def to_json(self) -> str:
        """The state as JSON text."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CanaryState:
        """Inverse of :meth:`to_dict`."""
        raw = dict(raw)
        for key in ("step_counts", "total_counts", "last_raw"):
            if raw.get(key) is not None:
                raw[key] = {arm: ArmCounts.from_dict(c) for arm, c in raw[key].items()}
        raw["history"] = tuple(raw.get("history", ()))
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def from_json(cls, text: str) -> CanaryState:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def event(now: float, name: str, **details: Any) -> dict[str, Any]:
    """A timeline entry (epoch seconds plus a readable UTC timestamp)."""
    at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    return {"at": at, "time": now, "event": name, **details}


def initial_state(
    plan: CanaryPlan, model_name: str, version: str, champion_version: str | None, now: float
) -> CanaryState:
    """The state of a canary that starts now at the plan's first weight."""
    weight = plan.steps[0]
    return CanaryState(
        model_name=model_name,
        version=str(version),
        champion_version=None if champion_version is None else str(champion_version),
        step=0,
        weight=weight,
        status=RUNNING,
        started_at=now,
        step_started_at=now,
        updated_at=now,
        history=(event(now, "started", step=0, weight=weight, champion=champion_version),),
        plan=plan.to_dict(),
    )


@dataclass(frozen=True)
class Decision:
    """What the controller should do, why, on which evidence, and the state afterwards.

    ``based_on`` is the persisted state the decision was made from: it is carried out only if
    the registry still holds exactly that state (a rollback in between voids it).
    """

    action: Action
    reason: str
    evidence: dict[str, Any]
    new_state: CanaryState
    based_on: CanaryState | None = None


def _breaches(
    state: CanaryState, errors: ErrorComparison, ceiling: CeilingCheck, latency: dict[str, Any]
) -> list[str]:
    v = f"canary v{state.version}"
    reasons = []
    if errors.breached:
        reasons.append(
            f"{v} error rate {errors.canary_rate:.1%} vs champion {errors.champion_rate:.1%} "
            f"(SPRT log-LR {errors.log_lr:.1f} >= {errors.upper:.1f} "
            f"at {errors.canary_requests:.0f} canary requests)"
        )
    if ceiling.breached:
        reasons.append(
            f"{v} error rate {ceiling.rate:.1%} above the {ceiling.max_error_rate:.1%} ceiling "
            f"(mixture log-LR {ceiling.log_lr:.1f} >= {ceiling.threshold:.1f} "
            f"at {ceiling.requests:.0f} canary requests)"
        )
    if latency["breached"]:
        reasons.append(
            f"{v} p99 latency {latency['canary_p99_seconds']} s > limit "
            f"{latency['limit_seconds']:.3g} s (champion p99 {latency['champion_p99_seconds']} s; "
            f"{latency['canary_observations']:.0f} canary requests)"
        )
    return reasons


def decide(
    plan: CanaryPlan, state: CanaryState, counts: Mapping[str, ArmCounts], now: float
) -> Decision:
    """The next step of a running canary.

    The first scrape after the start is only a baseline (the champion's counters hold requests
    from before the canary). A restart of the serving process is detected per arm (see
    :func:`~mlplatform.deployment.metrics.accumulate`) and noted on the timeline.

    Args:
        plan: The release plan.
        state: The persisted state.
        counts: Raw per-arm scrape (``parse_metrics``), filtered to the canary's and champion's
            versions.
        now: Current time, epoch seconds.

    Returns:
        The decision; a canary that is no longer running gets "hold" and its unchanged state.
    """
    if state.status != RUNNING:
        return Decision("hold", f"canary v{state.version} already {state.status}", {}, state, state)
    raw = {arm: counts.get(arm, ArmCounts()) for arm in ARMS}
    increases, restarted = _zero_counts(), False
    if state.last_raw is not None:
        for arm in ARMS:
            increases[arm], reset = accumulate(state.last_raw.get(arm), raw[arm])
            restarted = restarted or reset
    c_inc, b_inc = increases["canary"], increases["champion"]
    log_lr = state.log_lr + conditional_log_lr(
        c_inc.errors, c_inc.requests, b_inc.errors, b_inc.requests, plan.error_ratio
    )
    step_counts = {arm: add(state.step_counts[arm], increases[arm]) for arm in ARMS}
    total = {arm: add(state.total_counts[arm], increases[arm]) for arm in ARMS}
    history = list(state.history)
    if restarted:
        history.append(event(now, "counter_reset", step=state.step, weight=state.weight))

    canary, champion = total["canary"], total["champion"]
    errors = compare_error_rates(
        log_lr, canary.errors, canary.requests, champion.errors, champion.requests, plan.sprt
    )
    ceiling = check_error_ceiling(
        canary.errors, canary.requests, plan.max_error_rate, plan.ceiling_alpha
    )
    latency = compare_p99(
        canary, champion, plan.max_p99_ratio, plan.p99_slack_seconds, plan.min_latency_requests
    )
    min_requests, min_dwell = plan.min_requests, plan.min_dwell_seconds
    step_requests, dwell = step_counts["canary"].requests, now - state.step_started_at
    evidence = {
        "model_name": state.model_name,
        "version": state.version,
        "champion_version": state.champion_version,
        "step": state.step,
        "weight": state.weight,
        "step_canary_requests": step_requests,
        "step_seconds": dwell,
        "errors": errors.evidence(),
        "ceiling": ceiling.evidence(),
        "latency": latency,
        "counter_reset": restarted,
    }
    updated = replace(
        state,
        log_lr=log_lr,
        step_counts=step_counts,
        total_counts=total,
        last_raw=raw,
        updated_at=now,
    )

    def finish(action: Action, reason: str, **changes: Any) -> Decision:
        history.append(event(now, action, step=updated.step, weight=updated.weight, reason=reason))
        new_state = replace(updated, history=tuple(history[-MAX_HISTORY:]), **changes)
        return Decision(action, reason, evidence, new_state, state)

    breaches = _breaches(state, errors, ceiling, latency)
    if breaches:
        return finish("rollback", "; ".join(breaches), status=ROLLED_BACK, weight=0.0)
    progress = (
        f"step {state.step + 1}/{len(plan.steps)} at {state.weight:.0%}: "
        f"{step_requests:.0f}/{min_requests:.0f} canary requests, {dwell:.0f}/{min_dwell:.0f} s"
    )
    if step_requests < min_requests and dwell >= plan.max_step_seconds:
        return finish(
            "rollback",
            f"no traffic: {progress}, past the step's maximum of {plan.max_step_seconds:.0f} s",
            status=ROLLED_BACK,
            weight=0.0,
        )
    if step_requests < min_requests or dwell < min_dwell:
        new_state = replace(updated, history=tuple(history[-MAX_HISTORY:]))
        return Decision("hold", progress, evidence, new_state, state)
    if state.step + 1 < len(plan.steps):
        weight = plan.steps[state.step + 1]
        return finish(
            "advance",
            f"{progress} passed: canary weight -> {weight:.0%}",
            step=state.step + 1,
            weight=weight,
            step_started_at=now,
            step_counts=_zero_counts(),
        )
    return finish(
        "promote",
        f"{progress} passed: canary v{state.version} promoted to champion "
        f"(error rate {errors.canary_rate:.1%} vs champion {errors.champion_rate:.1%} "
        f"over {canary.requests:.0f} canary requests)",
        status=PROMOTED,
        weight=0.0,
    )
