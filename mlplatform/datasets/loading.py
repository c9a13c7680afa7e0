"""Loads the rows of a data set described by its spec, whatever the source kind."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from mlplatform.datasets.spec import DatasetSpec, SpecError
from mlplatform.datasets.synthetic import generate_days
from mlplatform.datasets.telco import SourceError, load_telco_csv

__all__ = ["SourceError", "load_dataset", "resolve_source_path"]


def resolve_source_path(spec: DatasetSpec, project_root: Path, override: str | None) -> Path:
    """The file a file-backed data set reads from.

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


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read CSV: {exc}") from exc


def load_dataset(spec: DatasetSpec, project_root: Path, path_override: str | None = None):
    """Loads a data set's rows as a DataFrame, with the source it came from.

    Args:
        spec: The data-set spec; ``spec.source["kind"]`` picks the loader.
        project_root: Base for relative source paths.
        path_override: Configured file path, for file-backed sources.

    Returns:
        A tuple ``(frame, source_description)``.

    Raises:
        SpecError: Unknown source kind.
        SourceError: The source file cannot be read.
    """
    kind = spec.source.get("kind")
    if kind == "synthetic":
        start = date.fromisoformat(str(spec.source.get("start_date", "2026-01-01")))
        days = int(spec.source.get("days", 60))
        rows = int(spec.source.get("rows_per_day", 200))
        seed = int(spec.source.get("seed", 42))
        frame = generate_days(start, days, rows, seed=seed)
        return frame, f"synthetic://seed={seed}/start={start}/days={days}/rows_per_day={rows}"
    if kind == "telco_csv":
        path = resolve_source_path(spec, project_root, path_override)
        return load_telco_csv(path), str(path)
    if kind == "csv":
        path = resolve_source_path(spec, project_root, path_override)
        return _read_csv(path), str(path)
    raise SpecError(f"data set '{spec.name}': unknown source kind '{kind}'")
