"""A bounded load against a scoring server: concurrent keep-alive clients for a fixed time.

``run_load`` posts pre-encoded bodies to ``/invocations`` from ``concurrency`` clients sending
back to back on one asyncio loop, and returns a :class:`LoadReport`: every request is kept as a
:class:`Sample` (start time, latency, status, the ``X-Model-Arm`` and ``X-Model-Version`` the
server answered with), so a test can ask what was served before and after an event during the
load. Any answer other than a 200 carrying ``{"predictions": [p, ...]}`` with every ``p`` a
probability is a failure, kept with its status and the start of its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

ARM_HEADER = "X-Model-Arm"
VERSION_HEADER = "X-Model-Version"
MISSING = "-"  # arm or version of an answer without the header
DETAIL_CHARS = 300


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


@dataclass(frozen=True)
class LoadProgress:
    """Counts so far, passed to ``on_progress`` about once a second."""

    elapsed: float
    requests: int
    failures: int


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


async def _send(client: httpx.AsyncClient, path: str, body: bytes) -> Sample:
    started = time.perf_counter()
    try:
        response = await client.post(path, content=body)
    except httpx.HTTPError as exc:  # counted as a failure with its cause, not raised
        seconds = time.perf_counter() - started
        detail = f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS]
        return Sample(started, seconds, 0, failure=f"transport_{type(exc).__name__}", detail=detail)
    seconds = time.perf_counter() - started
    kind = failure_kind(response.status_code, response.content)
    detail = "" if kind is None else response.text[:DETAIL_CHARS]
    return Sample(
        started,
        seconds,
        response.status_code,
        response.headers.get(ARM_HEADER, MISSING),
        response.headers.get(VERSION_HEADER, MISSING),
        kind,
        detail,
    )


async def load(
    url: str,
    bodies: Sequence[bytes],
    seconds: float,
    concurrency: int,
    on_progress: Callable[[LoadProgress], None] | None = None,
    path: str = "/invocations",
    timeout: float = 30.0,
    progress_seconds: float = 1.0,
    transport: httpx.AsyncBaseTransport | None = None,
    min_requests: int = 0,
    max_seconds: float | None = None,
) -> LoadReport:
    """:func:`run_load` for callers in an event loop; ``progress_seconds`` is the interval of
    ``on_progress`` calls, ``transport`` replaces the network (tests pass a MockTransport)."""
    if not bodies:
        raise ValueError("no request bodies to send")
    if not (seconds > 0 and concurrency >= 1):
        raise ValueError(f"seconds and concurrency must be positive, got {seconds}, {concurrency}")
    samples: list[Sample] = []
    next_body = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(
        base_url=url, timeout=timeout, limits=limits, headers=headers, transport=transport
    ) as client:
        started = time.perf_counter()
        deadline = started + seconds
        hard_deadline = started + max(seconds, max_seconds or seconds)

        def keep_sending() -> bool:
            now = time.perf_counter()
            return now < deadline or (next_body < min_requests and now < hard_deadline)

        async def worker() -> None:
            nonlocal next_body
            while keep_sending():
                # One event loop: taking the index and advancing it cannot interleave.
                body, next_body = bodies[next_body % len(bodies)], next_body + 1
                samples.append(await _send(client, path, body))

        async def ticker() -> None:
            while True:
                await asyncio.sleep(progress_seconds)
                failed = sum(1 for s in samples if s.failure is not None)
                on_progress(LoadProgress(time.perf_counter() - started, len(samples), failed))

        progress = asyncio.create_task(ticker()) if on_progress else None
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            if progress is not None:
                progress.cancel()
                # Re-raises an exception of on_progress; only the cancellation is expected.
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
        elapsed = time.perf_counter() - started
    return LoadReport(tuple(samples), elapsed, concurrency)


def run_load(
    url: str,
    bodies: Sequence[bytes],
    seconds: float,
    concurrency: int,
    on_progress: Callable[[LoadProgress], None] | None = None,
    path: str = "/invocations",
    timeout: float = 30.0,
    min_requests: int = 0,
    max_seconds: float | None = None,
) -> LoadReport:
    """Sends requests from ``concurrency`` keep-alive clients for ``seconds``; reports them.

    Request ``i`` (counted over all clients) sends ``bodies[i % len(bodies)]``, so as many
    bodies as requests means no body is sent twice (routing by id needs distinct ids). Each
    client sends its next request as soon as its answer is read; no request starts after the
    deadline, those in flight are waited for.

    Args:
        url: Server base URL, e.g. ``http://127.0.0.1:8080``.
        bodies: Pre-encoded JSON request bodies.
        seconds: How long to keep sending.
        concurrency: Clients (connections) sending at the same time.
        on_progress: Called about once a second with the counts so far, on the event loop:
            it must return quickly (hand slow work to a thread).
        path: Scoring path.
        timeout: Seconds before one request counts as a transport failure.
        min_requests: Keep sending past ``seconds`` until this many requests have started
            (a slower machine still sends the sample a statistic needs)...
        max_seconds: ...but never past this many seconds (default: ``seconds``).

    Returns:
        The report; failures are in it, not raised.

    Raises:
        ValueError: No bodies, or seconds or concurrency not positive.
    """
    return asyncio.run(
        load(
            url,
            bodies,
            seconds,
            concurrency,
            on_progress,
            path,
            timeout,
            min_requests=min_requests,
            max_seconds=max_seconds,
        )
    )
