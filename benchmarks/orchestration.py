"""Orchestration overhead: the lifecycle through ``dagster asset materialize`` vs plain Python.

The lifecycle measured: on the default data set (``synthetic_churn``: 1,000 rows a day, a 30-day
training window), every asset of the graph once with every asset check on it, as one run for
the newest day: that day's ``raw_data`` (8 Great Expectations checks) and ``validated_data``
(1 check), ``features`` over the 30-day window, ``challenger_model`` (gradient boosting, logged
and registered in MLflow), ``evaluation`` (8 checks, one of them a smoke test in a fresh
process) and ``deployed_model`` (1 check) with approval off (``MLPLATFORM_REQUIRE_APPROVAL=
false``), so the challenger becomes the champion. That is what the daily schedule and a retrain
do, in one run: ``dagster asset materialize --select '*' --partition DAY`` (a run for one day
can hold the unpartitioned assets too; they read the stored days through the IO manager). The
29 earlier days of the window are stored once beforehand, untimed, with ``mlplatform backfill``
(one process for all days: a ``dagster asset materialize`` per day would pay its process start
and code-location load, 10-15 s per day here, 29 times over).

Each measurement starts from a fresh copy of that platform (Dagster home, MLflow store, state
directory, in a temporary directory, as ``mlplatform_tests/conftest.py`` builds one), and runs a
fresh process; per round the two take turns (the order alternates), and each figure is the
fastest of ``--rounds`` wall times from process start to exit (the least disturbed by other
load: training runs OpenMP threads, which a busy machine slows several times over):

* ``dagster``: ``dagster asset materialize -m mlplatform.definitions --select '*' --partition
  DAY``. The definitions use the in-process executor (``mlplatform/defs/platform/executors.py``,
  pinned here with ``MLPLATFORM_EXECUTOR=in_process``): the 16 steps (6 assets, 10 checks
  defined apart; raw_data's 8 run inside its step) run in that one process; the multiprocess
  executor would start a process per step, each importing the code location again;
* ``plain``: ``benchmarks/plain_lifecycle.py``: the same asset and check functions (the ones
  under the decorators) in graph order, with the same resources and run config, values in
  memory.

Both import the same libraries; the difference is Dagster's: loading the whole code location
(sensors, schedules, jobs), the run and its event log in the instance's SQLite storage, the IO
manager writing every output, and the CLI. The two must agree: same checks, both promote v1,
same holdout AUC.

Goal (exit 1 when missed): dagster <= ``MAX_RATIO`` x plain + ``ALLOWANCE_SECONDS``.

Usage: ``python benchmarks/orchestration.py [--rounds 3] [--platform-dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plain_lifecycle import LIFECYCLE
from report import Figure, Recorder

from mlplatform.paths import embedded_defaults

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
MAX_RATIO = 1.5
ALLOWANCE_SECONDS = 3.0
AUC_TOLERANCE = 1e-9
DATASET = "synthetic_churn"
# Fixed days, so figures do not depend on today's date; the staleness guard is off for them.
DAYS = [f"2026-03-{day:02d}" for day in range(1, 31)]
RUN_CONFIG = {"ops": {"features": {"config": {"max_staleness_days": None}}}}
DAGSTER = "dagster asset materialize"
PLAIN = "plain Python"


def platform_env(root: Path) -> dict[str, str]:
    """The environment of an isolated platform under ``root`` on the default data set: the
    embedded defaults with every store moved under ``root`` and approval off."""
    return {
        **os.environ,
        **embedded_defaults(DATASET),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MLPLATFORM_HOME": str(root / "state"),
        "MLPLATFORM_EXECUTOR": "in_process",
        "MLPLATFORM_DAGSTER_PG_URL": "",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "MLPLATFORM_REQUIRE_APPROVAL": "false",
    }


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str, str]:
    """Wall seconds, stdout and stderr of a command; raises when it fails."""
    started = time.perf_counter()
    # cwd in the platform's directory: the dagster CLI loads a .env from its cwd.
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return seconds, done.stdout, done.stderr


def prepare(root: Path) -> float:
    """Stores the window's earlier days in a new platform under ``root``; returns seconds."""
    root.mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "mlplatform"), "backfill", "--from", DAYS[0], "--to", DAYS[-2]]
    seconds, _, _ = run(command, platform_env(root), root)
    return seconds


