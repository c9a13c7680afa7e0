"""Sticky weighted traffic split between the champion and a canary.

An entity (customer) id is hashed with a salt to a point in [0, 1); it goes to the canary iff
that point is below the canary weight. The same id therefore always lands on the same arm, and
raising the weight only moves champion ids to the canary, never back: a customer sees at most
one switch during a ramp-up. Without an id a request is a random draw.

A request carries a batch of rows but is answered by one model, so it is routed by the id in
its first row (the id column of the serving settings); a batch that mixes customers follows the
first one.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Literal

CANARY = "canary"
CHAMPION = "champion"
Arm = Literal["canary", "champion"]

_SCALE = float(2**64)


def bucket(entity_id: str, salt: str) -> float:
    """The entity's fixed point in [0, 1) for this salt (uniform over ids).

    Args:
        entity_id: The routing key.
        salt: Changes the assignment of every id; a new salt reshuffles who is on the canary.

    Returns:
        A float in [0, 1).
    """
    # A separator, so salt "a" + id "bc" and salt "ab" + id "c" do not collide.
    key = salt.encode("utf-8") + b"\x00" + entity_id.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def arm_for(
    entity_id: str | None, weight: float, salt: str, rng: random.Random | None = None
) -> Arm:
    """Which arm serves a request.

    Args:
        entity_id: The routing key, or None for a random draw.
        weight: The canary's traffic share, 0..1 (clamped; NaN and infinities count as 0).
        salt: Hash salt, see :func:`bucket`.
        rng: Random source for requests without an id (the ``random`` module by default).

    Returns:
        "canary" or "champion".
    """
    if not (isinstance(weight, int | float) and math.isfinite(weight)) or weight <= 0:
        return CHAMPION
    if weight >= 1:
        return CANARY
    point = (rng or random).random() if entity_id is None else bucket(entity_id, salt)
    return CANARY if point < weight else CHAMPION
