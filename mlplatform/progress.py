"""Progress of long CLI operations (demo, backfill, load): a live bar on a terminal, a plain
line every few seconds otherwise (CI logs, pipes), always on stderr so stdout stays the result.

Nested operations (the demo's backfill) share the one live display: rich allows only one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A plain (non-terminal) progress line at most this often, plus the last one.
PLAIN_EVERY_SECONDS = 5.0

_live = None  # the rich Progress shown on the terminal, while one runs


class Task:
    """One operation's progress; :meth:`update` it as work completes."""

    def __init__(self, description: str, total: float | None, unit: str, stream, bar=None):
        self.description, self.total, self.unit = description, total, unit
        self.completed, self.note = 0.0, ""
        self._stream, self._bar, self._task = stream, bar, None
        self._started = time.perf_counter()
        self._printed_at: float | None = None
        if bar is not None:
            self._task = bar.add_task(description, total=total, note="")

    def update(self, completed: float | None = None, advance: float = 0.0, note: str = "") -> None:
        """Sets (or advances) the completed amount and the note shown beside the bar.

        Args:
            completed: The amount done so far (absolute), or None to keep it.
            advance: Added to the amount done.
            note: A short status, e.g. "1,234 requests, 0 failed".
        """
        self.completed = (self.completed if completed is None else completed) + advance
        self.note = note or self.note
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, note=self.note)
            return
        now = time.perf_counter()
        if self._printed_at is None or now - self._printed_at >= PLAIN_EVERY_SECONDS:
            self._print_plain(now)

    def _print_plain(self, now: float) -> None:
        self._printed_at = now
        done = f"{self.completed:g}" + (f"/{self.total:g}" if self.total else "")
        note = f", {self.note}" if self.note else ""
        elapsed = now - self._started
        print(
            f"  [{self.description}] {done} {self.unit}{note} ({elapsed:.1f} s)",
            file=self._stream,
            flush=True,
        )

    def finish(self) -> None:
        """Prints the final plain line (a live bar shows its final state by itself)."""
        if self._bar is None and (self._printed_at is not None or self.completed):
            self._print_plain(time.perf_counter())


@contextmanager
def progress(description: str, total: float | None = None, unit: str = "") -> Iterator[Task]:
    """A progress display for one operation.

    Args:
        description: What runs, e.g. "backfill".
        total: The amount of work (days, seconds, steps), or None when unknown.
        unit: What is counted, e.g. "days".

    Yields:
        The task to update.
    """
    global _live
    stream = sys.stderr
    if not stream.isatty():
        task = Task(description, total, unit, stream)
        try:
            yield task
        finally:
            task.finish()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    if _live is not None:  # nested: one more row in the display that runs
        task = Task(description, total, unit, stream, bar=_live)
        try:
            yield task
        finally:
            _live.remove_task(task._task)
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=Console(file=stream),
    )
    with bar:
        _live = bar
        try:
            yield Task(description, total, unit, stream, bar=bar)
        finally:
            _live = None
