"""The one hardened CSV reader every file-backed source shares.

Every way a delivered file can be broken (missing, empty, too large, binary, not UTF-8, malformed,
another delimiter, rows with too few fields, a column named twice, no data rows, missing columns)
becomes a ``SourceError`` that names the file and, where it applies, the line, byte offset or
columns.

Size: pandas holds a whole file in memory, several times its size, so a file over ``max_bytes``
(256 MiB by default; a spec raises it with ``source.max_file_bytes``) is refused with a message
before it is parsed, rather than risking an out-of-memory kill. Plain files are judged by their
size on disk, without reading them; ``.gz``, ``.bz2``, ``.xz`` and ``.zip`` files by the bytes they
decompress to, counted in a streaming pass that stops at the limit (a small archive can expand to
gigabytes). ``.zst`` and ``.tar`` files are judged by their size on disk only.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pandas as pd

# pandas decompresses these by their suffix, so their raw bytes say nothing about the CSV inside.
_COMPRESSED_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst", ".tar"}
_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook is one)",
    b"\x1f\x8b": "gzip-compressed data",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
    b"SQLite format 3\x00": "an SQLite database",
}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_DELIMITERS = {";": "';' (semicolon)", "\t": "'\\t' (tab)", "|": "'|' (pipe)"}
_SNIFF_BYTES = 8192
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
_SCAN_CHUNK = 1024 * 1024
_STREAM_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


class SourceError(ValueError):
    """A source file cannot be read as the data set it claims to be; names the file."""


def _sniff_delimiter(head: bytes) -> str | None:
    """The non-comma delimiter the header line seems to use, described, or None."""
    header = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    counts = {sep: header.count(sep) for sep in _DELIMITERS}
    best = max(counts, key=counts.get)
    return _DELIMITERS[best] if counts[best] and "," not in header else None


def _binary_problem(head: bytes) -> str | None:
    """Why the first bytes of a file cannot be CSV text, or None if they can."""
    if head.startswith(_UTF16_BOMS):
        return (
            f"not valid UTF-8: byte 0x{head[0]:02x} at byte offset 0 (line 1) starts a UTF-16 "
            "byte-order mark; re-save it as UTF-8"
        )
    kind = next((what for magic, what in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None and b"\x00" in head:
        kind = f"binary data (NUL byte at byte offset {head.index(0)})"
    return f"not a CSV file: it looks like {kind}" if kind else None


def _size_problem(size: int, max_bytes: int, what: str = "the file is") -> str:
    return (
        f"{what} {size} bytes ({size / 2**20:.1f} MiB), over the limit of {max_bytes} bytes "
        f"({max_bytes / 2**20:.1f} MiB) for one source file: deliver smaller files (one a day) "
        "or raise source.max_file_bytes in the data-set spec"
    )


@contextmanager
def _raw_bytes(path: Path) -> Iterator[BinaryIO]:
    """A binary stream of the bytes pandas parses: the file's, or what it decompresses to."""
    suffix = path.suffix.lower()
    if suffix in _STREAM_OPENERS:
        with _STREAM_OPENERS[suffix](path, "rb") as stream:
            yield stream
    elif suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if len(names) != 1:
                raise SourceError(f"{path}: the ZIP archive holds {len(names)} files; expected one")
            with archive.open(names[0]) as stream:
                yield stream
    else:
        with path.open("rb") as stream:
            yield stream


def _scan(path: Path, max_bytes: int) -> None:
    """Reads the file (decompressed if need be) in chunks, refusing more than ``max_bytes`` or a
    NUL byte anywhere: the C parser would silently cut the field at a NUL (``5<NUL>8`` reads 5).
    """
    suffix = path.suffix.lower()
    if suffix in _COMPRESSED_SUFFIXES and suffix not in (*_STREAM_OPENERS, ".zip"):
        return  # no streaming reader at hand: judged by the size on disk alone
    decompressed = " of the decompressed data" if suffix in _COMPRESSED_SUFFIXES else ""
    seen = lines = 0
    try:
        with _raw_bytes(path) as stream:
            while chunk := stream.read(_SCAN_CHUNK):
                nul = chunk.find(b"\x00")
                if nul >= 0:
                    offset, line = seen + nul, lines + chunk.count(b"\n", 0, nul) + 1
                    raise SourceError(
                        f"{path}: not CSV text: NUL byte at byte offset {offset} (line {line})"
                        f"{decompressed}"
                    )
                seen += len(chunk)
                lines += chunk.count(b"\n")
                if seen > max_bytes:
                    what = "decompresses to at least" if decompressed else "the file is at least"
                    raise SourceError(f"{path}: {_size_problem(seen, max_bytes, what)}")
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        verb = "cannot decompress" if decompressed else "cannot read"
        raise SourceError(f"{path}: {verb}: {exc}") from exc