def dagster_lifecycle(root: Path) -> dict:
    """The lifecycle through the CLI; its wall time, steps, checks and outcome."""
    command = [
        str(BIN / "dagster"), "asset", "materialize", "-m", "mlplatform.definitions",
        "--select", "*", "--partition", DAYS[-1], "--config-json", json.dumps(RUN_CONFIG),
    ]  # fmt: skip
    seconds, _, log = run(command, platform_env(root), root)
    if "RUN_SUCCESS" not in log:
        raise RuntimeError(f"{DAGSTER} did not succeed:\n{log[-4000:]}")
    return {"total": seconds, **run_record(root)}


def run_record(root: Path) -> dict:
    """What the instance recorded of the one lifecycle run: step times, checks, AUC, champion."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        (record,) = instance.get_run_records(
            dg.RunsFilter(tags={"dagster/partition": DAYS[-1]}), limit=2
        )
        run_id = record.dagster_run.run_id
        steps: dict[str, float] = {}
        for stat in instance.get_run_step_stats(run_id):
            asset = step_asset(stat.step_key)
            steps[asset] = steps.get(asset, 0.0) + stat.end_time - stat.start_time
        checks = []
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data
            checks.append(f"{evaluation.asset_key.to_user_string()}/{evaluation.check_name}")
    return {"steps": steps, "checks": sorted(checks), **registry(root)}


def step_asset(step_key: str) -> str:
    """The asset a step belongs to: its own, or the one its check is on."""
    names = sorted((name for _, name in LIFECYCLE), key=len, reverse=True)
    return next(name for name in names if step_key == name or step_key.startswith(name + "_"))


def registry(root: Path) -> dict:
    """The champion of the platform's registry and its holdout AUC, as the run logged it."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias(f"mlplatform-{DATASET}", "champion")
    auc = client.get_run(version.run_id).data.metrics["holdout_auc"]
    return {"champion": str(version.version), "holdout_auc": auc}


def plain_lifecycle(root: Path) -> dict:
    """The same asset functions in one plain Python process; wall time, steps and outcome."""
    script = HERE / "plain_lifecycle.py"
    command = [sys.executable, str(script), DAYS[-1], json.dumps(RUN_CONFIG)]
    seconds, out, _ = run(command, platform_env(root), root)
    result = json.loads(out.strip().splitlines()[-1])
    if result["status"] != "promoted":
        raise RuntimeError(f"{PLAIN}: deployed_model {result['status']}, expected promoted")
    return {**result, "total": seconds, **registry(root)}


