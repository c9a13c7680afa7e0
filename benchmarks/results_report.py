"""Writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.png`` from the benchmarks' figures.

Each benchmark writes ``benchmarks/results/<benchmark>.json`` (``report.Recorder``); this reads
them in ``BENCHMARKS`` order and writes one table (benchmark, figure, value, baseline, ratio,
goal, met), the machine they ran on (CPUs, architecture, load when each started, Python,
library versions), the date, and a plot of how much of each speed goal was used.

Usage: ``python benchmarks/results_report.py``. Exits 1 when a goal was missed or a benchmark
left no figures (it failed before writing them).
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

from report import RESULTS_DIR, Figure, read_figure

HERE = Path(__file__).resolve().parent
# make bench runs them in this order; each is benchmarks/<name>.py.
BENCHMARKS = ("data_validation", "delong", "psi", "serving", "orchestration")
COMPARES = {
    "data_validation": "Great Expectations suite vs the same rules in vectorised pandas",
    "delong": "paired DeLong CI vs one roc_auc_score call and a paired bootstrap",
    "psi": "feature_psi vs one plain pass, naive pandas and Evidently",
    "serving": "`mlplatform serve` vs `mlflow models serve`, one worker each",
    "orchestration": "the lifecycle through `dagster asset materialize` vs plain Python",
}
PLOT_NAME = "results.png"


def load_results(directory: Path = RESULTS_DIR) -> dict[str, dict | None]:
    """Each benchmark's record, with its figures as ``Figure``s; None when it wrote none."""
    results: dict[str, dict | None] = {}
    for name in BENCHMARKS:
        path = directory / f"{name}.json"
        if not path.exists():
            results[name] = None
            continue
        record = json.loads(path.read_text())
        record["figures"] = [read_figure(raw) for raw in record["figures"]]
        results[name] = record
    return results


