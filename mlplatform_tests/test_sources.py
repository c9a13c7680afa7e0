"""Tests for reading sources: broken-file errors and daily partitions of every source shape."""

from __future__ import annotations

import dataclasses
import gzip
import io
from datetime import date, timedelta

import pandas as pd
import pytest

from mlplatform.datasets.csv_source import read_source_csv
from mlplatform.datasets.loading import SourceError, load_dataset, load_partition
from mlplatform.datasets.spec import SpecError, load_spec
from mlplatform.datasets.synthetic import DriftConfig, generate_batch, generate_days
from mlplatform_tests.conftest import REPO_ROOT, TELCO_CSV, write_spec

START = date(2026, 1, 1)
DAY = date(2026, 1, 2)


def _csv_spec(tmp_path, path, **source):
    """The synthetic spec read from a plain CSV (time column ``snapshot_date``)."""
    return load_spec(str(write_spec(tmp_path, kind="csv", path=str(path), **source)))


def _drop(content: bytes, columns: list[str]) -> bytes:
    frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)
    return frame.drop(columns=columns).to_csv(index=False).encode()


def _non_utf8(content: bytes) -> tuple[bytes, list[str]]:
    lines = content.split(b"\n")
    lines[2] = b"\xe9" + lines[2]
    offset = len(b"\n".join(lines[:2])) + 1
    return b"\n".join(lines), ["not valid UTF-8", "byte 0xe9", f"byte offset {offset}", "line 3"]


def _ragged(content: bytes) -> tuple[bytes, list[str]]:
    lines = content.split(b"\n")
    lines[3] += b",surplus"
    return b"\n".join(lines), ["malformed CSV", "line 4 has", "fields where the header has"]


def _unclosed_quote(content: bytes) -> tuple[bytes, list[str]]:
    line = content.count(b"\n") + 1
    return content + b'x,"never closed\n', [f"line {line} opens a quoted field that is never"]


# Each case turns a good file (and the columns to drop) into (bytes or None, expected fragments).
CASES = {
    "missing_file": lambda c, cols: (None, ["no such file"]),
    "empty_file": lambda c, cols: (b"", ["the file is empty (0 bytes)"]),
    "header_only": lambda c, cols: (c.split(b"\n")[0] + b"\n", ["header but no data rows"]),
    "blank_lines_only": lambda c, cols: (b"\n\n\n", ["no CSV header"]),
    "ragged_row": lambda c, cols: _ragged(c),
    "unclosed_quote": lambda c, cols: _unclosed_quote(c),
    "semicolon_delimiter": lambda c, cols: (
        c.replace(b",", b";"),
        ["parsed into a single column", "seems to use ';' (semicolon) as delimiter"],
    ),
    "tab_delimiter": lambda c, cols: (
        c.replace(b",", b"\t"),
        ["parsed into a single column", "seems to use '\\t' (tab) as delimiter"],
    ),
    "latin1_bytes": lambda c, cols: _non_utf8(c),
    "utf16_text": lambda c, cols: (
        c.decode().encode("utf-16"),
        ["not valid UTF-8", "UTF-16 byte-order mark", "byte offset 0"],
    ),
    "binary_garbage": lambda c, cols: (bytes(range(256)) * 8, ["not a CSV file", "NUL byte"]),
    "xlsx_workbook": lambda c, cols: (b"PK\x03\x04" + b"\x14" * 64, ["ZIP archive"]),
    "missing_columns": lambda c, cols: (
        _drop(c, cols),
        ["missing required column(s) ", *cols, "; the file has: "],
    ),
}


@pytest.fixture(params=["csv", "telco_csv"])
def good_source(request, tmp_path):
    """(spec builder, content of a good file, columns to drop) for each file-backed loader."""
    if request.param == "csv":
        content = generate_batch(START, 12, seed=7).to_csv(index=False).encode()
        return (lambda path: _csv_spec(tmp_path, path)), content, ["region", "churned"]
    if not TELCO_CSV.exists():
        pytest.skip(f"{TELCO_CSV} is not present beside the repository")
    telco = load_spec("telco")
    content = b"\n".join(TELCO_CSV.read_bytes().split(b"\n")[:13]) + b"\n"

    def build(path):
        return dataclasses.replace(telco, source={"kind": "telco_csv", "path": str(path)})

    return build, content, ["Contract", "Churn"]


@pytest.mark.parametrize("via", ["load_dataset", "load_partition"])
@pytest.mark.parametrize("case", list(CASES))
def test_broken_file_raises_source_error_naming_file_and_problem(good_source, case, via, tmp_path):
    build_spec, content, dropped = good_source
    data, expected = CASES[case](content, dropped)
    path = tmp_path / "data" / "batch.csv"
    path.parent.mkdir()
    if data is not None:
        path.write_bytes(data)
    spec = build_spec(path)
    with pytest.raises(SourceError) as info:
        if via == "load_dataset":
            load_dataset(spec, REPO_ROOT)
        else:
            load_partition(spec, REPO_ROOT, None, DAY)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in expected:
        assert fragment in message
    if via == "load_partition":
        assert f"partition {DAY}" in message


