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
from dataclasses import dataclass, field, fields

import pandas as pd
import prometheus_client as prom
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mlplatform.redaction import redact_url
from mlplatform.serving.admin import admin_router
from mlplatform.serving.batching import DEFAULT_MAX_BATCH_ROWS, MicroBatcher, ScoringFailure
from mlplatform.serving.environment import serving_environment, serving_stack
from mlplatform.serving.frame import to_frame
from mlplatform.serving.metrics import ServingMetrics
from mlplatform.serving.payload import (
    MAX_BYTES,
    MAX_ROWS,
    PayloadError,
    check_content_type,
    parse_body,
    read_table,
)
from mlplatform.serving.routing import CANARY, CHAMPION, arm_for
from mlplatform.serving.slot_state import LoadedModel, SlotState
from mlplatform.serving.slots import ModelSlots

logger = logging.getLogger(__name__)

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
        max_batch_rows: Most rows scored in one predict call when concurrent requests for one
            model version are batched (see :mod:`mlplatform.serving.batching`).
        admin_token: Bearer token of the admin endpoints (:mod:`mlplatform.serving.admin`);
            None disables them. Kept out of the settings' repr, so logs never show it.
    """

    tracking_uri: str
    model_name: str
    id_column: str | None = None
    poll_seconds: float = 0.5
    max_bytes: int = MAX_BYTES
    max_rows: int = MAX_ROWS
    salt: str = "mlplatform-canary"
    model_threads: int | None = 1
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    admin_token: str | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        # Settings end up in logs and error messages: the tracking URI may carry a database
        # password, and the admin token (repr=False) stays out.
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["tracking_uri"] = redact_url(self.tracking_uri)
        return f"ServingSettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self):
        sizes = (self.poll_seconds, self.max_bytes, self.max_rows, self.max_batch_rows)
        if not all(size > 0 for size in sizes):
            raise ValueError(
                "poll_seconds, max_bytes, max_rows and max_batch_rows must be positive"
            )
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


@dataclass(frozen=True)
class _Routed:
    """A request checked and routed: its rows as the arm's model input."""

    loaded: LoadedModel
    arm: str
    frame: pd.DataFrame


def _prepare(
    state: SlotState, raw: bytes, content_type: str | None, settings: ServingSettings
) -> _Routed | _Outcome:
    """Parses, validates and routes one request (CPU-bound; runs in a worker thread)."""
    if state.champion is None:
        return _error(503, "TEMPORARILY_UNAVAILABLE", f"no champion of {settings.model_name}")
    try:
        table = read_table(parse_body(raw, content_type, settings.max_bytes), settings.max_rows)
    except PayloadError as exc:
        return _error(exc.status, exc.error_code, exc.message)
    arm = arm_for(table.entity_id(settings.id_column), state.canary_weight, settings.salt)
    use_canary = arm == CANARY and state.canary is not None
    loaded = state.canary if use_canary else state.champion
    arm = CANARY if use_canary else CHAMPION
    try:
        # The arm's own signature: a canary may read other columns than the champion.
        frame = to_frame(table, loaded.signature)
    except PayloadError as exc:
        return _error(exc.status, exc.error_code, exc.message, arm=arm, version=loaded.version)
    return _Routed(loaded, arm, frame)


def _answer(routed: _Routed, result: list[float] | ScoringFailure) -> _Outcome:
    where = {"arm": routed.arm, "version": routed.loaded.version}
    if isinstance(result, ScoringFailure):
        return _error(500, "INTERNAL_ERROR", result.message, result.kind, **where)
    return _Outcome(200, {"predictions": result}, **where)


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
        "canary_weight_override": state.canary_weight_override,
        "champion_loaded_at": state.loaded_at,
        # Per loaded version: scored by its verified fast path (small batches) or the model only.
        "fast_path": {
            m.version: m.row_scorer is not None
            for m in (state.champion, state.previous, state.canary)
            if m is not None
        },
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
    batcher = MicroBatcher(
        settings.max_batch_rows, lambda: _limit_native_threads(settings.model_threads)
    )
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
    app.include_router(admin_router(slots, settings.admin_token))

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        state = slots.snapshot()  # this request's models, whatever the poller does meanwhile
        content_type = request.headers.get("content-type")
        try:
            check_content_type(content_type)  # before reading a body we would refuse anyway
            raw = await _read_body(request, settings.max_bytes)
            prepared = await run_in_threadpool(_prepare, state, raw, content_type, settings)
            if isinstance(prepared, _Routed):
                loaded = prepared.loaded
                result = await batcher.score(
                    loaded.model, loaded.version, prepared.frame, loaded.row_scorer
                )
                outcome = _answer(prepared, result)
            else:
                outcome = prepared
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
