"""The synthetic generator and the Telco loader (the specs they follow: ``test_specs.py``)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplatform.datasets.loading import SourceError, load_dataset, resolve_source_path
from mlplatform.datasets.spec import SpecError, load_spec
from mlplatform.datasets.synthetic import (
    CONTRACT_TYPES,
    REGIONS,
    UNKNOWN_CONTRACT,
    UNSEEN_REGION,
    DriftConfig,
    FaultConfig,
    generate_batch,
    generate_days,
    true_churn_logit,
)
from mlplatform.datasets.telco import RENAMES, load_telco_csv
from mlplatform.datasets.validation import enforce_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
TELCO_CSV = Path(__file__).resolve().parents[2] / "shared/data/telco_customer_churn.csv"
DAY = date(2026, 1, 1)


# --- synthetic generator --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_spec():
    return load_spec("synthetic_churn")


@pytest.fixture(scope="module")
def big_batch():
    return generate_batch(DAY, 20_000)


def test_batch_has_requested_rows_spec_columns_and_unique_ids(synthetic_spec):
    batch = generate_batch(DAY, 300)
    assert len(batch) == 300
    assert list(batch.columns) == list(synthetic_spec.required_columns)
    assert batch["customer_id"].is_unique


@given(seed=st.integers(0, 2**32), offset=st.integers(0, 3650))
@settings(max_examples=20, deadline=None)
def test_batch_is_reproducible_for_the_same_seed_and_day(seed, offset):
    day = DAY + timedelta(days=offset)
    batch = generate_batch(day, 50, seed)
    pd.testing.assert_frame_equal(batch, generate_batch(day, 50, seed))
    next_day = generate_batch(day + timedelta(days=1), 50, seed)
    assert not np.array_equal(batch["monthly_spend"], next_day["monthly_spend"])


def test_a_days_batch_is_the_same_alone_or_within_generate_days():
    days = generate_days(DAY, 5, 40, seed=7)
    assert len(days) == 200
    for offset in range(5):
        alone = generate_batch(DAY + timedelta(days=offset), 40, seed=7)
        within = days.iloc[offset * 40 : (offset + 1) * 40].reset_index(drop=True)
        pd.testing.assert_frame_equal(within, alone)


def test_values_respect_the_spec_ranges_and_domains(big_batch, synthetic_spec):
    assert big_batch["tenure_months"].min() >= 0
    assert big_batch["last_login_hour"].between(0, 23).all()
    assert set(big_batch["contract_type"]) == set(CONTRACT_TYPES)
    assert set(big_batch["region"]) <= set(REGIONS)
    assert 0.1 < big_batch["churned"].mean() < 0.5
    enforce_spec(big_batch, synthetic_spec, "synthetic")


def test_monthly_contracts_churn_more_than_multi_year(big_batch):
    rates = big_batch.groupby("contract_type")["churned"].mean()
    assert rates["monthly"] > rates["annual"] > rates["multi-year"]
    assert rates["monthly"] - rates["multi-year"] > 0.2


def test_true_churn_logit_lowers_with_a_longer_contract(big_batch):
    monthly = big_batch.assign(contract_type="monthly")
    annual = big_batch.assign(contract_type="annual")
    assert (true_churn_logit(annual) < true_churn_logit(monthly)).all()
    shifted = true_churn_logit(big_batch, label_shift=1.5) - true_churn_logit(big_batch)
    np.testing.assert_allclose(shifted, 1.5)


@pytest.mark.parametrize(
    ("drift", "column", "low", "high"),
    [
        (DriftConfig(spend_multiplier=1.5), "monthly_spend", 1.4, 1.6),
        (DriftConfig(label_shift=1.0), "churned", 1.15, 2.0),
    ],
    ids=["spend_multiplier", "label_shift"],
)
def test_drift_knob_raises_the_mean_it_targets(big_batch, drift, column, low, high):
    drifted = generate_batch(DAY, 20_000, drift=drift)
    assert low < drifted[column].mean() / big_batch[column].mean() < high


def test_unseen_region_fraction_yields_that_share_of_arctic_rows():
    drifted = generate_batch(DAY, 20_000, drift=DriftConfig(unseen_region_fraction=0.1))
    assert 0.08 < (drifted["region"] == UNSEEN_REGION).mean() < 0.12
    assert set(drifted["region"]) == {*REGIONS, UNSEEN_REGION}


FAULTS = {  # knob -> (config, the only columns it may change, check on changed rows)
    "null": (
        FaultConfig(null_fraction=0.05),
        {"monthly_spend", "contract_type"},
        lambda bad, _: bad[["monthly_spend", "contract_type"]].isna().all().all(),
    ),
    "out_of_range": (
        FaultConfig(out_of_range_fraction=0.05),
        {"tenure_months"},
        lambda bad, _: (bad["tenure_months"] < 0).all(),
    ),
    "unknown_category": (
        FaultConfig(unknown_category_fraction=0.05),
        {"contract_type"},
        lambda bad, _: (bad["contract_type"] == UNKNOWN_CONTRACT).all(),
    ),
    "duplicate_id": (
        FaultConfig(duplicate_id_fraction=0.05),
        {"customer_id"},
        lambda bad, all_rows: (bad["customer_id"] == all_rows["customer_id"][0]).all(),
    ),
}


@pytest.mark.parametrize(("faults", "columns", "check"), FAULTS.values(), ids=FAULTS)
def test_each_fault_knob_produces_exactly_its_fault(faults, columns, check):
    clean, faulty = generate_batch(DAY, 400), generate_batch(DAY, 400, faults=faults)
    changed = ~((clean == faulty) | (clean.isna() & faulty.isna()))
    assert set(changed.columns[changed.any()]) == columns
    rows = changed.any(axis=1)
    # 5% of 400 rows; 19 when row 0 itself is picked to receive row 0's id
    assert rows.sum() in (19, 20)
    assert check(faulty.loc[rows], faulty)


def test_duplicate_id_fault_always_creates_a_duplicate():
    for offset in range(10):  # offsets 0 and 8 pick row 0 as the only duplicate
        day = DAY + timedelta(days=offset)
        batch = generate_batch(day, 10, faults=FaultConfig(duplicate_id_fraction=0.1))
        assert not batch["customer_id"].is_unique, f"day offset {offset}"


def test_load_dataset_synthetic_uses_the_spec_source(synthetic_spec):
    frame, source = load_dataset(synthetic_spec, REPO_ROOT)
    assert len(frame) == 60 * 1000
    assert source == "synthetic://seed=42/start=2026-01-01/days=60/rows_per_day=1000"


def test_load_dataset_unknown_source_kind_raises_spec_error(synthetic_spec):
    spec = dataclasses.replace(synthetic_spec, source={"kind": "parquet"})
    with pytest.raises(SpecError, match="unknown source kind 'parquet'"):
        load_dataset(spec, REPO_ROOT)


# --- Telco ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def telco_spec():
    return load_spec("telco")


@pytest.fixture(scope="module")
def telco(telco_spec):
    if not TELCO_CSV.exists():
        pytest.skip(f"{TELCO_CSV} is not present beside the repository")
    return load_dataset(telco_spec, REPO_ROOT)


def test_telco_rows_blank_total_charges_contracts_and_churn_label(telco):
    frame, source = telco
    assert Path(source) == TELCO_CSV  # the spec's relative path, from the repo root
    assert len(frame) == 7043
    assert frame["total_spend"].isna().sum() == 11
    assert (frame.loc[frame["total_spend"].isna(), "tenure_months"] == 0).all()
    assert frame["contract_type"].value_counts().to_dict() == {
        "monthly": 3875,
        "multi-year": 1695,
        "annual": 1473,
    }
    assert frame["churned"].dtype == bool
    assert frame["churned"].mean() == pytest.approx(0.265, abs=0.002)


def test_telco_passes_its_spec(telco, telco_spec):
    frame, source = telco
    typed, report = enforce_spec(frame, telco_spec, source)
    assert report.ok
    assert not report.warnings
    assert typed["total_spend"].isna().sum() == 11


@pytest.mark.parametrize("dropped", ["Contract", "TotalCharges", "Churn"])
def test_telco_csv_missing_a_column_names_file_and_column(dropped, tmp_path):
    row = {column: "1" for column in RENAMES if column != dropped}
    path = tmp_path / "telco_small.csv"
    pd.DataFrame([row, row]).to_csv(path, index=False)
    with pytest.raises(SourceError) as info:
        load_telco_csv(path)
    assert str(path) in str(info.value)
    assert dropped in str(info.value)


@pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
def test_unreadable_telco_csv_raises_source_error_naming_the_file(content, tmp_path):
    path = tmp_path / "telco.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SourceError, match=str(path)):
        load_telco_csv(path)


@pytest.mark.parametrize(
    ("spec_path", "override", "expected"),
    [
        ("data/x.csv", None, "ROOT/data/x.csv"),
        ("../shared/x.csv", None, "PARENT/shared/x.csv"),
        ("/abs/x.csv", None, "/abs/x.csv"),
        ("data/x.csv", "/other/y.csv", "/other/y.csv"),
        ("data/x.csv", "conf/y.csv", "ROOT/conf/y.csv"),
        ("data/x.csv", "", "ROOT/data/x.csv"),
        (None, "conf/y.csv", "ROOT/conf/y.csv"),
    ],
)
def test_resolve_source_path(telco_spec, tmp_path, spec_path, override, expected):
    root = tmp_path / "repo"
    spec = dataclasses.replace(telco_spec, source={"kind": "telco_csv", "path": spec_path})
    resolved = resolve_source_path(spec, root, override)
    expected = expected.replace("ROOT", str(root)).replace("PARENT", str(tmp_path))
    assert resolved == Path(expected)
    assert resolved.is_absolute()


def test_resolve_source_path_without_any_path_raises_spec_error(telco_spec):
    spec = dataclasses.replace(telco_spec, source={"kind": "telco_csv"})
    with pytest.raises(SpecError, match="'telco'"):
        resolve_source_path(spec, REPO_ROOT, None)