def test_a_header_without_a_recognised_delimiter_reports_missing_columns(tmp_path):
    path = tmp_path / "one_column.csv"
    path.write_text("everything\n1\n")
    with pytest.raises(SourceError, match="missing required column.*the file has: everything"):
        read_source_csv(path, ["a", "b"])


def test_compressed_csv_still_reads_by_its_suffix(tmp_path):
    path = tmp_path / "batch.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert read_source_csv(path, ["a", "b"]).to_dict("list") == {"a": [1], "b": [2]}


# --- Synthetic partitions --------------------------------------------------------------------


def test_synthetic_partition_is_the_days_batch_and_deterministic():
    spec = load_spec("synthetic_churn")
    rows, seed = spec.source.get("rows_per_day", 200), spec.source.get("seed", 42)
    frame, source = load_partition(spec, REPO_ROOT, None, date(2026, 1, 5))
    again, _ = load_partition(spec, REPO_ROOT, None, date(2026, 1, 5))
    pd.testing.assert_frame_equal(frame, generate_batch(date(2026, 1, 5), rows, seed))
    pd.testing.assert_frame_equal(frame, again)
    assert source == f"synthetic://seed={seed}/day=2026-01-05/rows={rows}"


def test_synthetic_partition_defaults_to_200_rows_and_seed_42():
    spec = load_spec("synthetic_churn")
    spec = dataclasses.replace(spec, source={"kind": "synthetic"})
    frame, source = load_partition(spec, REPO_ROOT, None, DAY)
    pd.testing.assert_frame_equal(frame, generate_batch(DAY, 200, 42))
    assert source == f"synthetic://seed=42/day={DAY}/rows=200"


def test_synthetic_partition_uses_rows_and_seed_from_the_spec(tmp_path):
    spec = load_spec(str(write_spec(tmp_path, rows_per_day=30, seed=9)))
    frame, source = load_partition(spec, REPO_ROOT, None, DAY)
    pd.testing.assert_frame_equal(frame, generate_batch(DAY, 30, 9))
    assert source == f"synthetic://seed=9/day={DAY}/rows=30"


def test_simulated_drift_shifts_a_synthetic_day_and_says_so_in_its_source(tmp_path):
    spec = load_spec(str(write_spec(tmp_path, rows_per_day=300, seed=9)))
    drift = DriftConfig(spend_multiplier=1.5)
    frame, source = load_partition(spec, REPO_ROOT, None, DAY, drift)
    pd.testing.assert_frame_equal(frame, generate_batch(DAY, 300, 9, drift=drift))
    assert source == f"synthetic://seed=9/day={DAY}/rows=300?simulated_drift=spend_multiplier=1.5"


def test_simulated_drift_on_a_file_source_is_refused(tmp_path, dated_csv):
    spec = _csv_spec(tmp_path, dated_csv)
    with pytest.raises(SpecError, match="simulated drift applies only to synthetic sources"):
        load_partition(spec, REPO_ROOT, None, DAY, DriftConfig(spend_multiplier=2.0))


def test_synthetic_partition_without_rows_is_an_error(tmp_path):
    spec = load_spec(str(write_spec(tmp_path, rows_per_day=0)))
    with pytest.raises(SourceError, match=f"partition {DAY} has no rows"):
        load_partition(spec, REPO_ROOT, None, DAY)


def test_unknown_source_kind_is_a_spec_error():
    spec = dataclasses.replace(load_spec("synthetic_churn"), source={"kind": "parquet"})
    with pytest.raises(SpecError, match="unknown source kind 'parquet'"):
        load_partition(spec, REPO_ROOT, None, DAY)


# --- A single file with a time column --------------------------------------------------------


@pytest.fixture
def dated_csv(tmp_path):
    path = tmp_path / "history.csv"
    generate_days(START, 3, 20, seed=5).to_csv(path, index=False)
    return path


def test_dated_single_file_partition_holds_only_that_days_rows(dated_csv, tmp_path):
    frame, source = load_partition(_csv_spec(tmp_path, dated_csv), REPO_ROOT, None, DAY)
    assert len(frame) == 20
    assert (pd.to_datetime(frame["snapshot_date"]).dt.date == DAY).all()
    assert frame["customer_id"].tolist() == generate_batch(DAY, 20, 5)["customer_id"].tolist()
    # The index is each row's data-row number in the file: day 2 holds rows 20 to 39.
    assert list(frame.index) == list(range(20, 40))
    assert source == f"{dated_csv}?snapshot_date={DAY}"


