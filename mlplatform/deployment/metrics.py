"""Per-arm request, error and latency totals from the serving process's Prometheus metrics.

The serving process exports, per ``arm`` ("canary" | "champion") and ``model_version``:
``mlplatform_requests_total{status}``, ``mlplatform_errors_total{kind}`` and the histogram
``mlplatform_request_latency_seconds``. Its counters restart from zero when the process restarts,
so the controller keeps its own cumulative totals: it adds the *increase* between two scrapes
(:func:`accumulate`), treating a counter that went down as a restart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "mlplatform_requests_total"
ERRORS = "mlplatform_errors_total"
LATENCY = "mlplatform_request_latency_seconds"
PROCESS_START = "process_start_time_seconds"
ARMS = ("canary", "champion")

Buckets = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ArmCounts:
    """Counter values of one arm: a raw scrape, an increase, or a running total.

    Attributes:
        requests: Requests served (all statuses).
        errors: Failed requests (5xx, exceptions, invalid outputs), summed over error kinds.
        latency_buckets: Cumulative histogram as sorted ``(upper bound, count)`` pairs, the last
            bound being ``inf``.
        latency_sum: Sum of observed latencies in seconds.
        process_start_time: The serving process's start time when it exports it (raw scrapes
            only); a change means a restart even if the counters have since grown past their
            old values.
    """

    requests: float = 0.0
    errors: float = 0.0
    latency_buckets: Buckets = ()
    latency_sum: float = 0.0
    process_start_time: float | None = None

    @property
    def latency_count(self) -> float:
        """Observations in the latency histogram (its ``+Inf`` bucket)."""
        return self.latency_buckets[-1][1] if self.latency_buckets else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (bounds as strings: JSON has no infinity)."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency_buckets": [[_bound_text(b), c] for b, c in self.latency_buckets],
            "latency_sum": self.latency_sum,
            "process_start_time": self.process_start_time,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ArmCounts:
        """Inverse of :meth:`to_dict`; None or an empty mapping gives zero counts."""
        raw = raw or {}
        return cls(
            requests=float(raw.get("requests", 0.0)),
            errors=float(raw.get("errors", 0.0)),
            latency_buckets=tuple((float(b), float(c)) for b, c in raw.get("latency_buckets", ())),
            latency_sum=float(raw.get("latency_sum", 0.0)),
            process_start_time=raw.get("process_start_time"),
        )


def _bound_text(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def parse_metrics(
    text: str, versions: Mapping[str, str | None] | None = None
) -> dict[str, ArmCounts]:
    """Per-arm totals from a Prometheus text exposition.

    Args:
        text: The body of the serving process's ``GET /metrics``.
        versions: Expected model version per arm. Series of other versions (say, a canary of an
            earlier release still in the process's counters) are ignored. None keeps all.

    Returns:
        ``ArmCounts`` for "canary" and "champion" (zero counts for an arm without series).
    """
    totals: dict[str, dict[str, Any]] = {
        arm: {"requests": 0.0, "errors": 0.0, "buckets": {}, "sum": 0.0} for arm in ARMS
    }
    start_time = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == PROCESS_START:
                start_time = float(sample.value)
                continue
            arm = sample.labels.get("arm")
            if arm not in totals:
                continue
            expected = (versions or {}).get(arm)
            if versions is not None and sample.labels.get("model_version") != str(expected):
                continue
            into = totals[arm]
            if sample.name == REQUESTS:
                into["requests"] += sample.value
            elif sample.name == ERRORS:
                into["errors"] += sample.value
            elif sample.name == f"{LATENCY}_bucket":
                bound = float(sample.labels["le"])
                into["buckets"][bound] = into["buckets"].get(bound, 0.0) + sample.value
            elif sample.name == f"{LATENCY}_sum":
                into["sum"] += sample.value
    return {
        arm: ArmCounts(
            requests=t["requests"],
            errors=t["errors"],
            latency_buckets=tuple(sorted(t["buckets"].items())),
            latency_sum=t["sum"],
            process_start_time=start_time,
        )
        for arm, t in totals.items()
    }


def accumulate(
    previous_seen_raw: ArmCounts | None, current_raw: ArmCounts
) -> tuple[ArmCounts, bool]:
    """The increase of one arm's counters between two raw scrapes.

    A counter that went down, a changed set of histogram buckets or a changed process start
    time means the serving process restarted: its counters began again at zero, so the whole
    current value is the increase. (Requests served between the last scrape before a restart
    and the restart itself are lost; Prometheus's own ``increase()`` has the same blind spot.)

    Args:
        previous_seen_raw: The previous raw scrape of this arm, or None for the first one.
        current_raw: The current raw scrape of this arm.

    Returns:
        The increase (without ``process_start_time``) and whether a restart was detected.
    """
    if previous_seen_raw is None:
        return _strip(current_raw), False
    prev, cur = previous_seen_raw, current_raw
    restarted = (
        cur.requests < prev.requests
        or cur.errors < prev.errors
        or cur.latency_sum < prev.latency_sum
        or (
            bool(prev.latency_buckets)
            and [b for b, _ in prev.latency_buckets] != [b for b, _ in cur.latency_buckets]
        )
        or any(
            c < p for (_, p), (_, c) in zip(prev.latency_buckets, cur.latency_buckets, strict=False)
        )
        or (
            prev.process_start_time is not None
            and cur.process_start_time is not None
            and cur.process_start_time != prev.process_start_time
        )
    )
    if restarted:
        return _strip(cur), True
    previous_buckets = dict(prev.latency_buckets)
    return (
        ArmCounts(
            requests=cur.requests - prev.requests,
            errors=cur.errors - prev.errors,
            latency_buckets=tuple(
                (b, c - previous_buckets.get(b, 0.0)) for b, c in cur.latency_buckets
            ),
            latency_sum=cur.latency_sum - prev.latency_sum,
        ),
        False,
    )


def _strip(counts: ArmCounts) -> ArmCounts:
    return ArmCounts(counts.requests, counts.errors, counts.latency_buckets, counts.latency_sum)


def add(total: ArmCounts, increase: ArmCounts) -> ArmCounts:
    """Adds an increase to a running total.

    Histograms with different bucket bounds (the serving code changed its buckets) are added
    on the bounds they share, which always include ``inf``, so counts are never invented.
    """
    if not total.latency_buckets:
        buckets = increase.latency_buckets
    elif not increase.latency_buckets:
        buckets = total.latency_buckets
    else:
        other = dict(increase.latency_buckets)
        buckets = tuple((b, c + other[b]) for b, c in total.latency_buckets if b in other)
    return ArmCounts(
        requests=total.requests + increase.requests,
        errors=total.errors + increase.errors,
        latency_buckets=buckets,
        latency_sum=total.latency_sum + increase.latency_sum,
    )


def latency_quantile(counts: ArmCounts, q: float = 0.99) -> float | None:
    """A latency quantile from the histogram: the upper bound of the bucket holding it.

    This is not interpolated (unlike PromQL's ``histogram_quantile``): the true quantile is at
    most the returned value, and both arms are rounded up to the same bucket edges, so a
    comparison between them is not biased by the interpolation. ``inf`` when the quantile is
    beyond the largest finite bucket.

    Args:
        counts: Counts with a cumulative latency histogram.
        q: Quantile in (0, 1]; 0.99 gives the p99.

    Returns:
        Seconds, or None when the histogram is empty.
    """
    total = counts.latency_count
    if total <= 0:
        return None
    # The tolerance keeps float rounding of q * total from skipping the bucket that holds it.
    rank = q * total - 1e-9
    for bound, cumulative in counts.latency_buckets:
        if cumulative >= rank:
            return bound
    return math.inf


def _finite(value: float | None) -> float | str | None:
    # JSON has no infinity; evidence must stay readable by any JSON parser.
    return value if value is None or math.isfinite(value) else str(value)


def compare_p99(
    canary: ArmCounts,
    champion: ArmCounts,
    max_ratio: float,
    slack_seconds: float,
    min_observations: float,
) -> dict[str, Any]:
    """Whether the canary's p99 exceeds ``max_ratio`` x the champion's p99 + ``slack_seconds``.

    A fixed rule on bucket bounds (see :func:`latency_quantile`), not a statistical test; it
    applies only once both arms have ``min_observations`` latencies, since a p99 of a few hundred
    requests rests on a handful of them.

    Returns:
        JSON-safe evidence: both p99s, the limit, observation counts, ``applies`` and ``breached``.
    """
    p99_c, p99_b = latency_quantile(canary), latency_quantile(champion)
    applies = min(canary.latency_count, champion.latency_count) >= min_observations
    limit = None if p99_b is None else max_ratio * p99_b + slack_seconds
    breached = applies and p99_c is not None and limit is not None and p99_c > limit
    return {
        "canary_p99_seconds": _finite(p99_c),
        "champion_p99_seconds": _finite(p99_b),
        "limit_seconds": _finite(limit),
        "canary_observations": canary.latency_count,
        "champion_observations": champion.latency_count,
        "min_observations": min_observations,
        "applies": bool(applies),
        "breached": bool(breached),
    }
