"""How a canary is released and when it is rolled back: the plan a deploy run starts with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mlplatform.deployment.sequential import SprtThresholds, sprt_thresholds


@dataclass(frozen=True)
class CanaryPlan:
    """How a canary is released and when it is rolled back.

    Attributes:
        steps: Canary traffic weights, in increasing order; passing the last one promotes.
        min_requests: Canary requests each step needs.
        min_dwell_seconds: Seconds each step lasts at least.
        alpha: False-rollback budget of the two error tests under continuous monitoring.
        beta: Miss rate of the SPRT against ``error_ratio`` (sets its "not worse" boundary).
        error_ratio: Canary/champion error-rate ratio the SPRT is built to detect.
        max_error_rate: Absolute ceiling of the canary's error rate.
        ceiling_alpha_share: Share of ``alpha`` given to the ceiling test (the rest to the SPRT),
            so that together they keep false rollbacks at or below ``alpha``.
        max_p99_ratio: The canary's p99 latency may be at most this times the champion's ...
        p99_slack_seconds: ... plus this, which absorbs histogram bucket rounding.
        min_latency_requests: Latency observations each arm needs before the p99 rule applies
            (below ~500 a p99 rests on a handful of requests).
        max_step_seconds: A step that has not seen ``min_requests`` canary requests after this
            long is rolled back ("no traffic"): a canary nobody uses is never promoted and
            never holds the release forever.
    """

    steps: tuple[float, ...] = (0.05, 0.25, 1.0)
    min_requests: int = 200
    min_dwell_seconds: float = 60.0
    alpha: float = 0.01
    beta: float = 0.05
    error_ratio: float = 2.0
    max_error_rate: float = 0.05
    ceiling_alpha_share: float = 0.1
    max_p99_ratio: float = 1.5
    p99_slack_seconds: float = 0.05
    min_latency_requests: int = 500
    max_step_seconds: float = 3600.0

    def __post_init__(self):
        steps = tuple(float(s) for s in self.steps)
        if not steps or any(not 0.0 < s <= 1.0 for s in steps) or list(steps) != sorted(set(steps)):
            raise ValueError(f"steps must increase within (0, 1], got {self.steps}")
        object.__setattr__(self, "steps", steps)
        if not 0.0 < self.ceiling_alpha_share < 1.0:
            raise ValueError(
                f"ceiling_alpha_share must be in (0, 1), got {self.ceiling_alpha_share}"
            )
        if not self.max_step_seconds > self.min_dwell_seconds:
            raise ValueError(
                f"max_step_seconds ({self.max_step_seconds}) must exceed min_dwell_seconds "
                f"({self.min_dwell_seconds}): otherwise no step could ever pass"
            )
        self.sprt  # noqa: B018 - validates alpha and beta now rather than at the first decision

    @property
    def sprt(self) -> SprtThresholds:
        """Boundaries of the canary-vs-champion SPRT (its share of ``alpha``)."""
        return sprt_thresholds(self.alpha * (1.0 - self.ceiling_alpha_share), self.beta)

    @property
    def ceiling_alpha(self) -> float:
        """False-alarm bound of the absolute-ceiling test."""
        return self.alpha * self.ceiling_alpha_share

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (lists, as JSON gives them back)."""
        return {**asdict(self), "steps": list(self.steps)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CanaryPlan:
        """Inverse of :meth:`to_dict`."""
        return cls(**raw)
