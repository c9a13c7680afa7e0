"""Alias moves that a crash cannot leave half-done: recorded, applied, then cleared.

A promotion (``previous``, then ``champion``) and a rollback (``champion``, then ``previous``)
each move two aliases in two store calls. A process killed, or a store failing, between them
would leave ``previous == champion``, the rollback target lost, and a re-run of the rollback
would roll forward. So the whole move is first written to the registered-model tag
``mlplatform.alias_move``, then applied, then the tag is removed; whoever comes next (the next
alias move, deploy step, canary tick or rollback) calls :func:`finish_alias_move`, which applies
a recorded move to the end, exactly as intended.

Invariants, at every moment (``mlplatform_tests/test_deploy_interrupted.py``):

* One champion: once set, ``champion`` always names a version. It is only re-pointed, never
  deleted, and an MLflow alias names one version.
* No recorded move means a settled registry: ``previous`` differs from ``champion``.
* A recorded move is finished to its targets, or fails loudly if someone else moved an alias
  in between (:class:`AliasMoveConflictError`); it never overwrites such a move.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from mlplatform.ml.registry import version_for_alias

MOVE_TAG = "mlplatform.alias_move"
PROMOTE, ROLLBACK = "promote", "rollback"


class AliasMoveConflictError(RuntimeError):
    """A recorded alias move cannot be finished: an alias was moved elsewhere meanwhile."""


@dataclass(frozen=True)
class AliasMove:
    """One operation's alias moves, in order, and the version tags written after them.

    Attributes:
        operation: PROMOTE or ROLLBACK (a finished rollback is not rolled back again).
        moves: ``(alias, from_version, to_version)``; ``from_version`` None: alias absent.
        version_tags: ``(version, key, value)`` written once the aliases moved (audit).
    """

    operation: str
    moves: tuple[tuple[str, str | None, str], ...]
    version_tags: tuple[tuple[str, str, str], ...] = ()

    def target(self, alias: str) -> str | None:
        """The version the move points ``alias`` at (None: it does not move it)."""
        return next((to for name, _, to in self.moves if name == alias), None)

    def source(self, alias: str) -> str | None:
        """The version ``alias`` pointed at before the move."""
        return next((start for name, start, _ in self.moves if name == alias), None)

    def to_json(self) -> str:
        return json.dumps(
            {
                "operation": self.operation,
                "moves": [list(m) for m in self.moves],
                "version_tags": [list(t) for t in self.version_tags],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, model_name: str) -> AliasMove:
        """Parses the tag, with an error naming the model and the tag if it is malformed."""
        try:
            raw = json.loads(text)
            return cls(
                operation=str(raw["operation"]),
                moves=tuple(
                    (str(a), None if f is None else str(f), str(t)) for a, f, t in raw["moves"]
                ),
                version_tags=tuple((str(v), str(k), str(x)) for v, k, x in raw["version_tags"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{model_name}: registered-model tag {MOVE_TAG} is not a recorded alias move "
                f"({exc}): {text[:200]!r}"
            ) from exc


def recorded_move(client, model_name: str) -> AliasMove | None:
    """The move recorded on the model and not finished yet; None also when there is no model."""
    try:
        raw = client.get_registered_model(model_name).tags.get(MOVE_TAG)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return None if raw is None else AliasMove.from_json(raw, model_name)


def move_aliases(client, model_name: str, move: AliasMove) -> None:
    """Records ``move`` on the model, applies it in order, then clears the record.

    The caller finishes an earlier recorded move first (:func:`finish_alias_move`) and reads
    the aliases after that, so ``from_version`` is what the aliases really point at.

    Raises:
        AliasMoveConflictError: See :func:`finish_alias_move`.
    """
    client.set_registered_model_tag(model_name, MOVE_TAG, move.to_json())
    _apply(client, model_name, move)


def finish_alias_move(client, model_name: str) -> AliasMove | None:
    """Finishes a move that was recorded but not cleared (its writer stopped half-way).

    Every alias already at its target is left alone, so finishing is idempotent, and a writer
    still running beside it does no harm: both write the same targets.

    Returns:
        The move it finished, or None when none was pending.

    Raises:
        AliasMoveConflictError: An alias of the move points at neither its source nor its
            target: someone moved it meanwhile; the record is kept for a person to decide.
    """
    move = recorded_move(client, model_name)
    if move is not None:
        _apply(client, model_name, move)
    return move


def _apply(client, model_name: str, move: AliasMove) -> None:
    # All aliases are checked before any moves: a conflict leaves the registry as it was.
    current = {alias: version_for_alias(client, model_name, alias) for alias, _, _ in move.moves}
    for alias, source, target in move.moves:
        if current[alias] not in (source, target):
            raise AliasMoveConflictError(
                f"{model_name}: the recorded {move.operation} moves {alias} from "
                f"v{source or 'none'} to v{target}, but {alias} is now "
                f"v{current[alias] or 'none'}: moved by someone else. Check the aliases, then "
                f"delete the registered-model tag {MOVE_TAG}."
            )
    for alias, _, target in move.moves:
        if current[alias] != target:
            client.set_registered_model_alias(model_name, alias, target)
    for version, key, value in move.version_tags:
        client.set_model_version_tag(model_name, version, key, value)
    client.delete_registered_model_tag(model_name, MOVE_TAG)
