"""Content hashes of frames (mlplatform.datasets.versioning): the data versions."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplatform.datasets.synthetic import generate_batch
from mlplatform.datasets.versioning import frame_digest

ROWS = 600


@pytest.fixture(scope="module")
def clean_batch():
    return generate_batch(date(2026, 1, 1), ROWS)


@pytest.fixture
def clean(clean_batch):
    return clean_batch.copy()


def test_digest_is_stable_for_equal_frames(clean_batch):
    regenerated = generate_batch(date(2026, 1, 1), ROWS)
    assert frame_digest(clean_batch) == frame_digest(regenerated) == frame_digest(clean_batch)
    assert len(frame_digest(clean_batch)) == 16
    assert len(frame_digest(clean_batch, length=40)) == 40


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("monthly_spend", 70.01),
        ("tenure_months", 999),
        ("contract_type", "annual-x"),
        ("is_enterprise", None),
        ("customer_id", "C-other"),
    ],
)
def test_digest_changes_when_one_value_changes(clean, column, value):
    before = frame_digest(clean)
    if value is None:
        value = not clean.loc[42, column]
    clean.loc[42, column] = value
    assert frame_digest(clean) != before


@given(offset=st.integers(-(10**6), 10**6), step=st.integers(1, 50))
@settings(max_examples=25, deadline=None)
def test_digest_ignores_the_index(clean_batch, offset, step):
    relabelled = clean_batch.set_axis(np.arange(ROWS) * step + offset)
    assert frame_digest(relabelled) == frame_digest(clean_batch)


def test_digest_depends_on_row_order_dtypes_and_column_names(clean_batch):
    digest = frame_digest(clean_batch)
    assert frame_digest(clean_batch.iloc[::-1]) != digest
    assert frame_digest(clean_batch.astype({"tenure_months": "float64"})) != digest
    assert frame_digest(clean_batch.rename(columns={"region": "zone"})) != digest
