"""Hostile data files at the loader: refused quickly and in bounded memory, or read exactly.

The data-stage half of the file corpus (a broken day re-delivered: nothing materialises, the
last good version stays) runs in ``test_bad_input.py``; this module covers what needs the loader
itself: files too large to parse (1 GiB on disk, compression bombs), the size limit's setting,
and inputs that are not errors but must not be misread (mixed line endings, formula cells).
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import date

import pandas as pd
import pytest

from mlplatform.datasets.csv_source import DEFAULT_MAX_FILE_BYTES
from mlplatform.datasets.loading import SourceError, load_partition
from mlplatform.datasets.spec import SpecError, load_spec
from mlplatform.datasets.validation import validate_frame
from mlplatform_tests.bad_deliveries import good_frame
from mlplatform_tests.bad_inputs import corpus_names
from mlplatform_tests.bad_inputs.file_cases import FORMULAS, GIB, LOADER_CASES, _one_gigabyte
from mlplatform_tests.conftest import REPO_ROOT, write_spec

pytestmark = pytest.mark.bad_input

DAY = date(2026, 3, 2)
# Refusing a file must not read it: far below what parsing even 1% of a gigabyte would take.
MAX_SECONDS = 5.0
MAX_TRACED_BYTES = 32 * 2**20


def _spec(tmp_path, path, **source):
    """The synthetic spec reading one CSV file of dated rows (all of DAY here)."""
    return load_spec(str(write_spec(tmp_path, kind="csv", path=str(path), **source)))


def _refused(spec, path) -> tuple[str, float, int]:
    """Loads the day expecting a SourceError; returns its message, seconds and traced peak."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(SourceError) as caught:
            load_partition(spec, REPO_ROOT, None, DAY)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert f"(partition {DAY})" in message
    return message, seconds, peak


def test_a_one_gigabyte_file_is_refused_without_being_read(tmp_path):
    path = tmp_path / "day.csv"
    _one_gigabyte(good_frame(str(DAY)), path)
    assert path.stat().st_size == GIB

    message, seconds, peak = _refused(_spec(tmp_path, path), path)

    assert f"the file is {GIB} bytes (1024.0 MiB)" in message
    assert f"over the limit of {DEFAULT_MAX_FILE_BYTES} bytes (256.0 MiB)" in message
    assert "raise source.max_file_bytes" in message
    assert seconds < MAX_SECONDS and peak < MAX_TRACED_BYTES, (seconds, peak)


@pytest.mark.parametrize("case", LOADER_CASES.values(), ids=LOADER_CASES.keys())
def test_a_file_too_large_once_decompressed_or_corrupt_is_refused_in_bounded_memory(tmp_path, case):
    path = tmp_path / case.name
    case.write(path, good_frame(str(DAY)).to_csv(index=False))

    message, seconds, peak = _refused(_spec(tmp_path, path, **case.source), path)

    for fragment in case.says:
        assert fragment in message, message
    # The bomb is streamed through in 1 MiB chunks and never parsed.
    assert seconds < 4 * MAX_SECONDS and peak < MAX_TRACED_BYTES, (seconds, peak)


def test_raising_the_limit_in_the_spec_reads_the_same_file(tmp_path):
    path = tmp_path / "day.csv"
    LOADER_CASES["file_over_a_configured_limit"].write(
        path, good_frame(str(DAY)).to_csv(index=False)
    )
    frame, source = load_partition(
        _spec(tmp_path, path, max_file_bytes=4 * 2**20), REPO_ROOT, None, DAY
    )
    assert source == f"{path}?snapshot_date={DAY}" and len(frame) > 1000


@pytest.mark.parametrize("limit", [0, -1, "1GB", 1.5, True], ids=repr)
def test_a_bad_size_limit_in_the_spec_is_a_spec_error_naming_the_setting(tmp_path, limit):
    path = tmp_path / "day.csv"
    good_frame(str(DAY)).to_csv(path, index=False)
    with pytest.raises(SpecError, match=r"source\.max_file_bytes must be a positive whole"):
        load_partition(_spec(tmp_path, path, max_file_bytes=limit), REPO_ROOT, None, DAY)


@pytest.mark.parametrize(
    "endings", [["\r\n"], ["\r"], ["\n", "\r\n", "\r"]], ids=["crlf", "cr", "mixed"]
)
def test_line_endings_crlf_cr_or_mixed_read_exactly_like_lf(tmp_path, endings):
    good = good_frame(str(DAY))
    lines = good.to_csv(index=False).splitlines()
    reference, other = tmp_path / "lf.csv", tmp_path / "other.csv"
    reference.write_text("\n".join(lines) + "\n")
    other.write_bytes(
        "".join(line + endings[i % len(endings)] for i, line in enumerate(lines)).encode()
    )
    expected, _ = load_partition(_spec(tmp_path, reference), REPO_ROOT, None, DAY)
    spec = _spec(tmp_path, other)

    frame, _ = load_partition(spec, REPO_ROOT, None, DAY)

    pd.testing.assert_frame_equal(frame, expected)
    _, report = validate_frame(frame, spec, str(other))
    assert report.ok, report.summary()


def test_formula_cells_stay_inert_text_and_are_flagged_where_the_domain_excludes_them(tmp_path):
    """The platform never evaluates a cell, and keeps the text as delivered (no stripping, so
    nothing is lost); a formula fails the blocking category check of a strict domain and is
    reported as an unseen category in an open one. Free-text ids keep it as their value."""
    frame = good_frame(str(DAY)).astype(object)
    frame.loc[3, "customer_id"] = FORMULAS[0]
    frame.loc[17, "region"] = FORMULAS[1]
    frame.loc[42, "contract_type"] = FORMULAS[0]
    path = tmp_path / "day.csv"
    frame.to_csv(path, index=False)
    spec = _spec(tmp_path, path)

    loaded, _ = load_partition(spec, REPO_ROOT, None, DAY)
    typed, report = validate_frame(loaded, spec, str(path))

    assert loaded.loc[3, "customer_id"] == typed.loc[3, "customer_id"] == FORMULAS[0]
    assert loaded.loc[17, "region"] == FORMULAS[1]
    (error,) = report.errors
    assert (error.column, error.rule, error.rows, error.values) == (
        "contract_type",
        "domain",
        (42,),
        (FORMULAS[0],),
    )
    (warning,) = report.warnings
    assert (warning.column, warning.rows, warning.values) == ("region", (17,), (FORMULAS[1],))


def test_the_corpus_holds_at_least_30_distinct_named_hostile_inputs():
    names = corpus_names()
    assert set(names) == {"http", "file", "cli"} and all(names.values())
    every = [(kind, name) for kind, cases in names.items() for name in cases]
    assert len(every) == len(set(every)) >= 30, len(every)
    # The ids say what each input is: words joined by underscores, not numbers.
    assert all(len(name.split("_")) >= 2 and name.islower() for _, name in every)
