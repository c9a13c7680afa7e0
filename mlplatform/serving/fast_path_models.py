"""The fitted model of a churn pipeline rebuilt as plain numpy: gradient-boosted trees walked
for all trees at once, or a logistic regression.

Both compute what the estimator's ``predict_proba(X)[:, 1]`` computes from the preprocessed
features, with the same floating-point operations in the same order; anything else is None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils._array_api import _expit

from mlplatform.serving.fast_path_steps import FastPathUnsupported


@dataclass(frozen=True)
class TreeEnsemble:
    """All trees of a binary HistGradientBoostingClassifier as flat node arrays."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    depth: int
    baseline: float
    loss: object

    def __call__(self, X: np.ndarray) -> np.ndarray:
        rows = np.arange(len(X))[:, None] * X.shape[1]
        flat = X.ravel()
        node = np.broadcast_to(self.roots, (len(X), len(self.roots)))
        for _ in range(self.depth):
            # As _predictor.pyx: NaN follows missing_go_to_left, else X <= threshold goes left.
            data = flat[rows + self.feature[node]]
            go_left = np.where(
                np.isnan(data), self.missing_left[node], data <= self.threshold[node]
            )
            node = np.where(go_left, self.left[node], self.right[node])
        # Baseline first, then tree by tree, left to right: sklearn's summation order
        # (accumulate adds sequentially, unlike sum's pairwise summation).
        terms = np.concatenate([np.full((len(X), 1), 0.0 + self.baseline), self.value[node]], 1)
        raw = np.add.accumulate(terms, axis=1)[:, -1]
        return self.loss.predict_proba(raw.reshape(-1, 1))[:, 1]

    def thresholds(self, feature: int) -> np.ndarray:
        """The distinct split thresholds on one feature (probe values for verification)."""
        splits = (self.feature == feature) & (self.left != np.arange(len(self.left)))
        return np.unique(self.threshold[splits])


def _tree_ensemble(model, width: int) -> TreeEnsemble | None:
    if getattr(model, "_preprocessor", None) is not None or model.n_trees_per_iteration_ != 1:
        return None
    if type(model._loss).__name__ != "HalfBinomialLoss" or len(model.classes_) != 2:
        return None
    if getattr(model, "_in_fit", False) or model.n_features_in_ != width:
        return None
    trees = [tree.nodes for iteration in model._predictors for tree in iteration]
    if not trees or any(t["is_categorical"].any() for t in trees):
        return None
    sizes = np.array([len(t) for t in trees])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    nodes = np.concatenate(trees)
    shift = np.repeat(offsets, sizes)
    own = np.arange(len(nodes))
    leaf = nodes["is_leaf"].astype(bool)
    # Leaves point at themselves, so every walk may take the deepest tree's number of steps.
    return TreeEnsemble(
        feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        left=np.where(leaf, own, nodes["left"].astype(np.intp) + shift),
        right=np.where(leaf, own, nodes["right"].astype(np.intp) + shift),
        value=nodes["value"].astype(np.float64),
        roots=offsets.astype(np.intp),
        depth=int(nodes["depth"].max()),
        baseline=float(np.asarray(model._baseline_prediction).reshape(-1)[0]),
        loss=model._loss,
    )


def _logistic(model, width: int) -> Callable[[np.ndarray], np.ndarray] | None:
    coef = np.asarray(model.coef_, dtype=np.float64)
    if len(model.classes_) != 2 or coef.shape != (1, width):
        return None
    coef_t, intercept = coef.T, np.asarray(model.intercept_, dtype=np.float64)

    def predict(X: np.ndarray) -> np.ndarray:
        if not np.isfinite(X).all():  # LogisticRegression refuses NaN and infinity
            raise FastPathUnsupported("non-finite feature")
        # decision_function and _predict_proba_lr: X @ coef.T + intercept, then expit.
        return _expit((X @ coef_t + intercept).reshape(-1))

    return predict


def compile_model(model, width: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """Positive-class probabilities from the preprocessed features, or None."""
    if type(model) is HistGradientBoostingClassifier:
        return _tree_ensemble(model, width)
    if type(model) is LogisticRegression:
        return _logistic(model, width)
    return None
