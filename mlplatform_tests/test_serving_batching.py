"""Micro-batching of concurrent scoring requests: same answers as one by one, failures isolated."""

from __future__ import annotations

import asyncio
import threading
from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.validation import enforce_spec
from mlplatform.ml.training import TrainingParams, model_input, train_pipeline
from mlplatform.serving.batching import MicroBatcher, ScoringFailure, score_frames


class RowModel:
    """Scores x / 10 per row; raises on a row with x == -1; records the rows of every call."""

    def __init__(self, gate: threading.Event | None = None):
        self.calls: list[int] = []
        self.gate = gate

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        self.calls.append(len(frame))
        if (frame["x"] == -1).any():
            raise ValueError("cannot score -1")
        p = frame["x"].to_numpy(dtype=float) / 10
        return np.column_stack([1 - p, p])


def frame(*xs: float) -> pd.DataFrame:
    return pd.DataFrame({"x": list(xs)})


def test_a_batch_answers_each_request_with_its_own_rows():
    model = RowModel()
    results = score_frames(model, "1", [frame(1), frame(2, 3), frame(4)])
    assert results == [[0.1], [0.2, 0.3], [0.4]]
    assert model.calls == [4]


def test_a_failing_request_fails_alone_and_the_others_are_scored():
    model = RowModel()
    results = score_frames(model, "1", [frame(1), frame(-1), frame(5)])
    assert results[0] == [0.1] and results[2] == [0.5]
    assert results[1] == ScoringFailure("exception", "model failed: ValueError")
    assert model.calls == [3, 1, 1, 1]  # the batch, then each request on its own


def test_invalid_output_is_isolated_to_its_request():
    class OverOne(RowModel):
        def predict(self, frame):
            return frame["x"].to_numpy(dtype=float)  # 1-D, values above 1 are invalid

    results = score_frames(OverOne(), "1", [frame(0.5), frame(7)])
    assert results[0] == [0.5]
    assert isinstance(results[1], ScoringFailure) and results[1].kind == "invalid_output"


async def _score_concurrently(batcher, model, frames):
    first = asyncio.create_task(batcher.score(model, "1", frames[0]))
    await asyncio.sleep(0.05)  # the first request is being predicted, blocked on the gate
    rest = [asyncio.create_task(batcher.score(model, "1", f)) for f in frames[1:]]
    await asyncio.sleep(0.05)
    model.gate.set()
    return await asyncio.gather(first, *rest)


def test_requests_arriving_during_a_predict_share_the_next_one():
    model = RowModel(threading.Event())
    batcher = MicroBatcher(max_rows=256)
    frames = [frame(i) for i in range(6)]
    results = asyncio.run(_score_concurrently(batcher, model, frames))
    assert results == [[i / 10] for i in range(6)]
    assert model.calls == [1, 5]  # the lone first request was not held back to wait for a batch


def test_batches_respect_max_rows_and_keep_an_oversized_request_whole():
    model = RowModel(threading.Event())
    batcher = MicroBatcher(max_rows=3)
    frames = [frame(1), frame(1, 2), frame(3, 4), frame(5, 6, 7, 8), frame(9)]
    results = asyncio.run(_score_concurrently(batcher, model, frames))
    assert [len(r) for r in results] == [1, 2, 2, 4, 1]
    assert model.calls == [1, 2, 2, 4, 1]  # 2 + 2 > 3 rows; the 4-row request goes alone


def test_frames_with_other_columns_are_not_mixed():
    model = RowModel(threading.Event())
    batcher = MicroBatcher()
    frames = [frame(1), frame(2), pd.DataFrame({"x": [3.0], "extra": ["a"]}), frame(4)]
    results = asyncio.run(_score_concurrently(batcher, model, frames))
    assert results == [[0.1], [0.2], [0.3], [0.4]]
    assert sorted(model.calls) == [1, 1, 2]


def test_max_rows_must_be_positive():
    with pytest.raises(ValueError, match="max_rows"):
        MicroBatcher(max_rows=0)


@pytest.mark.parametrize("estimator", ["gradient_boosting", "logistic_regression"])
def test_a_trained_pipeline_scores_a_batch_as_it_scores_each_row(estimator):
    spec = load_spec("synthetic_churn")
    train = enforce_spec(generate_batch(date(2026, 1, 2), 1500), spec, "train")[0]
    pipeline = train_pipeline(train, spec, TrainingParams(estimator, max_iter=20))
    holdout = enforce_spec(generate_batch(date(2026, 1, 3), 600), spec, "holdout")[0]
    rows = model_input(holdout, spec).head(40)

    class Proba:
        def predict(self, frame):
            return pipeline.predict_proba(frame)

    singles = [rows.iloc[[i]].reset_index(drop=True) for i in range(len(rows))]
    batched = score_frames(Proba(), "1", singles)
    alone = [score_frames(Proba(), "1", [single])[0] for single in singles]
    np.testing.assert_allclose(np.ravel(batched), np.ravel(alone), rtol=0, atol=1e-12)
