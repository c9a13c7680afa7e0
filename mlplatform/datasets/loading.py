"""Loads the rows of a data set described by its spec: all of it, or one day (partition) of it.

File-backed sources (kinds ``csv`` and ``telco_csv``) come in three shapes, told apart by the spec:

* a path containing ``{date}`` is a template with one file per day, e.g. ``data/churn_{date}.csv``
  (``{date}`` is the ISO day, 2026-01-05);
* a single file whose header has the spec's ``time_column``: a day's partition is the rows whose
  time value falls on that day (the date as written, whatever its time or UTC offset);
* a single file without a time column (the Telco sample is one): a full snapshot delivered daily,
  so every partition reads the whole file. Re-running an old partition reads the file as it is
  now, so backfills of a snapshot source are not reproducible.

Row numbers: the index of a loaded raw frame is each row's 0-based data-row number in its source
(header excluded). Whole files and synthetic batches have a RangeIndex; a day taken out of a
multi-day file keeps the rows' positions in that file (day 2 of a file of 20 rows a day is rows
20 to 39), so validation reports rows a reader can find in the file. ``load_dataset`` on a
``{date}`` template stacks the files oldest first and numbers the stacked rows from 0.

Column types of plain ``csv`` files: the spec's ``string``, ``category`` and ``date`` columns and
its id column are read as text, not guessed by pandas, so ids such as ``00123`` and ``123`` stay
distinct and content hashes do not depend on guessing; numeric and boolean columns keep pandas
inference, and validation reports what does not convert.

File size: a file over ``source.max_file_bytes`` (default 256 MiB, decompressed size for
compressed files) is refused with a ``SourceError`` naming it and its size, before it is parsed:
pandas needs several times a file's size in memory (see ``csv_source``).
"""

from __future__ import annotations

import glob
import re
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mlplatform.datasets.csv_source import DEFAULT_MAX_FILE_BYTES, SourceError, read_source_csv
from mlplatform.datasets.spec import DatasetSpec, SpecError
from mlplatform.datasets.synthetic import DriftConfig, generate_batch, generate_days
from mlplatform.datasets.telco import load_telco_csv

__all__ = [
    "DATE_PLACEHOLDER",
    "SourceError",
    "load_dataset",
    "load_partition",
    "resolve_source_path",
]

DATE_PLACEHOLDER = "{date}"
_FILE_KINDS = ("csv", "telco_csv")
_SAMPLE = 5


def resolve_source_path(spec: DatasetSpec, project_root: Path, override: str | None) -> Path:
    """The file a file-backed data set reads from (a ``{date}`` template for per-day files).

    Args:
        spec: The data-set spec.
        project_root: Directory that relative paths in the spec are resolved against.
        override: A path given by configuration; wins over the spec when set.

    Returns:
        An absolute path.

    Raises:
        SpecError: The spec names no path and none was configured.
    """
    raw = override or spec.source.get("path")
    if not raw:
        raise SpecError(f"data set '{spec.name}': no source path in the spec or configuration")
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (project_root / path).resolve()


def _kind(spec: DatasetSpec) -> str:
    kind = spec.source.get("kind")
    if kind != "synthetic" and kind not in _FILE_KINDS:
        raise SpecError(f"data set '{spec.name}': unknown source kind '{kind}'")
    return kind


def _drift_suffix(drift: DriftConfig | None) -> str:
    """The shifts that differ from no drift, as a query string for the source description."""
    if drift is None:
        return ""
    shifts = [f"{k}={v}" for k, v in vars(drift).items() if v != getattr(DriftConfig(), k)]
    return "?simulated_drift=" + ",".join(shifts) if shifts else ""


def _synthetic_size(spec: DatasetSpec) -> tuple[int, int]:
    """Rows per day and seed of a synthetic source."""
    return int(spec.source.get("rows_per_day", 200)), int(spec.source.get("seed", 42))


_TEXT_TYPES = ("string", "category", "date")


def _text_columns(spec: DatasetSpec) -> list[str]:
    """Columns read as text: guessing would turn ``00123`` into 123 or a date into a number."""
    names = [name for name, column in spec.columns.items() if column.type in _TEXT_TYPES]
    return names if spec.id_column in names else [spec.id_column, *names]


def _max_file_bytes(spec: DatasetSpec) -> int:
    """The spec's ``source.max_file_bytes``: the largest file read (see ``csv_source``)."""
    limit = spec.source.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise SpecError(
            f"data set '{spec.name}': source.max_file_bytes must be a positive whole number of "
            f"bytes, got {limit!r}"
        )
    return limit


def _read_file(spec: DatasetSpec, path: Path) -> pd.DataFrame:
    limit = _max_file_bytes(spec)
    if spec.source["kind"] == "telco_csv":
        return load_telco_csv(path, max_bytes=limit)
    return read_source_csv(
        path, spec.required_columns, text_columns=_text_columns(spec), max_bytes=limit
    )


def _is_template(path: Path) -> bool:
    return DATE_PLACEHOLDER in str(path)


def _day_file(template: Path, day: date) -> Path:
    return Path(str(template).replace(DATE_PLACEHOLDER, day.isoformat()))


def _template_files(template: Path) -> list[Path]:
    """Existing files that a ``{date}`` template names, oldest day first."""
    parts = str(template).split(DATE_PLACEHOLDER)
    pattern = "*".join(glob.escape(part) for part in parts)
    shape = re.compile(r"(\d{4}-\d{2}-\d{2})".join(re.escape(part) for part in parts))
    found = {}
    for name in glob.glob(pattern):
        match = shape.fullmatch(name)
        # Every {date} must be the same real day, or the file belongs to no partition.
        if match and len(set(match.groups())) == 1:
            try:
                found[date.fromisoformat(match.group(1))] = Path(name)
            except ValueError:
                continue
    return [found[day] for day in sorted(found)]


