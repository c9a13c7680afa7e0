"""The model-serving HTTP process: MLflow's scoring protocol over the registry's champion and
canary, with health and Prometheus metrics.

``POST /invocations`` scores rows with the arm the request is routed to (see
:mod:`mlplatform.serving.routing`), ``GET /health`` reports the served versions and the
environment, ``GET /metrics`` exposes requests, errors and latency per arm and version.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
import prometheus_client as prom
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mlplatform.serving.environment import serving_environment, serving_stack
from mlplatform.serving.payload import (
    MAX_BYTES,
    MAX_ROWS,
    PayloadError,
    check_content_type,
    parse_body,
    read_table,
    to_frame,
)
from mlplatform.serving.routing import CANARY, CHAMPION, arm_for
from mlplatform.serving.slots import ModelSlots, SlotState

logger = logging.getLogger(__name__)

# 1 ms .. 5 s, dense where scoring latencies live, so p99 is read from a narrow bucket.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
)  # fmt: skip
NONE = "none"  # arm and version label before a request is routed


@dataclass(frozen=True)
class ServingSettings:
    """Settings of one serving process.

    Attributes:
        tracking_uri: MLflow tracking and registry URI.
        model_name: Registered model name, e.g. ``mlplatform-synthetic_churn``.
        id_column: Column whose first-row value routes a request (sticky); None routes randomly.
        poll_seconds: Seconds between registry polls.
        max_bytes: Largest request body.
        max_rows: Most rows per request.
        salt: Routing hash salt; changing it reshuffles which ids see the canary.
        model_threads: Native threads (OpenMP, BLAS) one scoring call may use; None leaves the
            libraries' default (one per CPU). Requests already run side by side in worker
            threads, so nested per-call parallelism only oversubscribes the CPUs: with the
            default, one single-row call of a gradient-boosting pipeline takes about twice as
            long (threads spin up and wait on each other for every tree).
    """

    tracking_uri: str
    model_name: str
    id_column: str | None = None
    poll_seconds: float = 0.5
    max_bytes: int = MAX_BYTES
    max_rows: int = MAX_ROWS
    salt: str = "mlplatform-canary"
    model_threads: int | None = 1

    def __post_init__(self):
        if not (self.poll_seconds > 0 and self.max_bytes > 0 and self.max_rows > 0):
            raise ValueError("poll_seconds, max_bytes and max_rows must be positive")
        if self.model_threads is not None and self.model_threads < 1:
            raise ValueError("model_threads must be positive (or None for the default)")


_thread_limits = threading.local()


def _limit_native_threads(threads: int | None) -> None:
    """Caps OpenMP and BLAS threads for scoring calls made from the current thread.

    OpenMP's limit belongs to the thread that sets it, so each worker thread sets it once
    (threadpoolctl finds the loaded libraries; later calls are a thread-local lookup).
    """
    if threads is None or getattr(_thread_limits, "threads", None) == threads:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    _thread_limits.threads = threads


class ServingMetrics:
    """Prometheus metrics of one app, in their own registry (apps in one process stay apart)."""

    def __init__(self, slots: ModelSlots):
        self.registry = prom.CollectorRegistry()
        # process_start_time_seconds tells a scraper that counters restarted from zero.
        prom.ProcessCollector(registry=self.registry)
        labels = ("arm", "model_version")
        self.requests = prom.Counter(
            "mlplatform_requests_total",
            "Scoring requests by arm, model version and HTTP status.",
            (*labels, "status"),
            registry=self.registry,
        )
        self.errors = prom.Counter(
            "mlplatform_errors_total",
            "Server-side scoring errors: exception, invalid_output or 5xx (other 5xx answers).",
            (*labels, "kind"),
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "mlplatform_request_latency_seconds",
            "Scoring request latency, from body read to response.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        weight = prom.Gauge(
            "mlplatform_canary_weight", "Canary traffic share now served.", registry=self.registry
        )
        weight.set_function(lambda: slots.snapshot().canary_weight)

    def record(self, arm: str, version: str, status: int, seconds: float, kind: str | None):
        """Counts one finished request."""
        self.requests.labels(arm, version, str(status)).inc()
        self.latency.labels(arm, version).observe(seconds)
        if kind is not None:
            self.errors.labels(arm, version, kind).inc()


@dataclass
class _Outcome:
    status: int
    body: dict
    arm: str = NONE
    version: str = NONE
    error_kind: str | None = None


def _error(status: int, code: str, message: str, kind: str | None = None, **routed) -> _Outcome:
    # Error kinds exclude each other, so their sum is the number of failed requests.
    kind = kind or ("5xx" if status >= 500 else None)
    return _Outcome(status, {"error_code": code, "message": message}, error_kind=kind, **routed)


def churn_scores(output, n_rows: int) -> list[float]:
    """The churn probability per row from a model's output (column 1 of predict_proba).

    Raises:
        ValueError: The output is not ``n_rows`` probabilities (wrong shape or length, not
            numeric, NaN, or outside [0, 1]).
    """
    values = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output)
    if values.ndim == 2 and values.shape[1] >= 2:
        values = values[:, 1]
    if values.ndim != 1 or len(values) != n_rows:
        raise ValueError(f"expected {n_rows} probabilities, got shape {values.shape}")
    try:
        values = values.astype("float64")
    except (TypeError, ValueError):
        raise ValueError(f"non-numeric output of dtype {values.dtype}") from None
    if not np.all((values >= 0) & (values <= 1)):  # NaN fails both comparisons
        raise ValueError("output has NaN or values outside [0, 1]")
    return values.tolist()


def _score(
    state: SlotState, raw: bytes, content_type: str | None, settings: ServingSettings
) -> _Outcome:
    """Everything CPU-bound of one request; runs in a worker thread."""
    if state.champion is None:
        return _error(503, "TEMPORARILY_UNAVAILABLE", f"no champion of {settings.model_name}")
    try:
        table = read_table(parse_body(raw, content_type, settings.max_bytes), settings.max_rows)
    except PayloadError as exc:
        return _error(exc.status, exc.error_code, exc.message)
    arm = arm_for(table.entity_id(settings.id_column), state.canary_weight, settings.salt)
    use_canary = arm == CANARY and state.canary is not None
    loaded = state.canary if use_canary else state.champion
    routed = {"arm": CANARY if use_canary else CHAMPION, "version": loaded.version}
    try:
        # The arm's own signature: a canary may read other columns than the champion.
        frame = to_frame(table, loaded.signature)
    except PayloadError as exc:
        return _error(exc.status, exc.error_code, exc.message, **routed)
    _limit_native_threads(settings.model_threads)
    try:
        output = loaded.model.predict(frame)
    except Exception as exc:  # noqa: BLE001 - a model failure is answered and counted, not raised
        logger.exception("model v%s failed to score %d rows", loaded.version, table.n_rows)
        message = f"model failed: {type(exc).__name__}"
        return _error(500, "INTERNAL_ERROR", message, "exception", **routed)
    try:
        scores = churn_scores(output, table.n_rows)
    except ValueError as exc:
        logger.error("model v%s returned invalid output: %s", loaded.version, exc)
        message = f"invalid model output: {exc}"
        return _error(500, "INTERNAL_ERROR", message, "invalid_output", **routed)
    return _Outcome(200, {"predictions": scores}, **routed)


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadError(413, f"body of {declared} bytes is over the limit of {max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadError(413, f"body is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _health(settings: ServingSettings, state: SlotState, environment: dict) -> JSONResponse:
    ready = state.champion is not None
    body = {
        "status": "ok" if ready else "unavailable",
        "model_name": settings.model_name,
        "champion_version": state.champion_version,
        "previous_version": state.previous_version,
        "canary_version": state.canary_version,
        "canary_weight": state.canary_weight,
        "champion_loaded_at": state.loaded_at,
        "environment": environment["pipeline"],
        "serving_stack": environment["stack"],
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def create_app(settings: ServingSettings, slots: ModelSlots | None = None) -> FastAPI:
    """The serving app; its lifespan loads the models and runs the registry poller.

    Args:
        settings: Serving settings.
        slots: Model slots to serve from; by default slots on ``settings.tracking_uri``.

    Returns:
        The FastAPI app.
    """
    if slots is None:
        import mlflow
        from mlflow import MlflowClient

        # Model URIs are resolved against the global registry URI; this process has one.
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        client = MlflowClient(
            tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri
        )
        slots = ModelSlots(client, settings.model_name, settings.poll_seconds)
    metrics = ServingMetrics(slots)
    # Fixed for the life of the process.
    environment = {"pipeline": serving_environment(), "stack": serving_stack()}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await run_in_threadpool(slots.start)
        try:
            yield
        finally:
            await run_in_threadpool(slots.stop)

    app = FastAPI(title=f"mlplatform serving: {settings.model_name}", lifespan=lifespan)
    app.state.settings, app.state.slots, app.state.metrics = settings, slots, metrics

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        state = slots.snapshot()  # this request's models, whatever the poller does meanwhile
        content_type = request.headers.get("content-type")
        try:
            check_content_type(content_type)  # before reading a body we would refuse anyway
            raw = await _read_body(request, settings.max_bytes)
            outcome = await run_in_threadpool(_score, state, raw, content_type, settings)
        except PayloadError as exc:
            outcome = _error(exc.status, exc.error_code, exc.message)
        except Exception:  # noqa: BLE001 - a bug of ours still answers in JSON and is counted
            logger.exception("scoring request failed")
            outcome = _error(500, "INTERNAL_ERROR", "internal error while scoring")
        metrics.record(
            outcome.arm,
            outcome.version,
            outcome.status,
            time.perf_counter() - started,
            outcome.error_kind,
        )
        headers = {"X-Model-Version": outcome.version, "X-Model-Arm": outcome.arm}
        return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)

    @app.get("/health")
    async def health() -> JSONResponse:
        return _health(settings, slots.snapshot(), environment)

    @app.get("/health/live")
    async def live() -> JSONResponse:
        # Liveness: the process answers. A missing champion is readiness (/health), not a
        # reason to restart: the poller loads it when the registry has one.
        return JSONResponse({"status": "alive"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(prom.generate_latest(metrics.registry), media_type=prom.CONTENT_TYPE_LATEST)

    return app


def serve(settings: ServingSettings, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Runs the serving app with uvicorn until interrupted (one process: one set of models).

    Args:
        settings: Serving settings.
        host: Interface to bind.
        port: Port to bind.
    """
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
