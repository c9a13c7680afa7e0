"""What every benchmark does the same way: the machine line, its figures as JSON, the verdict.

Each benchmark prints its own table and, through :class:`Recorder`, also writes its figures to
``benchmarks/results/<benchmark>.json``, from which ``results_report.py`` writes RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """One measured figure, with the baseline it was measured against and its goal, if any.

    Attributes:
        name: What was measured, e.g. ``GX suite, few failures``.
        value: The measurement, in ``unit``; None when it was skipped.
        unit: E.g. ``s``, ``ms``, ``req/s``, or ``""`` for a pure number.
        baseline: The baseline's measurement in the same unit, when there is one.
        baseline_name: What the baseline is, e.g. ``pandas``.
        goal: The goal as a person reads it, e.g. ``<= 3x pandas``; empty: information only.
        limit: The bound the goal puts on ``value`` itself (e.g. 3 x the baseline).
        at_most: True when ``value`` must not exceed ``limit``, False when it must reach it.
        met: Whether the goal was met; None for information, or a goal that was skipped.
        note: Anything a reader needs to interpret the figure.
        plot: Whether the figure belongs in the goals plot (speed goals; not tolerances).
    """

    name: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    baseline_name: str = ""
    goal: str = ""
    limit: float | None = None
    at_most: bool = True
    met: bool | None = None
    note: str = ""
    plot: bool = True

    @property
    def ratio(self) -> float | None:
        """The value over its baseline, when both are there."""
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def budget_used(self) -> float | None:
        """The share of the goal used: at most 1 when met, whichever way the goal points."""
        if self.value is None or self.limit is None or self.value <= 0 or self.limit <= 0:
            return None
        return self.value / self.limit if self.at_most else self.limit / self.value

    def as_json(self) -> dict:
        """The figure's fields plus its ratio and budget used."""
        return {**asdict(self), "ratio": self.ratio, "budget_used": self.budget_used}


def ratio_figure(
    name: str,
    value: float,
    baseline: float,
    baseline_name: str,
    unit: str = "s",
    at_most: float | None = None,
    at_least: float | None = None,
    note: str = "",
) -> Figure:
    """A figure whose goal is a ratio to its baseline (``value <= at_most x baseline`` or
    ``value >= at_least x baseline``); neither given: information only."""
    if at_most is None and at_least is None:
        return Figure(name, value, unit, baseline, baseline_name, note=note)
    factor = at_most if at_most is not None else at_least
    limit = factor * baseline
    met = value <= limit if at_most is not None else value >= limit
    sign = "<=" if at_most is not None else ">="
    return Figure(
        name,
        value,
        unit,
        baseline,
        baseline_name,
        goal=f"{sign} {factor:g}x {baseline_name}",
        limit=limit,
        at_most=at_most is not None,
        met=met,
        note=note,
    )


def machine_info(**versions: str) -> dict:
    """CPU count and model, architecture, load averages, Python and the given versions."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "arch": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "load": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": {name: str(version) for name, version in versions.items()},
    }


def format_machine(machine: dict) -> str:
    """The machine on one line, as every benchmark prints it first."""
    load = " ".join(f"{x:.1f}" for x in machine["load"])
    libraries = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    return (
        f"machine: {machine['cpus']} CPUs, {machine['arch']}, load {load}, "
        f"python {machine['python']}, {libraries}"
    )


def machine_line(**versions: str) -> str:
    """CPU count, architecture, load, Python and the given library versions on one line."""
    return format_machine(machine_info(**versions))


def verdict(problems: list[str], ok: str = "ok (every goal met)") -> int:
    """Prints each missed goal and the result; the exit code is 1 when a goal was missed."""
    for problem in problems:
        print(f"FAIL {problem}")
    print("result: " + ("FAIL" if problems else ok))
    return 1 if problems else 0


@dataclass
class Recorder:
    """Collects one benchmark's figures and writes them as ``results/<benchmark>.json``.

    Created when the benchmark starts, so the load it records is the load before it ran (its
    own work would raise the one-minute average).
    """

    benchmark: str
    machine: dict
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    figures: list[Figure] = field(default_factory=list)

    @classmethod
    def start(cls, benchmark: str, **versions: str) -> Recorder:
        """Records the machine and prints its line (the first line every benchmark prints)."""
        recorder = cls(benchmark, machine_info(**versions))
        print(format_machine(recorder.machine))
        return recorder

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def finish(self, problems: list[str], ok: str = "ok (every goal met)") -> int:
        """Writes the JSON file, prints the verdict and returns the exit code."""
        self.write()
        return verdict(problems, ok)

    def write(self, directory: Path = RESULTS_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.benchmark}.json"
        record = {
            "benchmark": self.benchmark,
            "script": f"benchmarks/{self.benchmark}.py",
            "started": self.started,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": self.machine,
            "figures": [figure.as_json() for figure in self.figures],
        }
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path)
        return path


def read_figure(raw: dict) -> Figure:
    """A figure from its JSON form (the derived ratio and budget are computed again)."""
    fields = {k: v for k, v in raw.items() if k not in ("ratio", "budget_used")}
    return Figure(**fields)