def test_dated_single_file_reads_mixed_date_formats_by_the_date_as_written(tmp_path):
    frame = generate_batch(START, 6, seed=1)
    frame["snapshot_date"] = [
        "2026-01-02",
        "2026-01-02 23:59:59",
        "2026-01-02T23:30:00+05:00",  # the 1st in UTC, but written as the 2nd
        "2026/01/02",
        "2 Jan 2026",
        "2026-01-03T00:10:00Z",
    ]
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    part, _ = load_partition(_csv_spec(tmp_path, path), REPO_ROOT, None, DAY)
    assert part["customer_id"].tolist() == frame["customer_id"].iloc[:5].tolist()


def test_unparsable_time_values_name_rows_and_values(dated_csv, tmp_path):
    frame = pd.read_csv(dated_csv)
    frame.loc[3, "snapshot_date"] = "not-a-date"
    frame.loc[41, "snapshot_date"] = None
    frame.to_csv(dated_csv, index=False)
    with pytest.raises(SourceError) as info:
        load_partition(_csv_spec(tmp_path, dated_csv), REPO_ROOT, None, DAY)
    message = str(info.value)
    assert message.startswith(f"{dated_csv}: column 'snapshot_date' has 2 value(s)")
    assert "3: 'not-a-date'" in message and "41: <missing>" in message


def test_a_day_outside_a_dated_file_names_the_day_and_the_range_covered(dated_csv, tmp_path):
    with pytest.raises(SourceError) as info:
        load_partition(_csv_spec(tmp_path, dated_csv), REPO_ROOT, None, date(2026, 2, 1))
    message = str(info.value)
    assert str(dated_csv) in message and "partition 2026-02-01" in message
    assert "covers 2026-01-01 to 2026-01-03 (3 distinct day(s))" in message


# --- One file per day ------------------------------------------------------------------------


@pytest.fixture
def daily_files(tmp_path):
    folder = tmp_path / "daily"
    folder.mkdir()
    for offset in range(3):
        day = START + timedelta(days=offset)
        generate_batch(day, 10 + offset, seed=3).to_csv(folder / f"churn_{day}.csv", index=False)
    # Not a day's file: must be ignored when the whole data set is loaded.
    generate_batch(START, 4, seed=3).to_csv(folder / "churn_latest.csv", index=False)
    return folder / "churn_{date}.csv"


def test_date_template_partition_reads_that_days_file(daily_files, tmp_path):
    frame, source = load_partition(_csv_spec(tmp_path, daily_files), REPO_ROOT, None, DAY)
    assert len(frame) == 11
    assert source == str(daily_files).replace("{date}", DAY.isoformat())


def test_date_template_missing_day_names_expected_file_and_partition(daily_files, tmp_path):
    with pytest.raises(SourceError) as info:
        load_partition(_csv_spec(tmp_path, daily_files), REPO_ROOT, None, date(2026, 1, 9))
    message = str(info.value)
    expected = str(daily_files).replace("{date}", "2026-01-09")
    assert message.startswith(f"{expected}: no such file for partition 2026-01-09")


def test_date_template_through_a_path_override(daily_files, tmp_path):
    spec = _csv_spec(tmp_path, tmp_path / "elsewhere.csv")
    frame, _ = load_partition(spec, REPO_ROOT, str(daily_files), START)
    assert len(frame) == 10


def test_load_dataset_with_a_date_template_stacks_every_day(daily_files, tmp_path):
    frame, source = load_dataset(_csv_spec(tmp_path, daily_files), REPO_ROOT)
    assert len(frame) == 10 + 11 + 12
    assert source == str(daily_files)
    assert pd.to_datetime(frame["snapshot_date"]).is_monotonic_increasing


def test_load_dataset_with_a_template_matching_nothing(tmp_path):
    template = tmp_path / "none_{date}.csv"
    with pytest.raises(SourceError, match="no file matches this template"):
        load_dataset(_csv_spec(tmp_path, template), REPO_ROOT)


# --- A full snapshot (no time column) --------------------------------------------------------


@pytest.mark.skipif(not TELCO_CSV.exists(), reason="the Telco CSV is not beside the repository")
def test_telco_snapshot_gives_every_row_for_any_day():
    spec = load_spec("telco")
    first, source = load_partition(spec, REPO_ROOT, None, date(2026, 1, 5))
    later, _ = load_partition(spec, REPO_ROOT, None, date(2026, 3, 1))
    assert len(first) == 7043
    pd.testing.assert_frame_equal(first, later)
    assert source == f"{TELCO_CSV}?snapshot=2026-01-05"


def test_plain_csv_without_time_column_is_a_snapshot(dated_csv, tmp_path):
    spec = dataclasses.replace(_csv_spec(tmp_path, dated_csv), time_column=None)
    frame, source = load_partition(spec, REPO_ROOT, None, date(2030, 1, 1))
    assert len(frame) == 60
    assert source.endswith("?snapshot=2030-01-01")
