"""What a load run saw: one :class:`Sample` per request, and the :class:`LoadReport` of them all.

Latencies, failure kinds (any answer but a 200 carrying probabilities), the share of each model
arm and version, and a human summary; ``mlplatform.loadtest`` produces them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

MISSING = "-"  # arm or version of an answer without the header


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it.

    Attributes:
        started_at: ``time.perf_counter()`` when it was sent.
        seconds: Until the whole answer was read (or the transport failed).
        status: HTTP status; 0 when no answer came (connection or timeout error).
        arm: ``X-Model-Arm`` of the answer, ``-`` without one.
        version: ``X-Model-Version`` of the answer, ``-`` without one.
        failure: The failure kind (see :func:`failure_kind`), None for a good answer.
        detail: For a failure, the start of the body or the transport error.
    """

    started_at: float
    seconds: float
    status: int
    arm: str = MISSING
    version: str = MISSING
    failure: str | None = None
    detail: str = ""


def failure_kind(status: int, body: bytes) -> str | None:
    """The failure kind of one answer, or None when it is a good scoring answer.

    Args:
        status: HTTP status.
        body: Response body.

    Returns:
        ``http_<status>`` for any status but 200; ``malformed`` for a 200 whose body is not
        ``{"predictions": [...]}`` with a non-empty list of numbers in [0, 1]; None otherwise.
    """
    if status != 200:
        return f"http_{status}"
    try:
        predictions = json.loads(body)["predictions"]
    except (ValueError, TypeError, KeyError):
        return "malformed"
    if not isinstance(predictions, list) or not predictions:
        return "malformed"
    for value in predictions:
        # bool is an int in Python, but true is no probability.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "malformed"
        if not 0.0 <= value <= 1.0:  # NaN fails too
            return "malformed"
    return None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``q`` of the values at or below.

    Args:
        sorted_values: Values in ascending order.
        q: Fraction in (0, 1].

    Returns:
        The value, or NaN for no values.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"percentile fraction must be in (0, 1], got {q}")
    if not sorted_values:
        return math.nan
    return sorted_values[max(math.ceil(q * len(sorted_values)) - 1, 0)]


@dataclass(frozen=True)
class LoadReport:
    """What a load run did. Latencies cover every request, failed or not, in milliseconds.

    Attributes:
        samples: Every request, in the order they finished.
        elapsed: Seconds from the first send until the last answer (in-flight requests finish
            after the deadline and count).
        concurrency: Clients sending back to back.
    """

    samples: tuple[Sample, ...]
    elapsed: float
    concurrency: int
    _sorted_ms: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(
            self, "_sorted_ms", tuple(sorted(s.seconds * 1000 for s in self.samples))
        )

    @property
    def requests(self) -> int:
        return len(self.samples)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def failures(self) -> Counter:
        """Failed requests by kind (empty when all succeeded)."""
        return Counter(s.failure for s in self.samples if s.failure is not None)

    @property
    def first_failures(self) -> dict[str, Sample]:
        """The first failed request of each kind (its status and body say what went wrong)."""
        first: dict[str, Sample] = {}
        for sample in self.samples:
            if sample.failure is not None:
                first.setdefault(sample.failure, sample)
        return first

    def latency_ms(self, q: float) -> float:
        """Latency percentile ``q`` (e.g. 0.99) in milliseconds."""
        return percentile(self._sorted_ms, q)

    @property
    def p50_ms(self) -> float:
        return self.latency_ms(0.5)

    @property
    def p99_ms(self) -> float:
        return self.latency_ms(0.99)

    @property
    def max_ms(self) -> float:
        return self._sorted_ms[-1] if self._sorted_ms else math.nan

    @property
    def arms(self) -> Counter:
        """Requests per ``X-Model-Arm`` value."""
        return Counter(s.arm for s in self.samples)

    @property
    def versions(self) -> Counter:
        """Requests per ``X-Model-Version`` value."""
        return Counter(s.version for s in self.samples)

    def share(self, arm: str) -> float:
        """The fraction of requests answered by ``arm`` (NaN without requests)."""
        return self.arms[arm] / self.requests if self.requests else math.nan

    def summary(self) -> str:
        """A few lines for a terminal or an assertion message."""

        def counts(counter: Counter) -> str:
            total = sum(counter.values()) or 1
            return ", ".join(f"{k} {n:,} ({n / total:.2%})" for k, n in sorted(counter.items()))

        lines = [
            f"{self.requests:,} requests in {self.elapsed:.1f} s "
            f"({self.requests_per_second:.1f} req/s) from {self.concurrency} clients",
            f"latency ms: p50 {self.p50_ms:.1f}  p99 {self.p99_ms:.1f}  max {self.max_ms:.1f}",
            f"arms: {counts(self.arms)}",
            f"versions: {counts(self.versions)}",
        ]
        failed = ", ".join(f"{k} x{n}" for k, n in sorted(self.failures.items()))
        lines.append(f"failures: {failed or 'none'}")
        lines += [f"  first {k}: {s.detail}" for k, s in sorted(self.first_failures.items())]
        return "\n".join(lines)
