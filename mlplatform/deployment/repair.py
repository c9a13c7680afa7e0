"""Finishing what a crash left half-done in the registry, before the next deploy step or tick.

A process killed (or a store failing) between two writes can leave two things half-done:

* a recorded alias move (:mod:`mlplatform.ml.alias_moves`): a promotion or rollback that moved
  one of its two aliases; ``previous`` then equals ``champion``;
* a canary promotion that moved the champion but not the canary state, which still says
  "running": serving keeps sending the canary's share to a version that is the champion
  already, and the next decision could record a rollback of the champion;
* a canary whose final state was saved but whose clean-up was not: the ``canary`` alias
  still set, the version's outcome still "running" (the controller skips finished canaries).

:func:`repair_registry` finishes them, in that order, under the model's deploy lease. The
deploy step runs it first and the canary sensor on every tick; rollback and every promotion
finish a recorded move themselves.
"""

from __future__ import annotations

import time
from dataclasses import replace

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlplatform.deployment.canary import MAX_HISTORY, PROMOTED, RUNNING, Decision, event
from mlplatform.deployment.canary_state import (
    CANARY,
    DEPLOY_LEASE,
    LEASE_WAIT_SECONDS,
    OUTCOME_TAG,
    STATE_TAG,
    apply,
    load_state,
)
from mlplatform.deployment.locks import held
from mlplatform.ml.alias_moves import MOVE_TAG, finish_alias_move
from mlplatform.ml.registry import CHAMPION, version_for_alias


def _promotion_half_done(client: MlflowClient, model_name: str) -> bool:
    state = load_state(client, model_name)
    return (
        state is not None
        and state.status == RUNNING
        and version_for_alias(client, model_name, CHAMPION) == state.version
    )


def _clean_up_half_done(client: MlflowClient, model_name: str) -> bool:
    state = load_state(client, model_name)
    if state is None or state.status == RUNNING:
        return False
    outcome = client.get_model_version(model_name, state.version).tags.get(OUTCOME_TAG)
    return version_for_alias(client, model_name, CANARY) == state.version or outcome == RUNNING


def _half_done(client: MlflowClient, model_name: str) -> bool:
    return _promotion_half_done(client, model_name) or _clean_up_half_done(client, model_name)


def _finish_promotion(client: MlflowClient, model_name: str, now: float) -> str:
    state = load_state(client, model_name)
    reason = (
        f"canary v{state.version} is the champion already: finishing its promotion, which was "
        "interrupted after the alias move"
    )
    promoted = replace(
        state,
        status=PROMOTED,
        weight=0.0,
        updated_at=now,
        history=(
            *state.history,
            event(now, "promote", step=state.step, weight=state.weight, reason=reason),
        )[-MAX_HISTORY:],
    )
    evidence = {"completed_after_interruption": True}
    apply(client, model_name, Decision("promote", reason, evidence, promoted, state))
    return reason


def repair_registry(client: MlflowClient, model_name: str, now: float | None = None) -> list[str]:
    """Finishes an interrupted alias move, then a canary promotion or clean-up left half-done.

    Reads only, unless something is half-done; then it takes the deploy lease and checks again.

    Args:
        client: MLflow client of the registry.
        model_name: Registered model name (absent: nothing to repair).
        now: Epoch seconds for the canary timeline (default: the current time).

    Returns:
        What it finished, one sentence each; empty when the registry was consistent.

    Raises:
        AliasMoveConflictError: A recorded move cannot be finished (aliases moved by hand).
        LeaseConflict: Another writer held the model for the whole wait.
    """
    try:
        tags = client.get_registered_model(model_name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    if MOVE_TAG not in tags and (STATE_TAG not in tags or not _half_done(client, model_name)):
        return []
    done = []
    with held(client, model_name, DEPLOY_LEASE, "repair", wait_seconds=LEASE_WAIT_SECONDS):
        move = finish_alias_move(client, model_name)
        if move is not None:
            moved = ", ".join(f"{a} v{f or 'none'} -> v{t}" for a, f, t in move.moves)
            done.append(f"finished an interrupted {move.operation} ({moved})")
        if _promotion_half_done(client, model_name):
            done.append(_finish_promotion(client, model_name, time.time() if now is None else now))
        if _clean_up_half_done(client, model_name):
            state = load_state(client, model_name)
            # apply() on a finished canary re-does only its idempotent clean-up.
            reason = f"finished the clean-up of canary v{state.version} ({state.status})"
            apply(client, model_name, Decision("hold", reason, {}, state, state))
            done.append(reason)
    return done
