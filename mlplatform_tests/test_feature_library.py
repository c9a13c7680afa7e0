"""Tests for mlplatform.features.library."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.features.library import (
    MISSING_CATEGORY,
    apply_frequencies,
    compute_days_since_reference,
    cyclical_encode,
    fit_frequencies,
    frequency_encode,
)

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
small_optional_strings = st.lists(
    st.one_of(st.none(), st.text(alphabet="abc", max_size=2)), min_size=1, max_size=50
)


# --- cyclical_encode ---------------------------------------------------------------------------


def test_cyclical_hour_0_and_24_are_equal():
    out = cyclical_encode(pd.Series([0, 24, 48, -24], name="hour"), period=24)
    for row in range(1, 4):
        np.testing.assert_allclose(out.iloc[row], out.iloc[0], atol=1e-12)
    np.testing.assert_allclose(out.iloc[0], [0.0, 1.0])


def test_cyclical_tiny_float_error_does_not_break_wraparound():
    out = cyclical_encode(pd.Series([0.0, 24.0 - 1e-13, 24.0 + 1e-13, -1e-20]), period=24)
    for row in range(1, 4):
        assert np.allclose(out.iloc[row], out.iloc[0])


@pytest.mark.parametrize(
    ("value", "period", "expected_sin", "expected_cos"),
    [
        (6, 24, 1.0, 0.0),
        (12, 24, 0.0, -1.0),
        (18, 24, -1.0, 0.0),
        (3.5, 7, 0.0, -1.0),
        (13, 12, math.sin(2 * math.pi / 12), math.cos(2 * math.pi / 12)),
    ],
)
def test_cyclical_known_values(value, period, expected_sin, expected_cos):
    out = cyclical_encode(pd.Series([value], name="x"), period)
    assert out["x_sin"].iloc[0] == pytest.approx(expected_sin, abs=1e-12)
    assert out["x_cos"].iloc[0] == pytest.approx(expected_cos, abs=1e-12)


@given(
    values=st.lists(finite_floats, min_size=1, max_size=30),
    period=st.floats(min_value=1e-6, max_value=1e6, allow_nan=False),
)
def test_cyclical_values_in_unit_range_and_on_circle(values, period):
    out = cyclical_encode(pd.Series(values, name="x"), period)
    assert not out.isna().any().any()
    assert ((out >= -1.0) & (out <= 1.0)).all().all()
    np.testing.assert_allclose(out["x_sin"] ** 2 + out["x_cos"] ** 2, 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("hour", ["hour_sin", "hour_cos"]), (None, ["value_sin", "value_cos"])],
)
def test_cyclical_column_names(name, expected):
    out = cyclical_encode(pd.Series([1.0, 2.0], name=name), 24)
    assert list(out.columns) == expected
    assert (out.dtypes == "float64").all()


@pytest.mark.parametrize("dtype", ["float64", "Int64", "Float64"])
def test_cyclical_missing_stays_nan(dtype):
    series = pd.Series([1, None, 3], name="h", dtype=dtype)
    out = cyclical_encode(series, 24)
    assert out.iloc[1].isna().all()
    assert out.drop(index=1).notna().all().all()


def test_cyclical_preserves_index():
    index = pd.Index(["b", "a", "a"], name="id")
    out = cyclical_encode(pd.Series([1, 2, 3], index=index, name="h"), 24)
    assert out.index.equals(index)


@pytest.mark.parametrize("period", [0, -1, -24.0, math.inf, -math.inf, math.nan])
def test_cyclical_bad_period_raises_value_error(period):
    with pytest.raises(ValueError, match="period") as excinfo:
        cyclical_encode(pd.Series([1.0], name="hour"), period)
    assert repr(period) in str(excinfo.value)


@pytest.mark.parametrize(
    "series",
    [
        pd.Series(["1", "2"], name="hour"),
        pd.Series([True, False], name="hour"),
        pd.Series(pd.to_datetime(["2026-01-01"]), name="hour"),
        pd.Series(["a", "b"], name="hour", dtype="category"),
    ],
)
def test_cyclical_non_numeric_raises_type_error_naming_column(series):
    with pytest.raises(TypeError, match="'hour'"):
        cyclical_encode(series, 24)


# --- frequency encoding ------------------------------------------------------------------------


def test_frequency_fractions():
    series = pd.Series(["a", "b", "a", "c"], name="city", index=[10, 11, 12, 13])
    out = frequency_encode(series)
    assert out.name == "city_freq"
    assert out.dtype == "float64"
    assert out.index.equals(series.index)
    assert out.tolist() == [0.5, 0.25, 0.5, 0.25]


def test_frequency_counts_when_not_normalized():
    out = frequency_encode(pd.Series(["a", "b", "a", None, np.nan]), normalize=False)
    assert out.name == "value_freq"
    assert out.dtype == "float64"
    assert out.tolist() == [2.0, 1.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize("dtype", [object, "category", "string"])
def test_frequency_missing_is_its_own_category(dtype):
    series = pd.Series(["a", None, "a", None, "b"], dtype=dtype)
    assert frequency_encode(series).tolist() == [0.4, 0.4, 0.4, 0.4, 0.2]
    assert fit_frequencies(series)[MISSING_CATEGORY] == pytest.approx(0.4)


@given(values=small_optional_strings)
def test_frequency_never_nan_and_fractions_sum_to_one(values):
    series = pd.Series(values, name="c")
    out = frequency_encode(series)
    assert not out.isna().any()
    assert ((out > 0) & (out <= 1)).all()
    keys = series.fillna(MISSING_CATEGORY)
    per_category = out.groupby(keys.to_numpy()).first()
    assert per_category.sum() == pytest.approx(1.0)


@given(values=small_optional_strings)
def test_frequency_counts_match_value_counts(values):
    series = pd.Series(values)
    counts = frequency_encode(series, normalize=False)
    assert not counts.isna().any()
    expected = series.fillna(MISSING_CATEGORY).map(series.fillna(MISSING_CATEGORY).value_counts())
    assert counts.tolist() == expected.astype(float).tolist()


def test_frequency_encode_equals_fit_then_apply():
    series = pd.Series(["x", "y", None, "x"], name="k")
    pd.testing.assert_series_equal(
        frequency_encode(series), apply_frequencies(series, fit_frequencies(series))
    )


@pytest.mark.parametrize("unseen", [0.0, -1.0, 0.123])
def test_apply_frequencies_unseen_category(unseen):
    frequencies = fit_frequencies(pd.Series(["a", "a", "b", "c"]))
    out = apply_frequencies(pd.Series(["a", "zzz", None], name="city"), frequencies, unseen)
    assert out.name == "city_freq"
    assert out.tolist() == [0.5, unseen, unseen]


def test_apply_frequencies_missing_seen_in_training():
    frequencies = fit_frequencies(pd.Series(["a", None, None, None]))
    out = apply_frequencies(pd.Series([None, np.nan, "a"]), frequencies, unseen=-1.0)
    assert out.tolist() == [0.75, 0.75, 0.25]


def test_fit_frequencies_returns_plain_floats():
    frequencies = fit_frequencies(pd.Series([1, 1, 2]), normalize=False)
    assert frequencies == {1: 2.0, 2: 1.0}
    assert all(type(v) is float for v in frequencies.values())


def test_frequency_empty_series():
    assert fit_frequencies(pd.Series([], dtype=object)) == {}
    out = frequency_encode(pd.Series([], dtype=object, name="c"))
    assert out.empty
    assert out.dtype == "float64"


# --- compute_days_since_reference --------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "2026-01-31",
        pd.Timestamp("2026-01-31"),
        dt.date(2026, 1, 31),
        dt.datetime(2026, 1, 31),
        np.datetime64("2026-01-31"),
        pd.Timestamp("2026-01-31T01:00", tz="Europe/Paris"),
    ],
)
def test_days_since_known_value_for_reference_types(reference):
    out = compute_days_since_reference(pd.Series(["2026-01-01"], name="signup"), reference)
    assert out.name == "signup_days_since"
    assert out.dtype == "float64"
    assert out.iloc[0] == pytest.approx(30.0)


def test_days_since_datetime_series_and_fractional_days():
    dates = pd.Series(
        pd.to_datetime(["2026-01-01", "2026-01-30T12:00"], format="ISO8601"),
        index=[3, 1],
    )
    out = compute_days_since_reference(dates, "2026-01-31")
    assert out.name == "value_days_since"
    assert out.index.equals(dates.index)
    assert out.tolist() == pytest.approx([30.0, 0.5])


def test_days_since_nan_for_missing_and_unparseable():
    dates = pd.Series(["2026-01-01", None, "not a date", "2026-13-45", np.nan, pd.NaT])
    out = compute_days_since_reference(dates, "2026-01-31")
    assert out.iloc[0] == pytest.approx(30.0)
    assert out.iloc[1:].isna().all()


def test_days_since_negative_for_future_dates():
    out = compute_days_since_reference(pd.Series(["2026-02-10"]), "2026-01-31")
    assert out.iloc[0] == pytest.approx(-10.0)


def test_days_since_mixed_iso_shapes_all_parse():
    dates = pd.Series(["2026-01-01", "2026-01-01T12:00:00", "2026-01-01 06:00"])
    out = compute_days_since_reference(dates, "2026-01-31")
    assert out.tolist() == pytest.approx([30.0, 29.5, 29.75])


@pytest.mark.parametrize(
    ("dates", "reference", "expected"),
    [
        (
            pd.Series(pd.to_datetime(["2026-01-01T00:00"]).tz_localize("UTC")),
            "2026-01-31",
            30.0,
        ),
        (
            pd.Series(pd.to_datetime(["2026-01-01T09:00"]).tz_localize("Asia/Tokyo")),
            "2026-01-31",
            30.0,
        ),
        (
            pd.Series(["2026-01-01T00:00:00+02:00"]),
            pd.Timestamp("2026-01-31"),
            30 + 2 / 24,
        ),
        (
            pd.Series(["2026-01-01"]),
            pd.Timestamp("2026-01-31T06:00", tz="US/Eastern"),
            30.0 + 11 / 24,
        ),
        (
            pd.Series(["2026-01-01T00:00Z", "2026-01-01"]),
            "2026-01-31T00:00+00:00",
            30.0,
        ),
    ],
)
def test_days_since_timezone_aware_inputs(dates, reference, expected):
    out = compute_days_since_reference(dates, reference)
    assert out.notna().all()
    assert out.tolist() == pytest.approx([expected] * len(dates))


@pytest.mark.parametrize("reference", [None, "not a date", pd.NaT, np.nan])
def test_days_since_bad_reference_raises(reference):
    with pytest.raises(ValueError, match="reference"):
        compute_days_since_reference(pd.Series(["2026-01-01"]), reference)


def test_days_since_numeric_dates_raise_type_error():
    with pytest.raises(TypeError, match="'ts'"):
        compute_days_since_reference(pd.Series([1, 2], name="ts"), "2026-01-31")
