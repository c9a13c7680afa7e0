"""The single preprocessing + model scikit-learn Pipeline, built from a data-set spec.

The pipeline takes raw validated rows (the spec's input columns) and does all feature work
itself, so the artefact that is served can never diverge from its preprocessing, and rolling back
a model rolls back its preprocessing with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlplatform.datasets.spec import DatasetSpec
from mlplatform.features.sets import spec_feature_engineer

ESTIMATORS = ("gradient_boosting", "logistic_regression")


@dataclass(frozen=True)
class TrainingParams:
    """Hyperparameters of the pipeline.

    Attributes:
        estimator: One of ESTIMATORS.
        seed: Random seed for the estimator.
        learning_rate: Gradient boosting step size.
        max_iter: Boosting rounds, or solver iterations for logistic regression.
        max_depth: Tree depth limit (None = unlimited, leaves bound the size).
        l2_regularization: Gradient boosting L2 penalty.
        c: Inverse regularisation strength for logistic regression.
    """

    estimator: str = "gradient_boosting"
    seed: int = 42
    learning_rate: float = 0.05
    max_iter: int = 300
    max_depth: int | None = 4
    l2_regularization: float = 1.0
    c: float = 1.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Flat parameters for logging."""
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**out, **self.extra}


def model_input(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The raw columns the pipeline reads, in types that survive a JSON round trip.

    Types follow the spec, not the data, so the signature is the same for every batch:
    non-nullable integers are int64 (JSON integers pass MLflow's schema check), nullable
    integers and floats are float64, non-nullable booleans bool (nullable ones float64),
    categories strings, dates ISO "YYYY-MM-DD" strings.

    Args:
        frame: Validated rows (extra columns are dropped).
        spec: The data-set spec.

    Returns:
        A new frame with exactly ``spec.features.input_columns``.
    """
    out = {}
    for name in spec.features.input_columns:
        column = spec.columns[name]
        values = frame[name]
        if column.type in ("integer", "float"):
            numeric = pd.to_numeric(values, errors="coerce").astype("float64")
            exact_int = column.type == "integer" and not column.nullable
            out[name] = numeric.astype("int64") if exact_int else numeric
        elif column.type == "boolean":
            as_float = values.map({True: 1.0, False: 0.0}).astype("float64")
            out[name] = as_float if column.nullable else as_float.astype(bool)
        elif column.type == "date":
            out[name] = pd.to_datetime(values, errors="coerce").dt.strftime("%Y-%m-%d")
        else:
            out[name] = values.astype(object).where(values.notna(), None)
    return pd.DataFrame(out, index=frame.index)


def labels(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """The label column as a 0/1 integer array."""
    return frame[spec.label_column].astype(bool).astype(int).to_numpy()


def as_float(values):
    """Casts booleans (and 0/1 numbers) to float so the imputer accepts them."""
    return np.asarray(values, dtype="float64")


def _estimator(params: TrainingParams):
    if params.estimator == "gradient_boosting":
        return HistGradientBoostingClassifier(
            learning_rate=params.learning_rate,
            max_iter=params.max_iter,
            max_depth=params.max_depth,
            l2_regularization=params.l2_regularization,
            early_stopping=False,
            random_state=params.seed,
        )
    if params.estimator == "logistic_regression":
        return LogisticRegression(C=params.c, max_iter=max(params.max_iter, 1000))
    raise ValueError(f"estimator '{params.estimator}' is not one of {', '.join(ESTIMATORS)}")


def build_pipeline(spec: DatasetSpec, params: TrainingParams) -> Pipeline:
    """The unfitted pipeline: feature engineering, preprocessing, estimator.

    Args:
        spec: Names the numeric, categorical, boolean and derived features.
        params: Estimator choice and hyperparameters.

    Returns:
        An sklearn Pipeline with steps "features", "preprocess" and "model".
    """
    feats = spec.features
    derived = (
        [f"{c}_{part}" for c in feats.cyclical for part in ("sin", "cos")]
        + [f"{c}_freq" for c in feats.frequency]
        + [f"{c}_days_since" for c in feats.days_since]
    )
    numeric = [*feats.numeric, *derived]
    numeric_steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if params.estimator == "logistic_regression":
        numeric_steps.append(("scale", StandardScaler()))
    transformers = [("numeric", Pipeline(numeric_steps), numeric)]
    if feats.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(feats.categorical)))
    if feats.boolean:
        boolean = Pipeline(
            [
                ("as_float", FunctionTransformer(as_float, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ]
        )
        transformers.append(("boolean", boolean, list(feats.boolean)))
    engineer = spec_feature_engineer(spec, passthrough=True)
    return Pipeline(
        [
            ("features", engineer),
            ("preprocess", ColumnTransformer(transformers, remainder="drop")),
            ("model", _estimator(params)),
        ]
    )


def train_pipeline(frame: pd.DataFrame, spec: DatasetSpec, params: TrainingParams) -> Pipeline:
    """Fits the pipeline on validated training rows.

    Args:
        frame: Validated training rows including the label column.
        spec: The data-set spec.
        params: Hyperparameters.

    Returns:
        The fitted pipeline.

    Raises:
        ValueError: The training rows contain a single class.
    """
    y = labels(frame, spec)
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"training rows for '{spec.name}' contain only label {y[0] if len(y) else '-'}; "
            "need both classes"
        )
    pipeline = build_pipeline(spec, params)
    pipeline.fit(model_input(frame, spec), y)
    return pipeline


def churn_scores(pipeline: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """Positive-class probabilities for rows already in model-input form."""
    return pipeline.predict_proba(frame)[:, 1]
