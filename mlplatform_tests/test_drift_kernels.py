"""The drift check's numba counting kernels give exactly the counts of the numpy references."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import DriftConfig, generate_batch
from mlplatform.datasets.validation import coerce_frame
from mlplatform.monitoring import counting, kernels
from mlplatform.monitoring.counting import as_float, bin_counts, category_counts, column_counts
from mlplatform.monitoring.drift import feature_psi
from mlplatform.monitoring.reference import build_profile

BLOCK = kernels.BLOCK


@pytest.fixture(autouse=True, scope="module")
def kernels_for_every_size():
    """Small test columns take the kernels too (numpy counts them below KERNEL_MIN_ROWS)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(counting, "KERNEL_MIN_ROWS", 0)
        yield


_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_edges = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=0, max_size=12
).map(lambda e: np.unique(np.asarray(e, dtype=np.float64)))


def _reference_counts(values: np.ndarray, edges: np.ndarray) -> list[int]:
    compare = bin_counts(values, edges, "compare").tolist()
    assert compare == bin_counts(values, edges, "searchsorted").tolist()
    return compare


@given(hnp.arrays(np.float64, st.integers(0, 300), elements=_floats), _edges)
@example(np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan]), np.array([-0.0, 1.0]))
def test_float_kernel_counts_like_numpy(values, edges):
    # Edges drawn from the values too: x == edge belongs to the bucket starting at the edge.
    finite = np.unique(values[np.isfinite(values)])[:5]
    edges = np.unique(np.concatenate([edges, finite]))
    assert bin_counts(values, edges, "kernel").tolist() == _reference_counts(values, edges)


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17])
def test_float_kernel_counts_across_block_boundaries(size):
    rng = np.random.default_rng(size)
    values = rng.normal(size=size)
    values[rng.random(size) < 0.05] = np.nan
    edges = np.quantile(rng.normal(size=1_000), np.arange(1, 10) / 10)
    counts = bin_counts(values, edges, "kernel")
    assert counts.tolist() == _reference_counts(values, edges)
    assert counts.sum() == size


def test_float_kernel_reads_strided_and_read_only_arrays():
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(2 * BLOCK + 5, 3))
    column = matrix[:, 1]  # a strided view, as a column of a C-ordered block
    column.setflags(write=False)
    edges = np.array([-1.0, 0.0, 0.5])
    assert not column.flags.c_contiguous and not column.flags.writeable
    assert bin_counts(column, edges, "kernel").tolist() == _reference_counts(column.copy(), edges)


_int_values = st.lists(
    st.one_of(st.none(), st.integers(-20, 20), st.integers(-(2**63), 2**63 - 1)), max_size=200
)
_small_edges = st.one_of(
    st.integers(-40, 40).map(lambda n: n / 2),  # on and between the integers
    st.floats(-1e3, 1e3, allow_nan=False),
)
# Beyond 2**53 neighbouring integers share a float: such edges take the float path.
_huge_edges = st.integers(-(2**63), 2**63).map(float)
_int_edges = st.one_of(
    st.lists(_small_edges, max_size=10), st.lists(st.one_of(_small_edges, _huge_edges), max_size=6)
).map(lambda e: np.unique(np.asarray(e, dtype=np.float64)))
_nullable = st.sampled_from(["Int64", "Int64", "Int32", "Int8", "UInt16", "Float64", "int64"])


@given(_int_values, _int_edges, _nullable)
@example([2**53 + 3, 5, None], np.array([2.5, 2.0**53 + 4]), "Int64")  # 2**53 + 3 rounds up
@example([2**63 - 1, 2**63 - 600, -(2**63), None], np.array([-(2.0**63), 2.0**63]), "Int64")
def test_nullable_columns_count_like_their_float_values(values, edges, dtype):
    info = np.iinfo(dtype.lower()) if dtype.lower().startswith(("int", "uint")) else None
    if info is not None:
        values = [v if v is None else min(max(v, info.min), info.max) for v in values]
    if dtype == "int64":  # numpy's, no missing values
        values = [v for v in values if v is not None]
    column = pd.Series(values, dtype=dtype)
    expected = _reference_counts(as_float(column), edges)
    assert column_counts(column, edges).tolist() == expected


@pytest.mark.parametrize("size", [0, 7, BLOCK + 3])
def test_category_codes_are_counted_with_missing_first(size):
    rng = np.random.default_rng(size)
    for categories in (3, 100, 300):  # int8 and int16 codes
        codes = rng.integers(-1, categories, size).astype(np.int16 if categories > 127 else np.int8)
        counts = kernels.code_counts(codes, categories)
        assert counts.tolist() == np.bincount(codes + 1, minlength=categories + 1).tolist()


def test_out_of_range_category_code_raises_instead_of_writing_past_the_counts():
    with pytest.raises(IndexError, match="category code out of range"):
        kernels.code_counts(np.array([0, 1, 5], dtype=np.int8), 3)
    with pytest.raises(IndexError):
        kernels.code_counts(np.array([-2], dtype=np.int8), 3)


def test_category_dtype_counts_like_object_values():
    rng = np.random.default_rng(2)
    values = pd.Series(rng.choice(np.array(["a", "b", "c", "new", None], dtype=object), 5_000))
    categories = ("a", "b", "c")
    as_category = values.astype("category")
    assert (
        category_counts(as_category, categories).tolist()
        == category_counts(values, categories).tolist()
    )


def test_int64_columns_are_counted_without_a_float_copy(monkeypatch):
    calls = []
    integer_kernel = kernels.masked_integers_above
    monkeypatch.setattr(
        kernels, "masked_integers_above", lambda *args: calls.append(args) or integer_kernel(*args)
    )
    column = pd.Series([1, None, 3, 7], dtype="Int64")
    assert column_counts(column, np.array([2.5, 7.0])).tolist() == [1, 1, 1, 1]
    assert len(calls) == 1 and calls[0][0].dtype == np.int64


def test_drift_report_is_the_same_from_kernels_and_from_numpy():
    spec = load_spec("synthetic_churn")
    reference = coerce_frame(generate_batch(date(2026, 1, 1), 6_000, seed=1), spec)[0]
    batch = generate_batch(date(2026, 1, 2), 3_000, seed=2, drift=DriftConfig(spend_multiplier=1.5))
    batch.loc[:49, ["tenure_months", "region"]] = None
    batch = coerce_frame(batch, spec)[0]
    numeric = ["tenure_months", "monthly_spend", "support_tickets", "last_login_hour"]
    categorical = ["contract_type", "region", "payment_method"]
    with_kernels = build_profile(reference, numeric, categorical)
    report = feature_psi(with_kernels, batch)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(counting, "KERNEL_MIN_ROWS", len(reference) + 1)
        assert build_profile(reference, numeric, categorical) == with_kernels
        assert feature_psi(with_kernels, batch) == report
    assert report.features["monthly_spend"].status == "drift"


def test_warm_compiles_every_kernel_for_the_validated_dtypes():
    kernels.warm()
    compiled = {
        name: getattr(kernels, name).signatures
        for name in ("float_at_least", "integers_above", "masked_integers_above", "code_counts")
    }
    assert all(compiled.values()), compiled


def test_unknown_counting_method_is_refused():
    with pytest.raises(ValueError, match="unknown counting method 'bisect'"):
        bin_counts(np.zeros(3), np.array([0.5]), "bisect")
