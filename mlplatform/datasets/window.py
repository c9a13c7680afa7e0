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
    rejected: Mapping[str, str] | None = None,
    newest_day: str | None = None,
    max_staleness_days: int | None = None,
) -> TrainingWindow:
    """Chooses the partitions of a rolling training window.

    Args:
        available: Keys (ISO dates) of the partitions that passed validation.
        days: Window length in days, at least 1.
        end: Last day of the window; the newest usable partition when None.
        max_missing: How many days without a usable partition are tolerated.
        first_day: Earliest day that can exist (the partitions' start); days before it are
            not counted as missing.
        rejected: Days whose latest delivery failed its checks, with the reason; their older
            validated version is not used (the day counts as missing), so a retrain never
            quietly trains on data that upstream has since replaced with something broken.
        newest_day: The newest day that could have data (yesterday for daily partitions).
        max_staleness_days: When ``end`` is not given, how far the newest usable partition may
            lag ``newest_day``; None = no limit. A stopped feed must not retrain quietly on an
            ever older window.

    Returns:
        The window.

    Raises:
        TrainingWindowError: No partitions at all, a bad argument, stale data, or more holes
            than allowed.
    """
    if days < 1:
        raise TrainingWindowError(f"window_days must be at least 1, got {days}")
    if max_missing < 0:
        raise TrainingWindowError(f"max_missing_days must be 0 or more, got {max_missing}")
    rejected = dict(rejected or {})
    present = sorted(set(available) - set(rejected))
    if not present:
        raise TrainingWindowError(
            "validated_data has no usable partition: materialise raw_data and validated_data "
            "for some days first (see README, 'Backfills')"
            + (f"; rejected days: {_reasons(rejected)}" if rejected else "")
        )
    if end:
        last = _day(end, "window_end")
    else:
        last = _day(present[-1], "partition")
        if newest_day and max_staleness_days is not None:
            lag = (_day(newest_day, "newest day") - last).days
            if lag > max_staleness_days:
                raise TrainingWindowError(
                    f"the newest usable validated day is {last}, {lag} days before {newest_day} "
                    f"(at most {max_staleness_days} allowed): has the feed stopped? Load the "
                    "missing days, or set window_end to train on older data on purpose"
                )
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
            f"no usable validated partition in the training window {window.describe()}; "
            f"validated partitions span {present[0]}..{present[-1]}"
        )
    if len(missing) > max_missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        refused = {day: rejected[day] for day in missing if day in rejected}
        raise TrainingWindowError(
            f"the training window {window.describe()} lacks usable validated_data for "
            f"{len(missing)} day(s) (at most {max_missing} allowed): {shown}. "
            + (f"Their latest delivery failed its checks: {_reasons(refused)}. " if refused else "")
            + "Materialise them (dagster job backfill -m mlplatform.definitions -j "
            f"daily_data_job --from {missing[0]} --to {missing[-1]} --noprompt), fix their "
            "failed checks, or shorten window_days / raise max_missing_days"
        )
    return window


def _reasons(rejected: Mapping[str, str]) -> str:
    return "; ".join(f"{day}: {reason}" for day, reason in sorted(rejected.items()))


def combine_partitions(
    partitions: Mapping[str, pd.DataFrame],
    window: TrainingWindow,
    id_column: str,
    required_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Stacks the window's partitions; an id seen on several days keeps its newest row.

    Full-snapshot sources deliver every customer every day, so the newest row is the current
    state of that customer; sources with one row per customer are unaffected.

    Args:
        partitions: Frames by partition key (only the window's keys are read).
        window: The selected window.
        id_column: Entity identifier.
        required_columns: Columns every partition must have (the current spec's).

    Returns:
        One row per id, oldest partition first, index reset.

    Raises:
        TrainingWindowError: A partition lacks required columns (stored for another spec).
    """
    required = list(required_columns)
    frames = []
    for key in window.keys:
        frame = partitions[key]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise TrainingWindowError(
                f"validated_data partition {key} lacks column(s) {', '.join(missing)} of the "
                "current data-set spec: it was stored under another spec version; "
                f"re-materialise it (dagster job backfill ... --from {key} --to {key})"
            )
        frames.append(frame)
    stacked = pd.concat(frames, ignore_index=True)
    return stacked.drop_duplicates(subset=id_column, keep="last").reset_index(drop=True)