def measure(prepared: Path, scratch: Path, rounds: int) -> dict[str, list[dict]]:
    """``rounds`` turns of each, alternating which goes first, each on a fresh copy."""
    paths = {DAGSTER: dagster_lifecycle, PLAIN: plain_lifecycle}
    results: dict[str, list[dict]] = {DAGSTER: [], PLAIN: []}
    for round_ in range(rounds):
        order = [DAGSTER, PLAIN] if round_ % 2 == 0 else [PLAIN, DAGSTER]
        for name in order:
            root = scratch / f"round{round_}-{'dagster' if name == DAGSTER else 'plain'}"
            shutil.copytree(prepared, root)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            result = paths[name](root)
            shutil.rmtree(root)
            results[name].append(result)
            print(
                f"  round {round_ + 1} {name:<26} {result['total']:6.1f} s  (steps "
                f"{sum(result['steps'].values()):5.1f} s; load before: {load})",
                flush=True,
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns per path (median)")
    parser.add_argument(
        "--platform-dir", type=Path, help="store the earlier days here once and reuse them"
    )
    args = parser.parse_args()

    import dagster
    import mlflow
    import sklearn

    recorder = Recorder.start(
        "orchestration", dagster=dagster.__version__, mlflow=mlflow.__version__,
        **{"scikit-learn": sklearn.__version__},
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as tmp:
        prepared = args.platform_dir or Path(tmp) / "prepared"
        if (prepared / "dagster_home").exists():
            note = f"reused from {prepared}"
        else:
            note = f"stored in {prepare(prepared):.0f} s by mlplatform backfill"
        print(
            f"lifecycle: {DATASET}, one run for {DAYS[-1]}, training window {DAYS[0]}.."
            f"{DAYS[-1]} ({len(DAYS) - 1} earlier days {note}); approval off"
        )
        results = measure(prepared, Path(tmp), args.rounds)
    return report(recorder, results, args.rounds)


def report(recorder: Recorder, results: dict[str, list[dict]], rounds: int) -> int:
    """Prints the per-step table and the goal; records the figures; returns the exit code."""
    fastest = {name: min(runs, key=lambda r: r["total"]) for name, runs in results.items()}
    for result in fastest.values():
        result["all steps"] = sum(result["steps"].values())
    dagster, plain = fastest[DAGSTER], fastest[PLAIN]
    medians = [statistics.median(r["total"] for r in results[n]) for n in (DAGSTER, PLAIN)]
    print(f"\n{'seconds, fastest round':<35}{DAGSTER:>25}{PLAIN:>16}")
    for _, asset in LIFECYCLE:
        cells = [fastest[n]["steps"].get(asset, 0.0) for n in (DAGSTER, PLAIN)]
        print(f"  {asset + ' (and its checks)':<36}{cells[0]:>22.2f}{cells[1]:>16.2f}")
    print(f"  {'all steps':<36}{dagster['all steps']:>22.2f}{plain['all steps']:>16.2f}")
    startup = [r["total"] - r["all steps"] for r in (dagster, plain)]
    print(f"  {'imports, set-up, tear-down':<36}{startup[0]:>22.2f}{startup[1]:>16.2f}")
    print(f"  {'process, start to exit':<36}{dagster['total']:>22.2f}{plain['total']:>16.2f}")
    print(f"  {'(median of the rounds)':<36}{medians[0]:>22.2f}{medians[1]:>16.2f}")
    limit = MAX_RATIO * plain["total"] + ALLOWANCE_SECONDS
    ratio = dagster["total"] / plain["total"]
    print(
        f"dagster / plain: {ratio:.2f}x, {dagster['total'] - plain['total']:+.1f} s "
        f"(goal: <= {MAX_RATIO:g}x + {ALLOWANCE_SECONDS:g} s = {limit:.1f} s)"
    )

    problems = []
    if dagster["total"] > limit:
        problems.append(f"{DAGSTER} {dagster['total']:.1f} s > {limit:.1f} s")
    checks = {name: {tuple(r["checks"]) for r in runs} for name, runs in results.items()}
    same_checks = len(checks[DAGSTER] | checks[PLAIN]) == 1
    if not same_checks:
        problems.append(f"the checks differ: {checks}")
    aucs = [r["holdout_auc"] for runs in results.values() for r in runs]
    auc_spread = max(aucs) - min(aucs)
    if auc_spread > AUC_TOLERANCE or any(
        r["champion"] != "1" for runs in results.values() for r in runs
    ):
        problems.append(f"the outcomes differ: AUC spread {auc_spread:.1e}")
    (check_list,) = checks[PLAIN] if same_checks else [()]
    print(
        f"both: {len(check_list)} checks, champion v1, holdout AUC {aucs[0]:.4f} "
        f"(spread {auc_spread:.1e})"
    )
    recorder.add(
        Figure(
            f"full lifecycle, one run ({len(LIFECYCLE)} assets, {len(check_list)} checks)",
            dagster["total"],
            "s",
            plain["total"],
            PLAIN,
            goal=f"<= {MAX_RATIO:g}x {PLAIN} + {ALLOWANCE_SECONDS:g} s",
            limit=limit,
            met=dagster["total"] <= limit,
            note=f"process start to exit; in-process executor; fastest of {rounds}",
        ),
        Figure(
            "the steps alone (inside the run)",
            dagster["all steps"],
            "s",
            plain["all steps"],
            "the same functions",
            note="information: Dagster's step bookkeeping and IO manager",
        ),
        Figure(
            "same checks, champion and holdout AUC",
            auc_spread,
            goal=f"AUC spread <= {AUC_TOLERANCE:g}",
            limit=AUC_TOLERANCE,
            met=same_checks and auc_spread <= AUC_TOLERANCE,
            plot=False,
        ),
    )
    return recorder.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
