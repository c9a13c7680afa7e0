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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from mlplatform.load_report import MISSING, LoadReport, Sample, failure_kind

ARM_HEADER = "X-Model-Arm"
VERSION_HEADER = "X-Model-Version"
DETAIL_CHARS = 300


@dataclass(frozen=True)
class LoadProgress:
    """Counts so far, passed to ``on_progress`` about once a second."""

    elapsed: float
    requests: int
    failures: int


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
