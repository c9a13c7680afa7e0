"""The benchmarks' figures and the RESULTS.md writer (no benchmark is run here)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """The benchmarks' shared modules, imported as the scripts import them."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    report = importlib.import_module("report")
    results_report = importlib.import_module("results_report")
    return report, results_report


def _record(report, name: str, figures: list, load=(0.5, 0.4, 0.3)) -> dict:
    machine = {
        "cpus": 2,
        "cpu_model": "Test CPU",
        "arch": "x86_64",
        "system": "Linux 6",
        "load": list(load),
        "python": "3.11.7",
        "versions": {"numpy": "2.3.5"},
    }
    return {
        "benchmark": name,
        "started": "2026-12-03T10:00:00+00:00",
        "finished": "2026-12-03T10:01:00+00:00",
        "machine": machine,
        "figures": figures,
    }


def test_a_ratio_goal_is_judged_against_its_bound_either_way(bench):
    report, _ = bench
    cheap = report.ratio_figure("gx", 2.0, 1.0, "pandas", at_most=3.0)
    assert (cheap.met, cheap.ratio, cheap.limit, cheap.goal) == (True, 2.0, 3.0, "<= 3x pandas")
    assert cheap.budget_used == pytest.approx(2 / 3)
    slow = report.ratio_figure("naive", 40.0, 1.0, "feature_psi", at_least=50.0)
    assert (slow.met, slow.goal) == (False, ">= 50x feature_psi")
    assert slow.budget_used == pytest.approx(50 / 40)  # above 1: missed, whichever way
    info = report.ratio_figure("1 thread", 4.0, 2.0, "floor")
    assert (info.goal, info.met, info.ratio, info.budget_used) == ("", None, 2.0, None)


def test_a_recorder_writes_figures_that_read_back_the_same(bench, tmp_path, capsys):
    report, _ = bench
    recorder = report.Recorder.start("delong", numpy="2.3.5")
    assert capsys.readouterr().out.startswith("machine: ")
    figure = report.ratio_figure("DeLong", 0.03, 0.04, "roc_auc_score", at_most=2.0, note="x")
    recorder.add(figure, report.Figure("skipped goal", None, "s", goal=">= 50x"))
    path = recorder.write(tmp_path)
    record = json.loads(path.read_text())
    assert path.name == "delong.json"
    assert record["machine"]["versions"] == {"numpy": "2.3.5"}
    assert record["figures"][0]["ratio"] == pytest.approx(0.75)
    assert [report.read_figure(raw) for raw in record["figures"]][0] == figure
    assert record["figures"][1]["budget_used"] is None


def test_results_md_shows_every_figure_the_machine_and_what_was_missed(bench):
    report, results_report = bench
    results = {name: None for name in results_report.BENCHMARKS}
    results["delong"] = _record(
        report,
        "delong",
        [
            report.ratio_figure("paired DeLong", 0.03, 0.04, "roc_auc", at_most=2.0),
            report.Figure("max |AUC - sklearn|", 0.0, goal="<= 1e-12", limit=1e-12, met=True),
        ],
    )
    results["psi"] = _record(
        report, "psi", [report.ratio_figure("naive", 40.0, 1.0, "psi", at_least=50.0)], (3, 2, 1)
    )
    text = results_report.render_markdown(results, "2026-12-03 10:00 UTC")
    assert "2026-12-03 10:00 UTC" in text
    assert "2 CPUs (Test CPU), x86_64" in text
    assert "delong 0.50 0.40 0.30; psi 3.00 2.00 1.00" in text
    row = (
        "| delong | paired DeLong | 0.0300 s | 0.0400 s (roc_auc) | 0.750x | <= 2x roc_auc | yes |"
    )
    assert row in text
    assert r"max \|AUC - sklearn\|" in text  # a pipe would split the cell
    assert "| psi | naive | 40.0 s | 1.00 s (psi) | 40.0x | >= 50x psi | **NO** |" in text
    assert "| serving | no figures: the benchmark failed |" in text
    assert "![Share of each speed goal used](results.png)" in text
    missed = results_report.missed_goals(results)
    assert "psi: naive (>= 50x psi)" in missed
    assert "orchestration: no figures (the benchmark failed before writing them)" in missed
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 8 for line in rows), rows  # 7 cells


def test_numbers_keep_three_significant_digits(bench):
    _, results_report = bench
    cases = {0.0322: "0.0322", 2.5: "2.50", 84.69: "84.7", 3783.2: "3,783", 2e-16: "2.0e-16"}
    for value, text in cases.items():
        assert results_report.number(value) == text
    assert results_report.number(None) == "-"


def test_the_plot_is_a_png_of_the_speed_goals(bench, tmp_path):
    report, results_report = bench
    results = {
        "orchestration": _record(
            report,
            "orchestration",
            [
                report.Figure(
                    "lifecycle",
                    40.0,
                    "s",
                    38.0,
                    "plain",
                    goal="<= 1.5x + 3 s",
                    limit=60.0,
                    met=True,
                ),  # fmt: skip
                report.Figure("AUC spread", 0.0, goal="<= 1e-9", limit=1e-9, met=True, plot=False),
            ],
        ),
        "serving": None,
    }
    path = tmp_path / "results.png"
    results_report.plot_goals(results, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_bench_runs_every_benchmark_the_report_expects(bench):
    _, results_report = bench
    makefile = (REPO_ROOT / "Makefile").read_text()
    (listed,) = re.findall(r"^BENCHMARKS := (.+)$", makefile, flags=re.MULTILINE)
    assert tuple(listed.split()) == results_report.BENCHMARKS
    for name in results_report.BENCHMARKS:
        assert (REPO_ROOT / "benchmarks" / f"{name}.py").is_file()
    assert "benchmarks/results_report.py" in makefile
