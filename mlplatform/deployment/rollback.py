"""One-command rollback: the previous champion serves again, model and preprocessing together.

Both live in one registered artefact (a scikit-learn Pipeline), so moving the ``champion`` alias
reverts both at once; serving processes poll the alias and already hold ``previous`` in memory.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient

from mlplatform.ml.alias_moves import ROLLBACK, AliasMove, finish_alias_move, move_aliases
from mlplatform.ml.registry import CHAMPION, PREVIOUS, version_for_alias

# "<ISO time> by <who>: <reason>" on the version that was replaced.
ROLLED_BACK_TAG = "mlplatform.rolled_back"


class RollbackError(RuntimeError):
    """Nothing to roll back to; the message says why."""


@dataclass(frozen=True)
class RollbackResult:
    """Which version serves again and which one it replaced (now ``previous``)."""

    restored: str
    replaced: str


def roll_back(
    client: MlflowClient, model_name: str, by: str | None = None, reason: str = "manual rollback"
) -> RollbackResult:
    """Makes ``previous`` the champion and keeps the replaced champion as ``previous``.

    A canary in progress is stopped first (weight 0), so no traffic reaches it during or after.
    ``champion`` moves before ``previous``: there is never a moment without a champion. The
    move is recorded first (:mod:`mlplatform.ml.alias_moves`), so a rollback interrupted
    half-way is finished, not reversed, by the next call. Running it twice rolls forward again.

    Raises:
        RollbackError: No champion, or no ``previous`` version to return to.
        AliasMoveConflictError: A recorded move cannot be finished (aliases moved by hand).
    """
    pending = finish_alias_move(client, model_name)
    if pending is not None and pending.operation == ROLLBACK:
        # The operator re-runs a rollback that was cut off: finishing it is what they asked for.
        return RollbackResult(restored=pending.target(CHAMPION), replaced=pending.source(CHAMPION))
    champion = version_for_alias(client, model_name, CHAMPION)
    previous = version_for_alias(client, model_name, PREVIOUS)
    if champion is None:
        raise RollbackError(f"{model_name} has no champion: nothing is deployed")
    if previous is None or previous == champion:
        raise RollbackError(
            f"{model_name} has no previous version to roll back to (champion v{champion} is the "
            "only one deployed)"
        )
    _stop_canary(client, model_name, reason)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    note = f"{at} by {by or getpass.getuser()}: {reason}"
    move = AliasMove(
        ROLLBACK,
        ((CHAMPION, champion, previous), (PREVIOUS, previous, champion)),
        ((champion, ROLLED_BACK_TAG, note), (previous, "mlplatform.restored", note)),
    )
    move_aliases(client, model_name, move)
    return RollbackResult(restored=previous, replaced=champion)


def _stop_canary(client: MlflowClient, model_name: str, reason: str) -> None:
    from mlplatform.deployment.canary_state import abort_canary

    abort_canary(client, model_name, f"rollback: {reason}")