def number(value: float | None) -> str:
    """Three significant digits, thousands separated, scientific only below 0.001."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.1e}"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def _with_unit(value: float | None, unit: str) -> str:
    text = number(value)
    if not unit or value is None:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def met_cell(figure: Figure) -> str:
    """yes / **NO** for a goal, skipped for a goal not measured, empty for information."""
    if not figure.goal:
        return ""
    if figure.met is None:
        return "skipped"
    return "yes" if figure.met else "**NO**"


def figure_row(benchmark: str, figure: Figure) -> list[str]:
    """The table cells of one figure."""
    baseline = ""
    if figure.baseline is not None:
        baseline = f"{_with_unit(figure.baseline, figure.unit)} ({figure.baseline_name})"
    ratio = "" if figure.ratio is None else f"{number(figure.ratio)}x"
    name = figure.name + (f" <br><sub>{figure.note}</sub>" if figure.note else "")
    return [
        benchmark,
        name,
        _with_unit(figure.value, figure.unit),
        baseline,
        ratio,
        figure.goal or "information",
        met_cell(figure),
    ]


def missed_goals(results: dict[str, dict | None]) -> list[str]:
    """Every goal missed, and every benchmark that left no figures."""
    missed = []
    for name, record in results.items():
        if record is None:
            missed.append(f"{name}: no figures (the benchmark failed before writing them)")
            continue
        missed += [f"{name}: {f.name} ({f.goal})" for f in record["figures"] if f.met is False]
    return missed


def machine_section(results: dict[str, dict | None]) -> list[str]:
    """The machine, the load when each benchmark started, and every library version."""
    records = [r for r in results.values() if r is not None]
    if not records:
        return []
    machine = records[0]["machine"]
    versions: dict[str, str] = {}
    for record in records:
        versions.update(record["machine"]["versions"])
    simd = versions.pop("simd", "")
    loads = "; ".join(
        f"{r['benchmark']} {' '.join(f'{x:.2f}' for x in r['machine']['load'])}" for r in records
    )
    return [
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model'] or 'unknown model'}), "
        f"{machine['arch']}{f' ({simd})' if simd else ''}, {machine['system']}; "
        f"Python {machine['python']}",
        f"- Load average (1, 5, 15 min) when each benchmark started: {loads}",
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
    ]


def render_markdown(results: dict[str, dict | None], generated: str) -> str:
    """RESULTS.md: summary, machine, the table of figures, the plot and how to reproduce."""
    missed = missed_goals(results)
    goals = sum(
        1 for r in results.values() if r for f in r["figures"] if f.goal and f.met is not None
    )
    summary = (
        f"**Every goal met** ({goals} goals measured)."
        if not missed
        else f"**Not every goal met** ({goals} goals measured):\n\n"
        + "\n".join(f"- {m}" for m in missed)
    )
    lines = [
        "# Benchmark results",
        "",
        f"Written on {generated} by `benchmarks/results_report.py`, the last step of `make "
        "bench`, from the figures each benchmark left (when each ran: below). Each benchmark "
        "measures against its baseline side by side in one script; the ratio is value / "
        "baseline.",
        "",
        summary,
        "",
        *machine_section(results),
        "",
        "| benchmark | figure | value | baseline | ratio | goal | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name, record in results.items():
        if record is None:
            lines.append(f"| {name} | no figures: the benchmark failed | | | | | **NO** |")
            continue
        for figure in record["figures"]:
            cells = [cell.replace("|", "\\|") for cell in figure_row(name, figure)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"![Share of each speed goal used]({PLOT_NAME})",
        "",
        "The plot shows, for each speed goal, the share of the goal used (measured / bound for "
        "an upper bound, bound / measured for a lower one): below 1 the goal is met.",
        "",
        "## The benchmarks",
        "",
    ]
    for name in BENCHMARKS:
        record = results.get(name)
        when = f" (ran {record['started']}..{record['finished']})" if record else ""
        lines.append(f"- `benchmarks/{name}.py`: {COMPARES[name]}{when}")
    lines += [
        "",
        "Each runs alone too (`.venv/bin/python benchmarks/<name>.py`, see its docstring) and "
        "writes `benchmarks/results/<name>.json`; `.venv/bin/python benchmarks/results_report.py` "
        "then rewrites this page.",
        "",
    ]
    return "\n".join(lines)


def plot_goals(results: dict[str, dict | None], path: Path) -> None:
    """A horizontal bar per speed goal: the share of the goal used, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        (f"{name}: {figure.name}", figure)
        for name, record in results.items()
        if record
        for figure in record["figures"]
        if figure.plot and figure.met is not None and figure.budget_used is not None
    ]
    figure_, axes = plt.subplots(figsize=(10, 0.55 * max(len(bars), 1) + 1.6))
    labels = [label for label, _ in bars][::-1]
    used = [f.budget_used for _, f in bars][::-1]
    colours = ["#2a9d8f" if f.met else "#e63946" for _, f in bars][::-1]
    axes.barh(range(len(bars)), used, color=colours)
    axes.set_xscale("log")
    axes.axvline(1.0, color="black", linewidth=1)
    axes.text(1.0, len(bars) - 0.45, " goal", fontsize=8, va="bottom")
    axes.set_yticks(range(len(bars)), labels, fontsize=8)
    axes.set_xlabel("share of the goal used (measured vs bound; below 1: met), log scale")
    axes.set_title("Benchmarks against their goals")
    for row, (_, f) in enumerate(bars[::-1]):
        measured = f"{number(f.ratio)}x" if f.ratio is not None else _with_unit(f.value, f.unit)
        axes.annotate(
            f" {measured} (goal {f.goal})",
            (f.budget_used, row),
            va="center",
            fontsize=7,
        )
    low = min([*used, 1.0])
    axes.set_xlim(low / 3, max([*used, 1.0]) * 30)
    figure_.tight_layout()
    figure_.savefig(path, dpi=120)
    plt.close(figure_)


def main() -> int:
    results = load_results()
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (HERE / "RESULTS.md").write_text(render_markdown(results, generated))
    plot_goals(results, HERE / PLOT_NAME)
    missed = missed_goals(results)
    for problem in missed:
        print(f"MISSED {problem}")
    print(f"wrote {HERE / 'RESULTS.md'} and {HERE / PLOT_NAME}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