def _parse_day(text: str) -> date | None:
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError):
        return None
    return None if pd.isna(stamp) else stamp.date()


def _days(values: pd.Series) -> pd.Series:
    """The calendar day of each time value; missing where absent or not a date."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.date.astype(object)
    # Text, not numbers: an inferred integer 20260105 is a date, not nanoseconds since 1970.
    text = values.astype("string").str.strip()
    # Each distinct value is parsed once and on its own, so files mixing formats or UTC offsets
    # still work (pandas would infer one format from the first value and blank the others).
    parsed = {value: _parse_day(value) for value in text.dropna().unique()}
    return text.astype(object).map(parsed)


def _rows_on_day(frame: pd.DataFrame, column: str, day: date, path: Path) -> pd.DataFrame:
    days = _days(frame[column])
    bad = np.flatnonzero(days.isna().to_numpy())
    if len(bad):
        shown = ", ".join(
            f"{p}: {'<missing>' if pd.isna(v) else repr(v)}"
            for p, v in zip(bad[:_SAMPLE], frame[column].iloc[bad[:_SAMPLE]], strict=True)
        )
        raise SourceError(
            f"{path}: column '{column}' has {len(bad)} value(s) that are not dates, so their day "
            f"partition is unknown; rows (0-based, header excluded) {shown}"
        )
    # No reset_index: the index stays each row's data-row number in the file (module docstring).
    selected = frame[(days == day).to_numpy()]
    if selected.empty:
        covered = sorted(set(days))
        raise SourceError(
            f"{path}: partition {day} is empty: no row has {column} on that day; the file "
            f"covers {covered[0]} to {covered[-1]} ({len(covered)} distinct day(s))"
        )
    return selected


def load_dataset(spec: DatasetSpec, project_root: Path, path_override: str | None = None):
    """Loads a data set's rows as a DataFrame, with the source it came from.

    A ``{date}`` template reads every existing per-day file, oldest first.

    Args:
        spec: The data-set spec; ``spec.source["kind"]`` picks the loader.
        project_root: Base for relative source paths.
        path_override: Configured file path, for file-backed sources.

    Returns:
        A tuple ``(frame, source_description)``.

    Raises:
        SpecError: Unknown source kind.
        SourceError: A source file cannot be read, or a template matches no file.
    """
    if _kind(spec) == "synthetic":
        start = date.fromisoformat(str(spec.source.get("start_date", "2026-01-01")))
        days = int(spec.source.get("days", 60))
        rows, seed = _synthetic_size(spec)
        frame = generate_days(start, days, rows, seed=seed)
        return frame, f"synthetic://seed={seed}/start={start}/days={days}/rows_per_day={rows}"
    path = resolve_source_path(spec, project_root, path_override)
    if not _is_template(path):
        return _read_file(spec, path), str(path)
    files = _template_files(path)
    if not files:
        raise SourceError(f"{path}: no such file for any day (no file matches this template)")
    return pd.concat([_read_file(spec, file) for file in files], ignore_index=True), str(path)


def load_partition(
    spec: DatasetSpec,
    project_root: Path,
    path_override: str | None,
    day: date,
    drift: DriftConfig | None = None,
) -> tuple[pd.DataFrame, str]:
    """Loads one day's rows of a data set (see the module docstring for the file shapes).

    Args:
        spec: The data-set spec; ``spec.source["kind"]`` picks the loader.
        project_root: Base for relative source paths.
        path_override: Configured file path (or ``{date}`` template), for file-backed sources.
        day: The partition's day.
        drift: A simulated distribution shift (drills and demos); synthetic sources only.

    Returns:
        A tuple ``(frame, source_description)``; the frame has at least one row and its index
        holds the rows' data-row numbers in the source (module docstring).

    Raises:
        SpecError: Unknown source kind, no source path, or ``drift`` for a file source.
        SourceError: The day's file is missing or unreadable, a time value is not a date, or the
            partition has no rows; the message names the file and the partition date.
    """
    if drift is not None and _kind(spec) != "synthetic":
        raise SpecError(
            f"data set '{spec.name}' reads files: a simulated drift applies only to synthetic "
            "sources (deliver a shifted file instead)"
        )
    if _kind(spec) == "synthetic":
        rows, seed = _synthetic_size(spec)
        frame = generate_batch(day, rows, seed, drift=drift)
        source = f"synthetic://seed={seed}/day={day}/rows={rows}" + _drift_suffix(drift)
    else:
        path = resolve_source_path(spec, project_root, path_override)
        template = _is_template(path)
        file = _day_file(path, day) if template else path
        if template and not file.exists():
            raise SourceError(f"{file}: no such file for partition {day} (template {path})")
        try:
            frame = _read_file(spec, file)
        except SourceError as exc:
            raise SourceError(f"{exc} (partition {day})") from exc
        time_column = spec.time_column
        if template:
            # The day's own file is the partition, whatever its time column says.
            source = str(file)
        elif time_column and time_column in frame.columns:
            frame = _rows_on_day(frame, time_column, day, file)
            source = f"{file}?{time_column}={day}"
        else:
            source = f"{file}?snapshot={day}"
    if frame.empty:
        raise SourceError(f"{source}: partition {day} has no rows")
    return frame, source
