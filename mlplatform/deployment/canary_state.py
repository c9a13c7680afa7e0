"""Canary state in the MLflow registry, so the controller and the server can restart mid-canary.

The state is JSON in the registered-model tag ``mlplatform.canary``; the serving process routes
by its top-level ``version``, ``weight`` and ``status``. The alias ``canary`` names the version
under test. Outcomes are recorded on that model version (``mlplatform.canary.*`` tags).

Every write is ordered so that a crash between two writes leaves a safe registry: a rollback
stops traffic before anything else, a promotion moves ``previous`` before ``champion`` (never
zero champions) and only then retires the canary's weight, and each step is idempotent so the
next controller tick can finish an interrupted one.

Every writer (start, tick, abort, promotion) holds the model's ``deploy`` lease
(:mod:`locks`) and compares the state it decided on with the one in the registry before it
writes: a stale writer (a tick racing ``mlplatform rollback``) gets :class:`CanaryConflict` and
writes nothing, so a rollback is never undone and no canary is left running behind it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

from mlflow import MlflowClient

from mlplatform.deployment.canary import (
    MAX_HISTORY,
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    CanaryState,
    Decision,
    event,
    initial_state,
)
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.locks import ConflictError, held
from mlplatform.ml.registry import CHAMPION, promote_to_champion, version_for_alias

CANARY = "canary"
STATE_TAG = "mlplatform.canary"
OUTCOME_TAG = "mlplatform.canary.outcome"
REASON_TAG = "mlplatform.canary.reason"
EVIDENCE_TAG = "mlplatform.canary.evidence"
DECIDED_AT_TAG = "mlplatform.canary.decided_at"
# The lease every writer of aliases and canary state holds (also the deploy step and rollback).
DEPLOY_LEASE = "deploy"
# A tick waits this long for a rollback or release in progress, then re-checks the state.
LEASE_WAIT_SECONDS = 15.0
# Registered-model tag values are VARCHAR(5000) in MLflow's SQL stores (PostgreSQL enforces it).
STATE_TAG_LIMIT = 5_000


class CanaryError(RuntimeError):
    """A canary cannot be started (another one runs, or there is nothing to compare with)."""


class CanaryConflict(CanaryError, ConflictError):
    """The canary state changed since the decision was made (or is being changed); nothing was
    written."""


def load_state(client: MlflowClient, name: str) -> CanaryState | None:
    """The persisted canary state of a registered model, or None if it never had a canary."""
    raw = client.get_registered_model(name).tags.get(STATE_TAG)
    return None if raw is None else CanaryState.from_json(raw)


def fit_state(state: CanaryState, limit: int = STATE_TAG_LIMIT) -> tuple[CanaryState, str]:
    """The state with its oldest history events dropped until its JSON fits in ``limit``.

    Returns:
        The state as it will be persisted, and its JSON.

    Raises:
        CanaryError: Even without history the state does not fit.
    """
    text = state.to_json()
    history = list(state.history)
    while len(text) > limit and history:
        history.pop(0)
        state = replace(state, history=tuple(history))
        text = state.to_json()
    if len(text) > limit:
        raise CanaryError(
            f"{state.model_name}: the canary state is {len(text)} characters without any history, "
            f"over the {limit}-character tag limit"
        )
    return state, text


def _write_state(client: MlflowClient, name: str, state: CanaryState) -> CanaryState:
    """Writes the canary state tag (what the serving process routes by); the caller holds the
    deploy lease."""
    fitted, text = fit_state(state)
    client.set_registered_model_tag(name, STATE_TAG, text)
    return fitted


def _lease(client: MlflowClient, name: str, what: str):
    return held(client, name, DEPLOY_LEASE, what, wait_seconds=LEASE_WAIT_SECONDS)


def start_canary(
    client: MlflowClient,
    name: str,
    version: str,
    plan: CanaryPlan | None = None,
    now: float | None = None,
    started_by: str | None = None,
) -> CanaryState:
    """Starts releasing an approved version at the plan's first weight.

    The ``canary`` alias is set before the state, so the server can load ``@canary`` by the
    time the state tells it to route there. A retried start (same version, same
    ``started_by``) returns the running state unchanged: it must not reset the evidence.

    Args:
        client: MLflow client.
        name: Registered model name.
        version: The approved version.
        plan: Release plan (default :class:`CanaryPlan`), kept in the state.
        now: Epoch seconds (default: the current time).
        started_by: Who starts it (the deploy run); a start of the same version by someone
            else is a conflict, not a retry.

    Returns:
        The new (or already running) state.

    Raises:
        CanaryError: A canary of another version is running, there is no champion to compare
            with, or the version is already the champion.
        CanaryConflict: The same version was already started by someone else.
    """
    version = str(version)
    plan = plan or CanaryPlan()
    with _lease(client, name, f"start canary v{version} ({started_by or 'by hand'})"):
        return _start(client, name, version, plan, now, started_by)


def _start(client, name, version, plan, now, started_by) -> CanaryState:
    now = time.time() if now is None else now
    current = load_state(client, name)
    if current is not None and current.status == RUNNING:
        if current.version == version and current.started_by == started_by:
            return current
        if current.version == version:
            raise CanaryConflict(
                f"{name}: canary v{version} was already started by {current.started_by or 'hand'} "
                f"(step {current.step + 1}, weight {current.weight:.0%}); nothing changed"
            )
        raise CanaryError(
            f"{name}: canary v{current.version} is still running (step {current.step + 1}, "
            f"weight {current.weight:.0%}); it must be promoted or rolled back before v{version}"
        )
    client.get_model_version(name, version)  # fails clearly for a version that does not exist
    champion = version_for_alias(client, name, CHAMPION)
    if champion is None:
        raise CanaryError(f"{name} has no champion to compare v{version} with; promote directly")
    if champion == version:
        raise CanaryError(f"{name} v{version} is already the champion")
    client.set_registered_model_alias(name, CANARY, version)
    state = replace(initial_state(plan, name, version, champion, now), started_by=started_by)
    state = _write_state(client, name, state)
    client.set_model_version_tag(name, version, OUTCOME_TAG, RUNNING)
    return state


def _retire_canary_alias(client: MlflowClient, name: str, version: str) -> None:
    # Only our own alias: by now a newer canary may legitimately hold it.
    if version_for_alias(client, name, CANARY) == version:
        client.delete_registered_model_alias(name, CANARY)


def _record_outcome(client: MlflowClient, name: str, decision: Decision) -> None:
    version = decision.new_state.version
    client.set_model_version_tag(name, version, OUTCOME_TAG, decision.new_state.status)
    client.set_model_version_tag(name, version, REASON_TAG, decision.reason)
    client.set_model_version_tag(
        name, version, EVIDENCE_TAG, json.dumps(decision.evidence, sort_keys=True)
    )
    # When: an approval given before a rollback does not release the version again.
    decided = datetime.fromtimestamp(decision.new_state.updated_at, UTC)
    client.set_model_version_tag(
        name, version, DECIDED_AT_TAG, decided.isoformat(timespec="seconds")
    )


def _finish_interrupted(client: MlflowClient, name: str, state: CanaryState) -> None:
    """Completes the clean-up of a canary whose last writer stopped after saving its state."""
    _retire_canary_alias(client, name, state.version)
    if client.get_model_version(name, state.version).tags.get(OUTCOME_TAG) == RUNNING:
        last = state.history[-1] if state.history else {}
        reason = last.get("reason", f"{state.status} (recorded after an interruption)")
        evidence = {"completed_after_interruption": True}
        _record_outcome(client, name, Decision("hold", reason, evidence, state, state))


def _check_based_on(name: str, current: CanaryState | None, decision: Decision) -> None:
    based_on = decision.based_on
    if based_on is None:
        raise ValueError(
            "a canary decision must say which persisted state it was based on (Decision.based_on)"
        )
    if current == based_on:
        return
    now = "no canary" if current is None else f"canary v{current.version} {current.status}"
    if current is not None and current.history:
        last = current.history[-1]
        now += f" since {last.get('at')} ({last.get('event')}: {last.get('reason', '-')})"
    raise CanaryConflict(
        f"{name}: the canary state changed after this {decision.action} of "
        f"v{decision.new_state.version} was decided (registry now: {now}); nothing was written"
    )


def apply(client: MlflowClient, name: str, decision: Decision) -> CanaryState:
    """Carries a decision out in the registry, if the state it was based on is still current.

    * hold / advance: save the state (running totals; the new weight).
    * rollback: state with weight 0 first, so serving stops routing to the canary at once;
      then remove the ``canary`` alias and record outcome, reason and evidence on the version.
    * promote: ``previous`` then ``champion`` (via ``promote_to_champion``), then the state
      (weight 0: the new champion already takes all traffic), then the alias and outcome.

    A decision on a canary that already finished only re-does the idempotent clean-up, which
    completes a previous tick that was interrupted half-way.

    Args:
        client: MLflow client.
        name: Registered model name.
        decision: From :func:`mlplatform.deployment.canary.decide`.

    Returns:
        The state as persisted.

    Raises:
        CanaryConflict: The registry's state is no longer ``decision.based_on`` (a rollback, an
            abort or another controller wrote in between), or the deploy lease stayed busy.
    """
    state = decision.new_state
    with _lease(client, name, f"canary {decision.action} of v{state.version}"):
        _check_based_on(name, load_state(client, name), decision)
        if decision.action == "rollback":
            persisted = _write_state(client, name, state)
            _retire_canary_alias(client, name, state.version)
            _record_outcome(client, name, decision)
        elif decision.action == "promote":
            promote_to_champion(client, name, state.version)
            persisted = _write_state(client, name, state)
            _retire_canary_alias(client, name, state.version)
            _record_outcome(client, name, decision)
        elif state.status in (PROMOTED, ROLLED_BACK):
            _finish_interrupted(client, name, state)
            persisted = state
        else:
            persisted = _write_state(client, name, state)
    return persisted


def abort_canary(
    client: MlflowClient, name: str, reason: str, now: float | None = None
) -> CanaryState | None:
    """Stops a running canary by hand (a rollback of the champion, an operator): weight 0 first.

    Returns:
        The stopped state, or None when no canary was running.
    """
    with _lease(client, name, f"abort canary: {reason}"):
        state = load_state(client, name)
        if state is None or state.status != RUNNING:
            return None
        now = time.time() if now is None else now
        stopped = replace(
            state,
            status=ROLLED_BACK,
            weight=0.0,
            updated_at=now,
            history=(*state.history, event(now, "aborted", reason=reason))[-MAX_HISTORY:],
        )
        evidence = {"aborted": True}
        decision = Decision("rollback", f"stopped by hand: {reason}", evidence, stopped, state)
        return apply(client, name, decision)
