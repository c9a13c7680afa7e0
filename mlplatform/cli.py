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
    print(f"  decision: {'PROMOTE' if evaluation.should_promote else 'KEEP'} - {evaluation.reason}")
    if deployment is not None:
        print(
            f"  champion now: v{deployment.champion_version} "
            f"(previous: {deployment.previous_version or 'none'})"
        )


def demo(args: argparse.Namespace) -> int:
    """Runs the whole lifecycle twice (a first champion, then a challenger) and scores rows."""
    from mlplatform.lifecycle import apply_environment, run_graph, training_config

    apply_environment(args.dataset)
    dataset = os.environ["MLPLATFORM_DATASET"]
    print(
        f"mlplatform demo: data set '{dataset}', Dagster instance {os.environ['DAGSTER_HOME']}, "
        f"MLflow {os.environ['MLFLOW_TRACKING_URI']}"
    )
    outcome = None
    for step, estimator in enumerate(("gradient_boosting", "logistic_regression"), start=1):
        started = time.perf_counter()
        print(f"\n[{step}/2] materialising raw_data -> deployed_model (challenger: {estimator})")
        outcome = run_graph(training_config(estimator))
        if not outcome.success:
            print(f"  run {outcome.run_id} FAILED:\n{outcome.failure}", file=sys.stderr)
            return 1
        raw = outcome.values["raw_data"]
        features = outcome.values["features"]
        print(
            f"  run {outcome.run_id} succeeded in {time.perf_counter() - started:.1f}s: "
            f"{len(raw)} rows, train data {features.train_version}, "
            f"holdout {features.holdout_version} ({len(features.holdout)} rows)"
        )
        _print_evaluation(outcome.values["evaluation"], outcome.values.get("deployed_model"))
    return _score_champion(outcome)


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
    """Deletes the frozen holdout of a data set; the next run draws and records a new one."""
    from mlplatform.datasets.spec import load_spec
    from mlplatform.lifecycle import apply_environment
    from mlplatform.ml.holdout import reset_holdout as reset
    from mlplatform.paths import resolve_in_project

    apply_environment(args.dataset)
    name = load_spec(os.environ["MLPLATFORM_DATASET"]).name
    store = resolve_in_project(os.environ["MLPLATFORM_HOME"]) / name / "holdout"
    print(f"{'removed' if reset(store) else 'no'} holdout snapshot at {store}")
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
    holdout = commands.add_parser("reset-holdout", help="re-draw the fixed holdout on next run")
    holdout.add_argument("--dataset")
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
