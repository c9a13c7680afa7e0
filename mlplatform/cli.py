"""The ``mlplatform`` command line."""

from __future__ import annotations

import argparse
import os
import sys

from mlplatform.deploy_commands import add_commands
from mlplatform.load_command import add_load_command
from mlplatform.status.command import add_status_command


def _backfill_days(keys: list[str]) -> list[str]:
    """Loads and validates each day in this process; returns the days that failed."""
    from mlplatform.lifecycle import run_job
    from mlplatform.progress import progress

    failed = []
    with progress("backfill", total=len(keys), unit="days") as bar:
        for key in keys:
            outcome = run_job("daily_data_job", partition_key=key)
            if not outcome.success:
                failed.append(key)
                print(f"  {key} FAILED (run {outcome.run_id}):\n{outcome.failure}", file=sys.stderr)
            bar.update(advance=1, note=f"{key}, {len(failed)} failed")
    return failed


def backfill(args: argparse.Namespace) -> int:
    """Materialises raw_data and validated_data (with their checks) for a range of days."""
    from mlplatform.lifecycle import apply_environment, partition_keys_between

    apply_environment(args.dataset)
    try:
        keys = partition_keys_between(args.start, args.end)
    except ValueError as exc:
        print(f"mlplatform backfill: {exc}", file=sys.stderr)
        return 2
    print(f"backfilling daily_data_job for {len(keys)} days {keys[0]}..{keys[-1]}")
    failed = _backfill_days(keys)
    print(f"{len(keys) - len(failed)}/{len(keys)} days loaded and validated ({len(failed)} failed)")
    if failed:
        print(f"{len(failed)} day(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def demo(args: argparse.Namespace) -> int:
    """The whole lifecycle on the embedded default (see ``mlplatform.demo``)."""
    from mlplatform.demo import run_demo

    return run_demo(args.dataset)


def reset_holdout(args: argparse.Namespace) -> int:
    """Retires the frozen holdout of a data set (recorded); the next run draws a new one."""
    import getpass

    from mlplatform.datasets.spec import load_spec
    from mlplatform.lifecycle import apply_environment
    from mlplatform.ml.holdout import reset_holdout as reset
    from mlplatform.paths import resolve_in_project

    apply_environment(args.dataset)
    name = load_spec(os.environ["MLPLATFORM_DATASET"]).name
    store = resolve_in_project(os.environ["MLPLATFORM_HOME"]) / name / "holdout"
    retired = reset(store, by=args.by or getpass.getuser(), reason=args.reason)
    if retired is None:
        print(f"no holdout snapshot at {store}; the next training run draws one")
    else:
        print(f"retired holdout {retired} at {store} (recorded in {store / 'history.jsonl'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all sub-commands."""
    parser = argparse.ArgumentParser(prog="mlplatform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="run the whole lifecycle on the embedded default")
    run_demo.add_argument(
        "--dataset",
        help="data set spec name or YAML path (default: $MLPLATFORM_DATASET or synthetic_churn)",
    )
    run_demo.set_defaults(func=demo)
    run_backfill = commands.add_parser(
        "backfill", help="load and validate a range of days here, without a daemon"
    )
    run_backfill.add_argument("--from", dest="start", required=True, help="first day YYYY-MM-DD")
    run_backfill.add_argument("--to", dest="end", required=True, help="last day YYYY-MM-DD")
    run_backfill.add_argument("--dataset")
    run_backfill.set_defaults(func=backfill)
    holdout = commands.add_parser("reset-holdout", help="re-draw the fixed holdout on next run")
    holdout.add_argument("--dataset")
    holdout.add_argument("--reason", required=True, help="why the holdout changes (recorded)")
    holdout.add_argument("--by", help="who resets it (default: the current user)")
    holdout.set_defaults(func=reset_holdout)
    add_commands(commands)
    add_load_command(commands)
    add_status_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    import warnings

    import dagster as dg

    # data_version on Output is marked beta; the warning says nothing an operator can act on.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from mlplatform.datasets.spec import SpecError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `mlplatform status | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except SpecError as exc:  # an unknown data set or a bad spec: the operator's input, no trace
        command = getattr(args, "command", None) or "mlplatform"
        print(f"mlplatform {command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
