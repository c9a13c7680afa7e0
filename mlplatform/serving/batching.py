"""Adaptive micro-batching: concurrent requests for one model version share one predict call.

Scoring one row of a scikit-learn pipeline costs about as much as scoring dozens (the per-call
overhead of pandas, validation and the tree ensemble dominates), so requests that arrive while
a predict call runs are queued and scored together in the next one. Nothing waits for a batch
to fill: a lone request is scored at once, so batching never adds latency on an idle server,
and batches grow by themselves with the load (the same idea as adaptive batching in BentoML or
dynamic batching in Triton, without their timeout knob).

A batch that fails (an exception or an invalid output) is scored again request by request, so
one request's bad rows fail only that request, with the same error it would get alone.

A model version with a verified fast path (:mod:`mlplatform.serving.fast_path`) scores batches
of up to ``FAST_PATH_MAX_ROWS`` rows with it; a batch it refuses goes to the model as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from starlette.concurrency import run_in_threadpool

from mlplatform.serving.fast_path_steps import FastPathUnsupported

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_ROWS = 256
# Measured on the churn pipelines, one thread: the fast path takes ~0.2 ms for 1 row and ~5 ms
# for 256, the pipeline 15-25 ms for either; they are level near 1,000 rows.
FAST_PATH_MAX_ROWS = 256


@dataclass(frozen=True)
class ScoringFailure:
    """Why a request's rows got no scores.

    Attributes:
        kind: ``exception`` (predict raised) or ``invalid_output`` (not one probability per row).
        message: Client-safe description (exception type or output problem, no internals).
    """

    kind: str
    message: str


def churn_scores(output: Any, n_rows: int) -> list[float]:
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


def score_frame(model: Any, version: str, frame: pd.DataFrame) -> list[float] | ScoringFailure:
    """Scores one frame, turning a model failure into a :class:`ScoringFailure` (logged)."""
    try:
        output = model.predict(frame)
    except Exception as exc:  # noqa: BLE001 - a model failure is answered and counted, not raised
        logger.exception("model v%s failed to score %d rows", version, len(frame))
        return ScoringFailure("exception", f"model failed: {type(exc).__name__}")
    try:
        return churn_scores(output, len(frame))
    except ValueError as exc:
        logger.error("model v%s returned invalid output: %s", version, exc)
        return ScoringFailure("invalid_output", f"invalid model output: {exc}")


def fast_scores(row_scorer: Callable, version: str, frames: list[pd.DataFrame]) -> list | None:
    """Each frame's scores from a fast path, or None when it refuses one (the model scores)."""
    try:
        return [churn_scores(row_scorer(frame), len(frame)) for frame in frames]
    except FastPathUnsupported:
        return None
    except Exception:  # noqa: BLE001 - a fast-path bug must cost speed, never an answer
        logger.exception("fast path of model v%s failed; the model scores the batch", version)
        return None


def score_frames(
    model: Any, version: str, frames: list[pd.DataFrame], row_scorer: Callable | None = None
) -> list:
    """Scores several requests' frames in one predict call; per frame, scores or a failure.

    The frames must have the same columns and dtypes (one signature, the same optional columns
    present), which makes their concatenation what each would have been alone. With a
    ``row_scorer`` (the model's verified fast path), small batches are scored by it instead.
    """
    if row_scorer is not None and sum(map(len, frames)) <= FAST_PATH_MAX_ROWS:
        scores = fast_scores(row_scorer, version, frames)
        if scores is not None:
            return scores
    if len(frames) == 1:
        return [score_frame(model, version, frames[0])]
    combined = pd.concat(frames, ignore_index=True, copy=False)
    try:
        scores = churn_scores(model.predict(combined), len(combined))
    except Exception:  # noqa: BLE001 - isolate the failing request: score each on its own
        return [score_frame(model, version, frame) for frame in frames]
    bounds = np.cumsum([0, *(len(frame) for frame in frames)]).tolist()
    return [scores[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


@dataclass
class _Queue:
    items: deque[tuple[pd.DataFrame, asyncio.Future]] = field(default_factory=deque)


class MicroBatcher:
    """Queues frames per (model, columns) and scores each queue's frames in batches.

    Args:
        max_rows: Most rows per predict call; a request larger than this is scored alone.
        before_predict: Called in the worker thread before each predict (e.g. thread limits).
    """

    def __init__(
        self,
        max_rows: int = DEFAULT_MAX_BATCH_ROWS,
        before_predict: Callable[[], None] = lambda: None,
    ):
        if max_rows < 1:
            raise ValueError("max_rows must be positive")
        self.max_rows = max_rows
        self._before_predict = before_predict
        self._queues: dict[tuple, _Queue] = {}

    async def score(
        self, model: Any, version: str, frame: pd.DataFrame, row_scorer: Callable | None = None
    ):
        """Scores ``frame`` with ``model``, batched with concurrent requests for the same model.

        ``row_scorer`` is the model's verified fast path, if it has one.

        Returns:
            The scores (one per row), or a :class:`ScoringFailure`.
        """
        key = (id(model), tuple(frame.columns), tuple(map(str, frame.dtypes)))
        future = asyncio.get_running_loop().create_future()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
            # The drain task holds the model: the key's id() stays valid while it runs.
            asyncio.create_task(self._drain(key, model, version, queue, row_scorer))
        queue.items.append((frame, future))
        return await future

    async def _drain(
        self, key: tuple, model: Any, version: str, queue: _Queue, row_scorer: Callable | None
    ) -> None:
        try:
            while queue.items:
                batch, rows = [], 0
                while queue.items and (not batch or rows + len(queue.items[0][0]) <= self.max_rows):
                    item = queue.items.popleft()
                    batch.append(item)
                    rows += len(item[0])
                frames = [frame for frame, _ in batch]
                try:
                    results = await run_in_threadpool(
                        self._predict, model, version, frames, row_scorer
                    )
                except BaseException as exc:  # a bug of ours: every waiter hears it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # the client may have gone away
                        future.set_result(result)
        finally:
            # No await between the empty check above and this removal, so no request can have
            # joined the queue after its last batch.
            self._queues.pop(key, None)

    def _predict(
        self, model: Any, version: str, frames: list[pd.DataFrame], row_scorer: Callable | None
    ) -> list:
        self._before_predict()
        return score_frames(model, version, frames, row_scorer)
