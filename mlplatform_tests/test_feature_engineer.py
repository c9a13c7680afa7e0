"""FeatureEngineer: fit/transform, learnt state, pickling, and use inside sklearn pipelines."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlplatform.features.engineer import FeatureEngineer


@pytest.fixture
def train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "hour": [0, 6, 12, 24, None],
            "city": ["a", "b", "a", None, "a"],
            "signup": ["2026-01-01", "2026-01-21", None, "2026-01-31", "bad"],
            "last_seen": ["2026-01-10", "2026-01-15", "2026-01-16", None, None],
            "amount": [1.5, 2.0, 3.0, 4.0, 5.0],
            "segment": ["x", "y", "x", "y", "x"],
        },
        index=[10, 11, 12, 13, 14],
    )


@pytest.fixture
def later() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "hour": [18, 3],
            "city": ["zzz", "b"],
            "signup": ["2026-03-02", "2026-01-30"],
            "last_seen": [None, "2026-02-01"],
            "amount": [7.0, 8.0],
            "segment": ["y", "x"],
            "extra": [1, 2],
        },
        index=["p", "q"],
    )


def make_engineer() -> FeatureEngineer:
    return FeatureEngineer(
        cyclical={"hour": 24},
        frequency=["city"],
        days_since=("signup", "last_seen"),
        passthrough=["amount", "segment"],
    )


EXPECTED_NAMES = [
    "amount",
    "segment",
    "hour_sin",
    "hour_cos",
    "city_freq",
    "signup_days_since",
    "last_seen_days_since",
]


def test_engineer_fit_transform_shapes_and_names(train):
    engineer = make_engineer()
    out = engineer.fit_transform(train)
    assert list(out.columns) == EXPECTED_NAMES
    assert list(engineer.get_feature_names_out()) == EXPECTED_NAMES
    assert out.shape == (len(train), len(EXPECTED_NAMES))
    assert out.index.equals(train.index)
    pd.testing.assert_frame_equal(out[["amount", "segment"]], train[["amount", "segment"]])
    assert out["city_freq"].tolist() == [0.6, 0.2, 0.6, 0.2, 0.6]
    assert out["hour_sin"].iloc[0] == pytest.approx(out["hour_sin"].iloc[3])
    assert np.isnan(out["hour_sin"].iloc[4])
    assert engineer.n_features_in_ == train.shape[1]
    assert list(engineer.feature_names_in_) == list(train.columns)


def test_engineer_does_not_modify_input(train):
    before = train.copy()
    make_engineer().fit_transform(train)
    pd.testing.assert_frame_equal(train, before)


def test_engineer_reference_date_learnt_and_kept(train, later):
    engineer = make_engineer().fit(train)
    assert pd.Timestamp(engineer.reference_date_) == pd.Timestamp("2026-01-31")

    out = engineer.transform(later)
    assert pd.Timestamp(engineer.reference_date_) == pd.Timestamp("2026-01-31")
    assert out["signup_days_since"].tolist() == pytest.approx([-30.0, 1.0])
    assert np.isnan(out["last_seen_days_since"].iloc[0])
    assert out["last_seen_days_since"].iloc[1] == pytest.approx(-1.0)
    assert out["city_freq"].tolist() == [0.0, 0.2]
    assert list(out.columns) == EXPECTED_NAMES
    assert out.index.equals(later.index)


def test_engineer_reference_date_none_without_dates():
    frame = pd.DataFrame({"d": [None, "garbage"], "n": [1.0, 2.0]})
    engineer = FeatureEngineer(days_since=["d"]).fit(frame)
    assert engineer.reference_date_ is None
    out = engineer.transform(frame)
    assert list(out.columns) == ["d_days_since"]
    assert out["d_days_since"].isna().all()

    assert FeatureEngineer(passthrough=["n"]).fit(frame).reference_date_ is None


def test_engineer_reference_date_tz_aware_training_data():
    frame = pd.DataFrame({"d": pd.to_datetime(["2026-01-01T05:00"]).tz_localize("Asia/Tokyo")})
    engineer = FeatureEngineer(days_since=["d"]).fit(frame)
    assert pd.Timestamp(engineer.reference_date_) == pd.Timestamp("2025-12-31T20:00")
    assert engineer.transform(frame)["d_days_since"].iloc[0] == pytest.approx(0.0)


def test_engineer_pickle_round_trip(train, later):
    engineer = make_engineer().fit(train)
    restored = pickle.loads(pickle.dumps(engineer))
    pd.testing.assert_frame_equal(restored.transform(later), engineer.transform(later))
    pd.testing.assert_frame_equal(restored.transform(train), engineer.transform(train))
    assert restored.get_params() == engineer.get_params()


def test_engineer_params_stored_unchanged():
    cyclical = {"hour": 24}
    engineer = FeatureEngineer(cyclical=cyclical, frequency=("c",))
    assert engineer.get_params() == {
        "cyclical": cyclical,
        "frequency": ("c",),
        "days_since": (),
        "passthrough": (),
    }
    assert engineer.cyclical is cyclical


def test_engineer_in_pipeline_with_column_transformer(train, later):
    pipeline = Pipeline(
        [
            ("fe", make_engineer()),
            (
                "ct",
                ColumnTransformer(
                    [
                        (
                            "num",
                            SimpleImputer(strategy="median"),
                            [
                                "amount",
                                "hour_sin",
                                "hour_cos",
                                "city_freq",
                                "signup_days_since",
                            ],
                        ),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["segment"]),
                    ]
                ),
            ),
        ]
    )
    fitted = pipeline.fit_transform(train)
    assert fitted.shape == (len(train), 7)
    assert not np.isnan(fitted).any()
    assert pipeline.transform(later).shape == (len(later), 7)
    assert list(pipeline.get_feature_names_out()) == [
        "num__amount",
        "num__hour_sin",
        "num__hour_cos",
        "num__city_freq",
        "num__signup_days_since",
        "cat__segment_x",
        "cat__segment_y",
    ]

    restored = pickle.loads(pickle.dumps(pipeline))
    np.testing.assert_array_equal(restored.transform(later), pipeline.transform(later))


def test_engineer_in_pipeline_with_model(train, later):
    model = Pipeline(
        [
            ("fe", make_engineer()),
            (
                "ct",
                ColumnTransformer(
                    [("num", SimpleImputer(), ["hour_sin", "hour_cos", "city_freq"])],
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    )
    model.fit(train, [0, 1, 0, 1, 0])
    assert model.predict(later).shape == (2,)


@pytest.mark.parametrize("missing", ["hour", "city", "signup", "amount"])
def test_engineer_missing_column_raises_value_error(train, missing):
    engineer = make_engineer()
    with pytest.raises(ValueError, match=f"'{missing}'"):
        engineer.fit(train.drop(columns=[missing]))

    engineer.fit(train)
    with pytest.raises(ValueError, match=f"missing column.*'{missing}'"):
        engineer.transform(train.drop(columns=[missing]))


def test_engineer_transform_before_fit_raises(train):
    with pytest.raises(NotFittedError):
        make_engineer().transform(train)


def test_engineer_rejects_non_dataframe(train):
    with pytest.raises(TypeError, match="DataFrame"):
        make_engineer().fit(train.to_numpy())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cyclical": {"hour": 0}}, ValueError),
        ({"cyclical": {"hour": 24}, "passthrough": ["hour", "hour_sin"]}, ValueError),
        ({"frequency": "city"}, TypeError),
        ({"cyclical": {"city": 24}}, TypeError),
    ],
)
def test_engineer_bad_configuration_raises_on_fit(train, kwargs, error):
    frame = train.assign(hour_sin=0.0)
    with pytest.raises(error):
        FeatureEngineer(**kwargs).fit(frame)


def test_engineer_empty_configuration(train):
    out = FeatureEngineer().fit_transform(train)
    assert out.shape == (len(train), 0)
    assert out.index.equals(train.index)
