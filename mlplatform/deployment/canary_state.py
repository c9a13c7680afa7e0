"""Canary state in the MLflow registry, so the controller and the server can restart mid-canary.

The state is JSON in the registered-model tag ``mlplatform.canary``; the serving process routes
by its top-level ``version``, ``weight`` and ``status``. The alias ``canary`` names the version
under test. Outcomes are recorded on that model version (``mlplatform.canary.*`` tags).

Every write is ordered so that a crash between two writes leaves a safe registry: a rollback
stops traffic before anything else, a promotion moves ``previous`` before ``champion`` (never
zero champions) and only then retires the canary's weight, and each step is idempotent so the
next controller tick can finish an interrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

from mlflow import MlflowClient

from mlplatform.deployment.canary import (
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    CanaryPlan,
    CanaryState,
    Decision,
    event,
    initial_state,
)
from mlplatform.ml.registry import CHAMPION, promote_to_champion, version_for_alias

CANARY = "canary"
STATE_TAG = "mlplatform.canary"
OUTCOME_TAG = "mlplatform.canary.outcome"
REASON_TAG = "mlplatform.canary.reason"
EVIDENCE_TAG = "mlplatform.canary.evidence"
DECIDED_AT_TAG = "mlplatform.canary.decided_at"


class CanaryError(RuntimeError):
    """A canary cannot be started (another one runs, or there is nothing to compare with)."""


def load_state(client: MlflowClient, name: str) -> CanaryState | None:
    """The persisted canary state of a registered model, or None if it never had a canary."""
    raw = client.get_registered_model(name).tags.get(STATE_TAG)
    return None if raw is None else CanaryState.from_json(raw)


def save_state(client: MlflowClient, name: str, state: CanaryState) -> None:
    """Writes the canary state tag (what the serving process routes by)."""
    client.set_registered_model_tag(name, STATE_TAG, state.to_json())


def start_canary(
    client: MlflowClient,
    name: str,
    version: str,
    plan: CanaryPlan | None = None,
    now: float | None = None,
) -> CanaryState:
    """Starts releasing an approved version at the plan's first weight.

    The ``canary`` alias is set before the state, so the server can load ``@canary`` by the
    time the state tells it to route there. Starting the version that is already running
    returns its state unchanged (a retried start must not reset the canary's evidence).

    Args:
        client: MLflow client.
        name: Registered model name.
        version: The approved version.
        plan: Release plan (default :class:`CanaryPlan`), kept in the state.
        now: Epoch seconds (default: the current time).

    Returns:
        The new (or already running) state.

    Raises:
        CanaryError: A canary of another version is running, there is no champion to compare
            with, or the version is already the champion.
    """
    version = str(version)
    plan = plan or CanaryPlan()
    now = time.time() if now is None else now
    current = load_state(client, name)
    if current is not None and current.status == RUNNING:
        if current.version == version:
            return current
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
    state = initial_state(plan, name, version, champion, now)
    save_state(client, name, state)
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


def apply(client: MlflowClient, name: str, decision: Decision) -> CanaryState:
    """Carries a decision out in the registry.

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
    """
    state = decision.new_state
    if decision.action == "rollback":
        save_state(client, name, state)
        _retire_canary_alias(client, name, state.version)
        _record_outcome(client, name, decision)
    elif decision.action == "promote":
        promote_to_champion(client, name, state.version)
        save_state(client, name, state)
        _retire_canary_alias(client, name, state.version)
        _record_outcome(client, name, decision)
    elif state.status in (PROMOTED, ROLLED_BACK):
        _retire_canary_alias(client, name, state.version)
    else:
        save_state(client, name, state)
    return state


def abort_canary(
    client: MlflowClient, name: str, reason: str, now: float | None = None
) -> CanaryState | None:
    """Stops a running canary by hand (a rollback of the champion, an operator): weight 0 first.

    Returns:
        The stopped state, or None when no canary was running.
    """
    state = load_state(client, name)
    if state is None or state.status != RUNNING:
        return None
    now = time.time() if now is None else now
    stopped = replace(
        state,
        status=ROLLED_BACK,
        weight=0.0,
        updated_at=now,
        history=(*state.history, event(now, "aborted", reason=reason))[-100:],
    )
    decision = Decision("rollback", f"stopped by hand: {reason}", {"aborted": True}, stopped)
    return apply(client, name, decision)
