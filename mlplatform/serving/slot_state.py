"""What a serving process holds, as immutable values: the loaded models, the slot state and
the canary assignment read from the registry's ``mlplatform.canary`` tag.

:class:`mlplatform.serving.slots.ModelSlots` keeps them in step with the registry.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

CANARY = "canary"
CANARY_TAG = "mlplatform.canary"


@dataclass(frozen=True)
class LoadedModel:
    """One loaded model version; ``row_scorer`` is its verified fast path (None: none)."""

    version: str
    model: Any
    signature: Any
    loaded_at: float
    row_scorer: Any = None


@dataclass(frozen=True)
class SlotState:
    """What serves right now; never mutated, replaced as a whole.

    ``canary_weight`` is the share routed to the canary: ``registry_canary_weight`` (the
    registry's weight for a loaded canary, else 0), capped by ``canary_weight_override``.
    """

    champion: LoadedModel | None = None
    previous: LoadedModel | None = None
    canary: LoadedModel | None = None
    canary_weight: float = 0.0
    refreshed_at: float = 0.0
    registry_canary_weight: float = 0.0
    canary_weight_override: float | None = None

    @property
    def champion_version(self) -> str | None:
        return self.champion.version if self.champion else None

    @property
    def previous_version(self) -> str | None:
        return self.previous.version if self.previous else None

    @property
    def canary_version(self) -> str | None:
        return self.canary.version if self.canary else None

    @property
    def signature(self) -> Any:
        """The champion's input/output signature (None without a champion)."""
        return self.champion.signature if self.champion else None

    @property
    def loaded_at(self) -> float | None:
        """When the champion was loaded (Unix time)."""
        return self.champion.loaded_at if self.champion else None


class RegistryReadError(RuntimeError):
    """The registry could not be read; the models already loaded keep serving."""


class NoCanaryError(RuntimeError):
    """A canary override was asked for while no canary serves."""


def canary_assignment(tag: str | None, canary_alias: str | None) -> tuple[str | None, float]:
    """The canary version and its weight from the ``mlplatform.canary`` tag and alias.

    Traffic goes to a canary only when the tag's status is "running" and the ``canary`` alias
    points at the tag's version; anything else (no tag, bad JSON, another status, alias
    elsewhere) is no canary.

    Returns:
        ``(version, weight)`` with weight clamped to [0, 1], or ``(None, 0.0)``.
    """
    try:
        state = json.loads(tag) if tag else None
        version, weight = str(state["version"]), float(state["weight"])
        running = state.get("status") == "running"
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, 0.0
    if not running or canary_alias is None or str(canary_alias) != version:
        return None, 0.0
    if not math.isfinite(weight):
        return None, 0.0
    return version, min(max(weight, 0.0), 1.0)
