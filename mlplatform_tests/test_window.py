"""The rolling training window: which days a model trains on, and when it must refuse."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.datasets.window import (
    StoredPartitions,
    TrainingWindowError,
    combine_partitions,
    select_window,
)
from mlplatform.lifecycle import partition_keys_between

DAYS = [f"2026-03-{d:02d}" for d in range(1, 11)]


def test_the_window_ends_at_the_newest_day_and_spans_the_requested_days():
    window = select_window(DAYS, days=4)
    assert window.keys == ("2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10")
    assert (window.start, window.end) == (date(2026, 3, 7), date(2026, 3, 10))
    assert window.describe() == "2026-03-07..2026-03-10 (4 partitions, 0 missing)"


def test_an_explicit_end_moves_the_window_back():
    assert select_window(DAYS, days=2, end="2026-03-05").keys == ("2026-03-04", "2026-03-05")


def test_days_before_the_first_partition_are_not_missing():
    window = select_window(DAYS, days=30, first_day="2026-03-01")
    assert window.keys == tuple(DAYS) and window.missing == ()


def test_a_hole_fails_naming_the_days_and_the_backfill_command():
    with pytest.raises(TrainingWindowError) as caught:
        select_window([d for d in DAYS if d not in ("2026-03-08", "2026-03-09")], days=4)
    message = str(caught.value)
    assert (
        "lacks usable validated_data for 2 day(s) (at most 0 allowed): 2026-03-08, 2026-03-09"
        in (message)
    )
    assert "dagster job backfill" in message and "--from 2026-03-08 --to 2026-03-09" in message


def test_holes_up_to_max_missing_are_tolerated_and_reported():
    window = select_window([d for d in DAYS if d != "2026-03-09"], days=4, max_missing=1)
    assert window.missing == ("2026-03-09",) and len(window.keys) == 3


def test_a_rejected_day_counts_as_missing_with_its_reason():
    rejected = {"2026-03-10": "checks ranges failed in run abc"}
    with pytest.raises(TrainingWindowError, match="ranges failed in run abc"):
        select_window(DAYS, days=3, end="2026-03-10", rejected=rejected)
    # Without an explicit end, the window ends at the newest usable day instead.
    assert select_window(DAYS, days=3, rejected=rejected).end == date(2026, 3, 9)


def test_a_stopped_feed_is_refused_unless_the_end_is_explicit():
    with pytest.raises(TrainingWindowError, match="has the feed stopped"):
        select_window(DAYS, days=3, newest_day="2026-03-20", max_staleness_days=7)
    assert select_window(DAYS, days=3, newest_day="2026-03-15", max_staleness_days=7).keys
    assert select_window(
        DAYS, days=3, end="2026-03-10", newest_day="2026-03-20", max_staleness_days=7
    ).keys


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"days": 0}, "window_days must be at least 1"),
        ({"days": 3, "max_missing": -1}, "max_missing_days must be 0 or more"),
        ({"days": 3, "end": "March"}, "window_end 'March' is not a date"),
    ],
)
def test_bad_arguments_are_refused_clearly(kwargs, message):
    with pytest.raises(TrainingWindowError, match=message):
        select_window(DAYS, **kwargs)


def test_no_partitions_at_all_says_what_to_do():
    with pytest.raises(TrainingWindowError, match="materialise raw_data and validated_data"):
        select_window([], days=3)


@given(
    present=st.sets(st.sampled_from(DAYS), min_size=1),
    days=st.integers(1, 12),
    max_missing=st.integers(0, 12),
)
def test_a_window_never_reads_outside_its_range_or_more_holes_than_allowed(
    present, days, max_missing
):
    try:
        window = select_window(present, days=days, max_missing=max_missing)
    except TrainingWindowError:
        return
    assert set(window.keys) <= present
    assert len(window.missing) <= max_missing
    assert all(window.start.isoformat() <= k <= window.end.isoformat() for k in window.keys)
    assert len(window.keys) + len(window.missing) == (window.end - window.start).days + 1


def _frames():
    return {
        "2026-03-01": pd.DataFrame({"id": ["a", "b"], "x": [1, 2]}),
        "2026-03-02": pd.DataFrame({"id": ["b", "c"], "x": [3, 4]}),
    }


def test_combining_keeps_each_ids_newest_row_and_reads_only_the_window():
    reads = []

    def read(location):
        reads.append(location)
        return _frames()[location]

    stored = StoredPartitions({"2026-02-01": "2026-02-01", **{k: k for k in _frames()}}, read)
    window = select_window(stored, days=2)
    combined = combine_partitions(stored, window, "id", ["id", "x"])
    assert combined.to_dict("list") == {"id": ["a", "b", "c"], "x": [1, 3, 4]}
    assert sorted(reads) == ["2026-03-01", "2026-03-02"]


def test_a_partition_stored_under_another_spec_is_refused():
    window = select_window(_frames(), days=2)
    with pytest.raises(TrainingWindowError, match="2026-03-01 lacks column\\(s\\) y"):
        combine_partitions(_frames(), window, "id", ["id", "x", "y"])


def test_backfill_ranges_are_checked():
    assert partition_keys_between("2026-03-01", "2026-03-03") == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
    ]
    with pytest.raises(ValueError, match="--from must not be after --to"):
        partition_keys_between("2026-03-03", "2026-03-01")
    with pytest.raises(ValueError, match="is not a daily partition"):
        partition_keys_between("2019-01-01", "2019-01-02")
