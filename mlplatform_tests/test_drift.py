"""PSI drift monitoring: the estimator, the cached profile and the alert decision."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import DriftConfig, FaultConfig, generate_batch
from mlplatform.datasets.validation import coerce_frame
from mlplatform.monitoring import drift as drift_module
from mlplatform.monitoring.counting import bin_counts, category_counts
from mlplatform.monitoring.drift import (
    expected_psi_no_drift,
    feature_psi,
    psi,
)
from mlplatform.monitoring.reference import (
    MISSING_LABEL,
    NAN_LABEL,
    UNSEEN_LABEL,
    ReferenceProfile,
    build_profile,
    build_profile_for_spec,
)

NUMERIC = ["tenure_months", "monthly_spend", "support_tickets", "last_login_hour"]
CATEGORICAL = ["contract_type", "region", "payment_method", "is_enterprise"]
DAY = date(2026, 1, 1)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_batch(DAY, 20_000, seed=1)


@pytest.fixture(scope="module")
def profile(reference) -> ReferenceProfile:
    return build_profile(reference, NUMERIC, CATEGORICAL)


def _batch(rows: int = 5_000, day: int = 2, **drift) -> pd.DataFrame:
    return generate_batch(date(2026, 1, day), rows, seed=1, drift=DriftConfig(**drift))


def test_same_frame_gives_exactly_zero(reference, profile):
    report = feature_psi(profile, reference)
    assert [f.psi for f in report.features.values()] == [0.0] * len(NUMERIC + CATEGORICAL)
    assert report.rows == profile.rows == len(reference)


def test_hand_computed_two_and_three_bins():
    two = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi([0.5, 0.5], [0.8, 0.2]) == pytest.approx(two, abs=1e-12)
    three = (-0.1) * math.log(0.1 / 0.2) + 0.0 + 0.1 * math.log(0.6 / 0.5)
    assert psi([0.2, 0.3, 0.5], [0.1, 0.3, 0.6]) == pytest.approx(three, abs=1e-12)


def test_empty_bucket_is_smoothed_not_infinite():
    # Clipped at 1e-4 and renormalised: [1e-4, 1] / (1 + 1e-4) against [0.5, 0.5].
    r = np.array([1e-4, 1.0]) / (1 + 1e-4)
    expected = float(np.sum((0.5 - r) * np.log(0.5 / r)))
    assert psi([0.0, 1.0], [0.5, 0.5]) == pytest.approx(expected, rel=1e-12)


_props = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12).filter(lambda v: sum(v) > 0)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_psi_is_symmetric_and_non_negative(data):
    a = data.draw(_props)
    b = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(a), max_size=len(a)))
    a, b = np.array(a) / sum(a), np.array(b) / max(sum(b), 1e-12)
    assert psi(a, b) == pytest.approx(psi(b, a), rel=1e-9, abs=1e-12)
    assert psi(a, b) >= -1e-12


def test_unseen_categories_count_as_drift(profile):
    region = feature_psi(profile, _batch(unseen_region_fraction=0.3)).features["region"]
    assert region.status == "drift"
    label, ref, cur = region.top_bins[0]
    assert (label, ref) == (UNSEEN_LABEL, 0.0)
    assert cur == pytest.approx(0.3, abs=0.03)


def test_missing_values_get_their_own_bucket(profile):
    batch = generate_batch(date(2026, 1, 2), 5_000, seed=1, faults=FaultConfig(null_fraction=0.2))
    features = feature_psi(profile, batch).features
    spend, contract = features["monthly_spend"], features["contract_type"]
    assert spend.labels[-1] == NAN_LABEL and spend.reference[-1] == 0.0
    assert spend.current[-1] == pytest.approx(0.2, abs=1e-9)
    assert spend.top_bins[0][0] == NAN_LABEL and spend.status == "drift"
    assert contract.top_bins[0][0] == MISSING_LABEL
    assert contract.current[contract.labels.index(UNSEEN_LABEL)] == 0.0


def test_shifted_spend_drifts_and_unshifted_batch_is_ok(profile):
    shifted = feature_psi(profile, _batch(spend_multiplier=1.5))
    assert shifted.features["monthly_spend"].status == "drift"
    assert shifted.max_feature == "monthly_spend"
    clean = feature_psi(profile, _batch())
    assert {f.status for f in clean.features.values()} == {"ok"}
    # No drift: every PSI is of the order of the sampling-noise expectation.
    assert all(f.psi < 4 * f.expected_psi_no_drift for f in clean.features.values())


def test_thresholds_are_configurable(profile):
    report = feature_psi(profile, _batch(spend_multiplier=1.5), watch=5.0, drift=10.0)
    assert report.features["monthly_spend"].status == "ok"


def test_expected_psi_without_drift_matches_simulation():
    rng = np.random.default_rng(7)
    p = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.03, 0.02])
    for n_ref, n_cur in [(5_000, 1_000), (50_000, 2_000), (2_000, 2_000)]:
        ref = rng.multinomial(n_ref, p, size=2_000) / n_ref
        cur = rng.multinomial(n_cur, p, size=2_000) / n_cur
        simulated = np.mean([psi(r, c) for r, c in zip(ref, cur, strict=True)])
        formula = expected_psi_no_drift(p, n_ref, n_cur)
        assert formula == pytest.approx((len(p) - 1) * (1 / n_ref + 1 / n_cur))
        assert simulated == pytest.approx(formula, rel=0.2)


def test_expected_psi_holds_for_quantile_bins_fitted_on_the_reference():
    # The edges are themselves estimated from the reference sample, as in production.
    rng = np.random.default_rng(11)
    values = []
    for _ in range(300):
        ref = pd.DataFrame({"x": rng.normal(size=4_000)})
        cur = pd.DataFrame({"x": rng.normal(size=1_000)})
        values.append(feature_psi(build_profile(ref, ["x"], []), cur).features["x"].psi)
    formula = expected_psi_no_drift([0.1] * 10, 4_000, 1_000)
    assert np.mean(values) == pytest.approx(formula, rel=0.2)


def test_profile_round_trips_through_json(profile):
    restored = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert restored == profile
    batch = _batch(spend_multiplier=1.2)
    assert feature_psi(restored, batch) == feature_psi(profile, batch)


def test_discrete_columns_get_deduplicated_edges(profile):
    tickets = profile.numeric["support_tickets"]
    assert len(tickets.edges) < 9 and list(tickets.edges) == sorted(set(tickets.edges))
    assert sum(tickets.proportions) == pytest.approx(1.0)


def test_binning_methods_agree_on_ties_nan_and_infinities():
    rng = np.random.default_rng(3)
    values = rng.integers(-5, 6, 10_000).astype(float)
    values[rng.random(values.size) < 0.05] = np.nan
    values[:3] = [np.inf, -np.inf, 5.0]
    edges = np.array([-3.0, 0.0, 0.5, 5.0])
    compare = bin_counts(values, edges, "compare")
    assert np.array_equal(compare, bin_counts(values, edges, "searchsorted"))
    # pd.cut's [5, inf) excludes inf itself; the profile's top bucket is open, so inf belongs.
    cut = pd.cut(np.where(values == np.inf, 1e300, values), [-np.inf, *edges, np.inf], right=False)
    naive = pd.Series(cut).value_counts(dropna=False, sort=False)
    assert compare.tolist() == [*naive.iloc[:-1].tolist(), int(np.isnan(values).sum())]


def test_validated_dtypes_give_the_same_profile_and_psi(reference, profile):
    # Validation stores integers as nullable Int64 and categories as category dtype; the sensor
    # reads those frames, training may see either: PSI must not depend on the storage dtype.
    spec = load_spec("synthetic_churn")
    batch = _batch(unseen_region_fraction=0.3, spend_multiplier=1.2)
    batch.loc[:99, ["tenure_months", "region"]] = None  # NaN in an integer column, a missing region
    typed, violations = coerce_frame(batch, spec)
    assert not violations
    assert typed["tenure_months"].dtype == "Int64" and typed["region"].dtype == "category"
    assert feature_psi(profile, typed) == feature_psi(profile, batch)
    assert build_profile(coerce_frame(reference, spec)[0], NUMERIC, CATEGORICAL) == profile


def test_threads_give_the_same_report(profile, monkeypatch):
    monkeypatch.setattr(drift_module, "PARALLEL_MIN_ROWS", 0)
    batch = _batch(unseen_region_fraction=0.1, spend_multiplier=1.3)
    serial = feature_psi(profile, batch, workers=1)
    assert feature_psi(profile, batch, workers=3) == serial == feature_psi(profile, batch)
    assert list(serial.features) == NUMERIC + CATEGORICAL


def test_category_codes_count_like_values():
    # Unused and unseen dtype categories, another order than the profile's, missing values.
    values = pd.Series(["b", None, "z", "a", "b", None, "y"], dtype=object)
    as_category = values.astype(pd.CategoricalDtype(["z", "b", "unused", "a", "y"]))
    expected = [1, 2, 2, 2]  # a, b, unseen (y, z), missing
    assert category_counts(values, ("a", "b")).tolist() == expected
    assert category_counts(as_category, ("a", "b")).tolist() == expected
    # Unused dtype categories do not shift the counts of the used ones.
    many = as_category.cat.add_categories([f"x{i}" for i in range(40)])
    assert category_counts(many, ("a", "b")).tolist() == expected


def test_tiny_sample_does_not_fire(profile):
    fires, reason = feature_psi(profile, _batch(rows=120, unseen_region_fraction=0.5)).fires()
    assert not fires
    assert reason == "sample of 120 rows is below the minimum 500: PSI too noisy to act on"


def test_reason_names_the_max_feature(profile):
    fires, reason = feature_psi(profile, _batch(spend_multiplier=1.5)).fires()
    assert fires and "on monthly_spend (watch from 0.1, drift from 0.2)" in reason
    fires, reason = feature_psi(profile, _batch()).fires()
    assert not fires and reason.startswith("max PSI ")


def test_report_renders_and_serialises(profile):
    report = feature_psi(profile, _batch(spend_multiplier=1.5))
    table = report.to_markdown()
    assert table.splitlines()[4].startswith("| monthly_spend | numeric |")
    out = json.loads(json.dumps(report.to_dict()))
    assert out["max_feature"] == "monthly_spend" and len(out["features"]) == 8


def test_missing_feature_column_is_named(profile, reference):
    with pytest.raises(ValueError, match="region"):
        feature_psi(profile, reference.drop(columns="region"))


def test_profile_for_spec_uses_model_inputs(reference):
    spec = load_spec("synthetic_churn")
    spec_profile = build_profile_for_spec(reference, spec)
    assert set(spec_profile.numeric) == set(spec.features.numeric)
    assert spec_profile.categorical["is_enterprise"].categories == (False, True)
