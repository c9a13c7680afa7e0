"""Progress of long CLI operations: plain lines on stderr when it is not a terminal."""

from __future__ import annotations

import mlplatform.progress as progress_module
from mlplatform.progress import progress


def test_in_a_pipe_progress_is_a_plain_line_now_and_then_and_a_last_one(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "PLAIN_EVERY_SECONDS", 3600.0)
    with progress("backfill", total=3, unit="days") as bar:
        for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
            bar.update(advance=1, note=f"{day}, 0 failed")
    out, err = capsys.readouterr()
    assert out == ""  # stdout stays the command's result
    lines = err.splitlines()
    assert len(lines) == 2  # the first update, then the last state (updates in between throttled)
    assert lines[0].startswith("  [backfill] 1/3 days, 2026-03-01, 0 failed (")
    assert lines[1].startswith("  [backfill] 3/3 days, 2026-03-03, 0 failed (")


def test_an_operation_that_never_reported_prints_nothing(capsys):
    with progress("load", total=60, unit="s"):
        pass
    assert capsys.readouterr().err == ""


def test_absolute_updates_replace_the_amount_done(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "PLAIN_EVERY_SECONDS", 0.0)
    with progress("load", total=60, unit="s") as bar:
        bar.update(completed=1.5, note="10 requests, 0 failed")
        bar.update(completed=2.5, note="20 requests, 0 failed")
    lines = capsys.readouterr().err.splitlines()
    assert lines[1].startswith("  [load] 2.5/60 s, 20 requests, 0 failed (")
