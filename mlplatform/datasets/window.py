"""The rolling training window: which daily partitions a model trains on, and their rows.

A window is the ``days`` calendar days ending at ``end`` (by default the newest partition that
passed validation). A day inside the window that has no validated partition is a hole: training
on a window with holes silently skews the sample (a failed Monday is not random), so it is an
error unless the caller explicitly tolerates some.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd


class TrainingWindowError(ValueError):
    """The training window cannot be assembled; the message says which partitions and why."""


class StoredPartitions(Mapping[str, pd.DataFrame]):
    """Read-only, lazy mapping from partition key to the stored frame of that partition.

    Only partitions that exist are keys; a frame is read from storage when it is accessed, so
    choosing a 30-day window out of years of history reads 30 partitions.
    """

    def __init__(self, locations: Mapping[str, object], read: Callable[[object], pd.DataFrame]):
        self._locations = dict(sorted(locations.items()))
        self._read = read

    def __getitem__(self, key: str) -> pd.DataFrame:
        return self._read(self._locations[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._locations)

    def __len__(self) -> int:
        return len(self._locations)


@dataclass(frozen=True)
class TrainingWindow:
    """The partitions one training run reads.

    Attributes:
        start: First day of the window.
        end: Last day of the window.
        keys: Partition keys present in the window, oldest first.
        missing: Days in the window without a validated partition.
    """

    start: date
    end: date
    keys: tuple[str, ...]
    missing: tuple[str, ...]

    def describe(self) -> str:
        """E.g. '2026-01-01..2026-01-30 (30 partitions, 0 missing)'."""
        return (
            f"{self.start}..{self.end} ({len(self.keys)} partitions, {len(self.missing)} missing)"
        )


def _day(key: str, what: str) -> date:
    try:
        return date.fromisoformat(key)
    except ValueError as exc:
        raise TrainingWindowError(f"{what} '{key}' is not a date (YYYY-MM-DD)") from exc


def select_window(
    available: Iterable[str],
    days: int,
    end: str | None = None,
    max_missing: int = 0,
    first_day: str | None = None,
) -> TrainingWindow:
    """Chooses the partitions of a rolling training window.

    Args:
        available: Keys (ISO dates) of the partitions that passed validation.
        days: Window length in days, at least 1.
        end: Last day of the window; the newest available partition when None.
        max_missing: How many days without a partition are tolerated.
        first_day: Earliest day that can exist (the partitions' start); days before it are
            not counted as missing.

    Returns:
        The window.

    Raises:
        TrainingWindowError: No partitions at all, a bad argument, or more holes than allowed.
    """
    if days < 1:
        raise TrainingWindowError(f"window_days must be at least 1, got {days}")
    present = sorted(set(available))
    if not present:
        raise TrainingWindowError(
            "validated_data has no materialised partition yet: materialise raw_data and "
            "validated_data for some days first (see README, 'Backfills')"
        )
    last = _day(end, "window_end") if end else _day(present[-1], "partition")
    start = last - timedelta(days=days - 1)
    if first_day:
        start = max(start, _day(first_day, "first partition day"))
    wanted = [(start + timedelta(days=i)).isoformat() for i in range((last - start).days + 1)]
    present_set = set(present)
    keys = tuple(k for k in wanted if k in present_set)
    missing = tuple(k for k in wanted if k not in present_set)
    window = TrainingWindow(start, last, keys, missing)
    if not keys:
        raise TrainingWindowError(
            f"no validated partition in the training window {window.describe()}; "
            f"validated partitions span {present[0]}..{present[-1]}"
        )
    if len(missing) > max_missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise TrainingWindowError(
            f"the training window {window.describe()} lacks validated_data for {len(missing)} "
            f"day(s) (at most {max_missing} allowed): {shown}. Materialise them "
            f"(dagster job backfill -m mlplatform.definitions -j daily_data_job "
            f"--from {missing[0]} --to {missing[-1]} --noprompt), fix their failed checks, "
            "or shorten window_days / raise max_missing_days"
        )
    return window


def combine_partitions(
    partitions: Mapping[str, pd.DataFrame], window: TrainingWindow, id_column: str
) -> pd.DataFrame:
    """Stacks the window's partitions; an id seen on several days keeps its newest row.

    Full-snapshot sources deliver every customer every day, so the newest row is the current
    state of that customer; sources with one row per customer are unaffected.

    Args:
        partitions: Frames by partition key (only the window's keys are read).
        window: The selected window.
        id_column: Entity identifier.

    Returns:
        One row per id, oldest partition first, index reset.
    """
    frames = [partitions[key] for key in window.keys]
    stacked = pd.concat(frames, ignore_index=True)
    return stacked.drop_duplicates(subset=id_column, keep="last").reset_index(drop=True)
