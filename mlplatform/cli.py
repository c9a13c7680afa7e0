"""The ``mlplatform`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time


def _print_evaluation(evaluation, deployment) -> None:
    print(f"  challenger v{evaluation.challenger_version}: {evaluation.challenger.describe()}")
    if evaluation.champion is not None:
        d = evaluation.difference
        print(f"  champion   v{evaluation.champion_version}: {evaluation.champion.describe()}")
        print(f"  delta {d.delta:+.4f}, 95% CI [{d.low:+.4f}, {d.high:+.4f}]")
    tests = evaluation.tests
    if tests is not None:
        tested = [s for s in tests.slices if not s.skipped]
        print(
            f"  model tests: {len(tests.failed_slices)}/{len(tested)} slices credibly below "
            f"{tests.min_slice_auc} (Holm), {len(tests.weak_slices)} below by point estimate, "
            f"{len(tests.behaviours) - len(tests.failed_behaviours)}/{len(tests.behaviours)} "
            f"behaviours, coverage {'ok' if not tests.failed_coverage else 'FAILED'}, "
            f"ECE {tests.calibration.ece:.3f}, detectable delta "
            f"{tests.power.minimum_detectable_delta:.4f}"
        )
    print(f"  decision: {evaluation.decision} - {evaluation.reason}")
    if deployment is not None:
        print(
            f"  champion now: v{deployment.champion_version} "
            f"(previous: {deployment.previous_version or 'none'})"
        )


def _backfill_days(keys: list[str]) -> list[str]:
    """Loads and validates each day in this process; returns the days that failed."""
    from mlplatform.lifecycle import run_job

    failed = []
    started = time.perf_counter()
    for done, key in enumerate(keys, start=1):
        outcome = run_job("daily_data_job", partition_key=key)
        if not outcome.success:
            failed.append(key)
            print(f"  {key} FAILED (run {outcome.run_id}):\n{outcome.failure}", file=sys.stderr)
        print(
            f"\r  {done}/{len(keys)} days ({len(failed)} failed), "
            f"{time.perf_counter() - started:.1f}s",
            end="" if done < len(keys) else "\n",
            flush=True,
        )
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
    if failed:
        print(f"{len(failed)} day(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


DEMO_DRIFT = {"spend_multiplier": 1.5, "tenure_shift_months": 6.0}


def demo(args: argparse.Namespace) -> int:
    """Loads a training window, trains twice, then a drifted day makes the sensor retrain once."""
    from mlplatform.datasets.spec import load_spec
    from mlplatform.lifecycle import (
        apply_environment,
        run_job,
        training_config,
        window_partition_keys,
    )

    apply_environment(args.dataset)
    dataset = os.environ["MLPLATFORM_DATASET"]
    print(
        f"mlplatform demo: data set '{dataset}', Dagster instance {os.environ['DAGSTER_HOME']}, "
        f"MLflow {os.environ['MLFLOW_TRACKING_URI']}"
    )
    # The window ends the day before yesterday, so yesterday is left for the drifted batch.
    *window, drifted_day = window_partition_keys(load_spec(dataset).training_window_days + 1)
    print(f"\n[1/4] loading and validating {len(window)} day(s) {window[0]}..{window[-1]}")
    if _backfill_days(window):
        return 1
    outcome = None
    for step, estimator in enumerate(("gradient_boosting", "logistic_regression"), start=2):
        print(f"\n[{step}/4] materialising features -> deployed_model (challenger: {estimator})")
        outcome = _retrain(run_job, training_config(estimator))
        if outcome is None:
            return 1
    drift_outcome = _drift_event(dataset, drifted_day)
    if drift_outcome is False:
        return 1
    return _score_champion(drift_outcome or outcome)


def _retrain(run_job, run_config: dict | None = None, tags: dict | None = None):
    """Runs retrain_job and prints what it decided; None when the run failed."""
    started = time.perf_counter()
    outcome = run_job("retrain_job", run_config=run_config, tags=tags)
    if not outcome.success:
        print(f"  run {outcome.run_id} FAILED:\n{outcome.failure}", file=sys.stderr)
        return None
    features = outcome.values["features"]
    print(
        f"  run {outcome.run_id} succeeded in {time.perf_counter() - started:.1f}s: "
        f"window {features.window}, {len(features.train)} training rows "
        f"({features.train_version}), holdout {features.holdout_version} "
        f"({len(features.holdout)} rows)"
    )
    _print_evaluation(outcome.values["evaluation"], outcome.values.get("deployed_model"))
    return outcome


def _drift_event(dataset: str, day: str):
    """A drifted day arrives, psi_drift_sensor fires once, its retrain runs, a re-tick does not.

    Returns:
        The retrain's outcome; None when the data set is not synthetic (no drill); False when a
        step failed.
    """
    from mlplatform.datasets.spec import load_spec
    from mlplatform.lifecycle import run_job, tick_run_tags, tick_sensor

    if load_spec(dataset).source.get("kind") != "synthetic":
        print("\n[4/4] drift drill skipped: it shifts synthetic data only")
        return None
    shifts = ", ".join(f"{k}={v}" for k, v in DEMO_DRIFT.items())
    print(f"\n[4/4] a drifted day arrives: {day} with {shifts}")
    drill = {"ops": {"raw_data": {"config": {"simulate_drift": DEMO_DRIFT}}}}
    loaded = run_job("daily_data_job", partition_key=day, run_config=drill)
    if not loaded.success:
        print(f"  loading {day} FAILED (run {loaded.run_id}):\n{loaded.failure}", file=sys.stderr)
        return False
    tick = tick_sensor("psi_drift_sensor")
    if len(tick.run_requests) != 1:
        print(f"  psi_drift_sensor did not fire: {tick.skip_reason}", file=sys.stderr)
        return False
    (request,) = tick.run_requests
    psi = {k.removeprefix("drift/psi."): v for k, v in request.tags.items() if "psi." in k}
    print(f"  psi_drift_sensor fired: run_key {request.run_key}")
    print("  PSI: " + ", ".join(f"{feature} {value}" for feature, value in psi.items()))
    outcome = _retrain(run_job, tags=tick_run_tags("psi_drift_sensor", request))
    if outcome is None:
        return False
    again = tick_sensor("psi_drift_sensor", cursor=tick.cursor)
    print(
        f"  next tick on the same day: {len(again.run_requests)} new run(s) ({again.skip_reason})"
    )
    return outcome


def _score_champion(outcome) -> int:
    import mlflow.pyfunc

    from mlplatform.defs.training.resources import MLflowResource
    from mlplatform.ml.training import model_input

    deployment = outcome.values["deployed_model"]
    MLflowResource(tracking_uri=os.environ["MLFLOW_TRACKING_URI"]).client()
    uri = f"models:/{deployment.model_name}@champion"
    model = mlflow.pyfunc.load_model(uri)
    from mlplatform.datasets.spec import load_spec

    spec = load_spec(os.environ["MLPLATFORM_DATASET"])
    rows = model_input(outcome.values["features"].holdout.head(3), spec)
    scores = model.predict(rows)
    print(f"\nScored 3 raw rows with {uri} (v{deployment.champion_version}):")
    for row_id, score in zip(
        outcome.values["features"].holdout[spec.id_column].head(3), scores, strict=False
    ):
        print(f"  {row_id}: churn probability {float(score[1]):.3f}")
    print(
        "\nLook closer: `make dev`, then http://127.0.0.1:3000 (Assets -> evaluation), and "
        "`make mlflow-ui` for the MLflow runs and registry."
    )
    return 0


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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    import warnings

    import dagster as dg

    # data_version on Output is marked beta; the warning says nothing an operator can act on.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