def _encoding_problem(path: Path, exc: UnicodeDecodeError) -> str:
    # pandas decodes in chunks, so its offset is chunk-relative; decode the whole file to find
    # the real byte offset and line.
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as whole:
        line = data.count(b"\n", 0, whole.start) + 1
        return (
            f"not valid UTF-8: byte 0x{data[whole.start]:02x} at byte offset {whole.start} "
            f"(line {line}): {whole.reason}; perhaps Latin-1 or Windows-1252, re-save it as UTF-8"
        )
    return f"not valid UTF-8: {exc}"


def _parser_problem(exc: pd.errors.ParserError, head: bytes) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    unclosed = re.search(r"EOF inside string starting at row (\d+)", str(exc))
    if found:
        expected, line, saw = found.groups()
        detail = f"line {line} has {saw} fields where the header has {expected}"
    elif unclosed:
        # The C parser counts rows from 0 with the header as row 0.
        detail = f"line {int(unclosed.group(1)) + 1} opens a quoted field that is never closed"
    else:
        detail = str(exc).replace("Error tokenizing data. C error: ", "")
    delimiter = _sniff_delimiter(head)
    if delimiter:
        detail += f"; the header seems to use {delimiter} as delimiter, not ','"
    return f"malformed CSV: {detail}"


def read_source_csv(
    path: str | Path,
    required: Sequence[str],
    *,
    text: bool = False,
    text_columns: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> pd.DataFrame:
    """Reads a source CSV, turning every way it can be broken into a SourceError naming the file.

    Args:
        path: The CSV file (``.gz``/``.zip``/... files are decompressed by their suffix).
        required: Columns the file must have (named as in the file's header).
        text: Read every value as a string, blanks kept as ``""`` (for loaders that map values
            themselves); otherwise pandas infers types so that validation sees real types.
        text_columns: Columns read as strings, not guessed, when ``text`` is off: ids such as
            ``00123`` and ``123`` stay distinct and dates stay as written until validation
            parses them. Blank values are still missing; names absent from the file are ignored.
        max_bytes: Largest file accepted (decompressed size for compressed files; see the
            module docstring).

    Returns:
        The file's rows, at least one, with a RangeIndex: each row's 0-based data-row number
        (header excluded).

    Raises:
        SourceError: The file is missing, empty, over ``max_bytes``, binary (a NUL byte
            anywhere), not UTF-8, malformed, uses another delimiter, names a column twice, has no
            data rows, or lacks required columns; the message says which, with the line, byte
            offset, size or column names where they apply.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise SourceError(f"{path}: the file is empty (0 bytes)")
    if size > max_bytes:
        raise SourceError(f"{path}: {_size_problem(size, max_bytes)}")
    head = b""
    if path.suffix.lower() not in _COMPRESSED_SUFFIXES:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        problem = _binary_problem(head)
        if problem:
            raise SourceError(f"{path}: {problem}")
    _scan(path, max_bytes)
    if text:
        options = {"dtype": str, "keep_default_na": False}
    else:
        # pandas ignores dtype entries for columns the file lacks; missing required ones fail below.
        options = {"dtype": dict.fromkeys(text_columns, str)} if text_columns else {}
    try:
        frame = pd.read_csv(path, **options)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: {_encoding_problem(path, exc)}") from exc
    except pd.errors.ParserError as exc:
        raise SourceError(f"{path}: {_parser_problem(exc, head)}") from exc
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{path}: no CSV header (the file holds only blank lines)") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    delimiter = _sniff_delimiter(head)
    if len(frame.columns) == 1 and len(required) > 1 and delimiter:
        raise SourceError(
            f"{path}: parsed into a single column {str(frame.columns[0])[:80]!r} but "
            f"{len(required)} columns are expected; the header seems to use {delimiter} as "
            "delimiter, not ','"
        )
    twice = _repeated_header_names(path) if head else []
    if twice:
        # pandas renames the second one (x.1), so which of them is the real column is a guess.
        raise SourceError(f"{path}: the header names column(s) {', '.join(twice)} more than once")
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise SourceError(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"the file has: {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise SourceError(f"{path}: the file has a header but no data rows")
    if head:
        short = _first_short_line(path, len(frame.columns))
        if short:
            line, fields = short
            raise SourceError(
                f"{path}: malformed CSV: line {line} has {fields} field(s) where the header has "
                f"{len(frame.columns)}"
            )
    return frame


def _repeated_header_names(path: Path) -> list[str]:
    """Names the header line holds more than once, in order of first repetition."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    seen: set[str] = set()
    repeated: list[str] = []
    for name in header:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def _first_short_line(path: Path, width: int) -> tuple[int, int] | None:
    """The first line with fewer fields than the header (pandas pads those with NaN)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if row and len(row) < width:
                return reader.line_num, len(row)
    return None
