"""``mlplatform status [--json]``: the state of every model, gate and trigger in one screen."""

from __future__ import annotations

import argparse
import os


def current_status(dataset: str | None = None):
    """The status of the configured data set's platform (environment as the CLI applies it).

    Returns:
        A :class:`~mlplatform.status.model.PlatformStatus`.
    """
    import dagster as dg

    from mlplatform.datasets.spec import load_spec
    from mlplatform.definitions import defs
    from mlplatform.defs.training.resources import MLflowResource
    from mlplatform.lifecycle import apply_environment
    from mlplatform.redaction import redact_url
    from mlplatform.status.collect import collect

    apply_environment(dataset)
    spec = load_spec(os.environ["MLPLATFORM_DATASET"])
    tracking = MLflowResource(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    with dg.DagsterInstance.get() as instance:
        return collect(
            tracking.client(),
            instance,
            defs,
            dataset=spec.name,
            model_name=tracking.model_name(spec.name),
            dagster_home=os.environ["DAGSTER_HOME"],
            tracking_uri=redact_url(os.environ["MLFLOW_TRACKING_URI"]),
        )


def status(args: argparse.Namespace) -> int:
    """Prints the status; exits 0, or 1 with ``--check`` when something needs a person."""
    from mlplatform.status.render import render_json, render_text

    state = current_status(args.dataset)
    print(render_json(state) if args.json else render_text(state))
    return 1 if args.check and state.attention else 0


def add_status_command(commands) -> None:
    """Adds ``status`` to the ``mlplatform`` sub-commands."""
    parser = commands.add_parser(
        "status", help="models, canary, drift, triggers and what waits for a person"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when something needs attention"
    )
    parser.add_argument("--dataset", help="data set spec name or YAML path")
    parser.set_defaults(func=status)
