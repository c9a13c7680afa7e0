"""A verified fast scoring path for a few rows: the fitted pipeline's own numbers, without its
per-call overhead.

Scoring one row with the scikit-learn pipeline costs ~20 ms, nearly all of it per-call work
(pandas indexing, input validation, one Python call per boosted tree), while the arithmetic
takes microseconds. :func:`compile_row_scorer` rebuilds the fitted steps ``build_pipeline``
makes as plain numpy over the raw input columns (:mod:`~mlplatform.serving.fast_path_steps`,
:mod:`~mlplatform.serving.fast_path_models`): the same parameters of the same artefact, the same
floating-point operations in the same order (the trees are walked for all trees at once and
their leaves summed in scikit-learn's order).

It is used only after it has proven itself: at compile time it scores the model's input example
and rows derived from it (each column missing, unseen categories, extreme numbers, every tree
threshold on a raw column and its neighbours, random mixes; see
:mod:`mlplatform.serving.fast_path_checks`) both ways, and returns None unless the model's input
matrix is bit for bit the pipeline's, every probability matches within ``TOLERANCE`` and every
row the model refuses is refused too. A pipeline with any
step it does not know exactly also gets None: serving then keeps using the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from mlplatform.serving.batching import churn_scores
from mlplatform.serving.fast_path_checks import (
    DATE_PROBES,
    same_features,
    verification_rows,
    verify,
)
from mlplatform.serving.fast_path_models import TreeEnsemble, compile_model
from mlplatform.serving.fast_path_steps import FastPathUnsupported, compile_block, compile_features
from mlplatform.serving.frame import to_frame
from mlplatform.serving.payload import Table

__all__ = ["FastPathUnsupported", "RowScorer", "compile_row_scorer", "row_scorer_for_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowScorer:
    """Positive-class probabilities of a compiled pipeline; call it with the model-input frame.

    Attributes:
        input_columns: Raw columns read (the FeatureEngineer's required columns).
        features: Engineered column name to its function of the raw columns.
        blocks: (output slice, block) per ColumnTransformer entry.
        width: Number of preprocessed features.
        model: Preprocessed features to probabilities.
        probes: Raw column to values worth checking (categories, thresholds, dates).
    """

    input_columns: tuple[str, ...]
    features: dict[str, Callable]
    blocks: tuple
    width: int
    model: Callable[[np.ndarray], np.ndarray]
    probes: dict[str, list] = field(default_factory=dict)

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores ``frame`` (the raw input columns, as the pipeline takes them).

        Raises:
            FastPathUnsupported: A column is missing or holds a type or value the pipeline
                would treat differently from the fast path (score with the pipeline).
        """
        return self.model(self.preprocess(frame))

    def preprocess(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's input matrix for ``frame``: what the pipeline's steps before it give."""
        if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
            raise FastPathUnsupported("not a non-empty DataFrame")
        if not frame.columns.is_unique:
            raise FastPathUnsupported("duplicate column names")
        try:
            columns = {name: frame[name].to_numpy() for name in self.input_columns}
        except KeyError as exc:
            raise FastPathUnsupported(f"missing column {exc}") from None
        features = {name: make(columns) for name, make in self.features.items()}
        X = np.empty((len(frame), self.width), dtype=np.float64)
        for where, block in self.blocks:
            X[:, where] = block.compute([features[c] for c in block.columns])
        return X


def _unknown(step) -> str:
    return f"unsupported step {type(step).__name__}"


def _build(pipeline) -> RowScorer | str:
    """The unverified scorer of ``pipeline``, or why there is none."""
    if type(pipeline) is not Pipeline or len(pipeline.steps) != 3:
        return f"not a 3-step Pipeline: {type(pipeline).__name__}"
    engineer, preprocess, model = (step for _, step in pipeline.steps)
    compiled = compile_features(engineer)
    if compiled is None:
        return _unknown(engineer)
    required, producers = compiled
    if type(preprocess) is not ColumnTransformer or getattr(preprocess, "sparse_output_", True):
        return _unknown(preprocess)
    blocks, width = [], 0
    for name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or len(columns) == 0:
            continue
        block = compile_block(transformer, columns)
        where = preprocess.output_indices_[name]
        if block is None or any(c not in producers for c in block.columns):
            return f"unsupported transformer {name!r}"
        if where.stop - where.start != block.width:
            return f"transformer {name!r} has {where.stop - where.start} outputs"
        blocks.append((where, block))
        width = max(width, where.stop)
    if sum(block.width for _, block in blocks) != width:
        return "the transformers' outputs do not tile the feature matrix"
    predict = compile_model(model, width)
    if predict is None:
        return _unknown(model)
    needed = {c for _, block in blocks for c in block.columns}
    features = {name: make for name, make in producers.items() if name in needed}
    probes = _probes(engineer, blocks, predict)
    return RowScorer(tuple(required), features, tuple(blocks), width, predict, probes)


def _probes(engineer, blocks, predict) -> dict[str, list]:
    """Raw values per column that exercise each compiled step's edges."""
    probes: dict[str, list] = {}

    def add(column, values):
        probes.setdefault(column, []).extend(values)

    for column, period in engineer._cyclical_items():
        add(column, [0, -1, 1, period - 1, period, period + 1, period / 2, period - 0.5, 1e15])
    for column in engineer.frequency:
        add(column, list(engineer.frequency_maps_[column]))
    for column in engineer.days_since:
        reference = engineer.reference_date_
        add(column, [*DATE_PROBES, *([reference, reference[:10]] if reference else [])])
    for where, block in blocks:
        for column, values in block.probes.items():
            add(column, values)
        if not isinstance(predict, TreeEnsemble):
            continue
        for j, column in enumerate(block.columns):
            if column in engineer.passthrough:  # the tree sees the raw value (or its fill)
                for threshold in predict.thresholds(where.start + j):
                    add(column, [threshold, *np.nextafter(threshold, [-np.inf, np.inf])])
    return probes


def compile_row_scorer(
    pipeline,
    sample: pd.DataFrame,
    reference: Callable[[pd.DataFrame], np.ndarray] | None = None,
    label: str = "model",
) -> RowScorer | None:
    """The verified fast path of a fitted churn pipeline, or None.

    Args:
        pipeline: The fitted Pipeline from ``build_pipeline``.
        sample: Real model-input rows in the dtypes the server passes (e.g. the model's input
            example); the verification rows are derived from them.
        reference: What the fast path must reproduce, rows to positive-class probabilities;
            ``pipeline.predict_proba(rows)[:, 1]`` by default.
        label: Names the model in log messages.

    Returns:
        The scorer, when the pipeline is made only of steps it rebuilds and it matched
        ``reference`` on every verification row; None otherwise (the reason is logged).
    """
    try:
        scorer = _build(pipeline)
    except Exception:  # noqa: BLE001 - an odd fitted state means no fast path, never a failure
        logger.exception("%s: no fast path: compiling the pipeline failed", label)
        return None
    if isinstance(scorer, str):
        logger.info("%s: no fast path: %s", label, scorer)
        return None
    if reference is None:

        def reference(rows):
            return pipeline.predict_proba(rows)[:, 1]

    try:
        rows = verification_rows(sample, scorer.probes)
        problem = same_features(scorer.preprocess, pipeline[:-1].transform, rows) or verify(
            scorer, reference, rows, len(sample)
        )
    except Exception as exc:  # noqa: BLE001 - unverifiable means unused
        problem = f"verification failed: {type(exc).__name__}: {exc}"
    if problem:
        logger.warning("%s: fast path off: %s", label, problem)
        return None
    logger.info("%s: fast path on (%d rows verified)", label, len(rows))
    return scorer


def row_scorer_for_model(model, label: str = "model") -> RowScorer | None:
    """The verified fast path of a loaded MLflow pyfunc model of a churn pipeline, or None.

    Verified against the pyfunc's own ``predict`` (schema enforcement included) on its stored
    input example, turned into the frame the server builds (:func:`frame.to_frame`), and the
    rows derived from it. Any other kind of model gets None without a word.
    """
    try:
        pipeline = model.get_raw_model()
    except Exception:  # noqa: BLE001 - not an MLflow model with a raw model inside
        return None
    if type(pipeline) is not Pipeline:
        return None
    try:
        sample = _example_frame(model)
    except Exception as exc:  # noqa: BLE001 - no sample means no verification: no fast path
        logger.info("%s: no fast path: no input example to verify it on (%s)", label, exc)
        return None

    def reference(rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(churn_scores(model.predict(rows), len(rows)))

    return compile_row_scorer(pipeline, sample, reference, label)


def _example_frame(model) -> pd.DataFrame:
    """The model's input example as the frame the server builds for the same rows."""
    example, signature = model.input_example, model.metadata.signature
    if not isinstance(example, pd.DataFrame) or example.empty or signature is None:
        raise ValueError("none stored")
    records = example.astype(object).where(example.notna(), None)
    values = {str(c): records[c].tolist() for c in records.columns}
    return to_frame(Table(tuple(values), values, len(example)), signature)
