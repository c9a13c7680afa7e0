"""``mlplatform approve | reject | rollback | serve``: the deployment side of the command line."""

from __future__ import annotations

import argparse
import os
import sys
import time

# Exit status of a command that lost a race (a decision, release or rollback got there first).
CONFLICT_EXIT = 3


def _registry():
    """The configured data set's registered model name and an MLflow client."""
    from mlplatform.datasets.spec import load_spec
    from mlplatform.defs.training.resources import MLflowResource

    tracking = MLflowResource(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    name = tracking.model_name(load_spec(os.environ["MLPLATFORM_DATASET"]).name)
    return name, tracking.client()


def decide(args: argparse.Namespace) -> int:
    """Records an approval or rejection of a model version (four eyes, approvers only).

    Exit codes: 0 recorded, 2 not allowed, 3 conflict (another decision got there first).
    """
    from mlplatform.deployment.approvals import ApprovalConflict, ApprovalError, record_decision
    from mlplatform.lifecycle import apply_environment

    apply_environment(args.dataset)
    name, client = _registry()
    try:
        approval = record_decision(
            client,
            name,
            args.version,
            args.status,
            args.by,
            args.reason,
            os.environ.get("MLPLATFORM_APPROVERS", ""),
            supersede=args.supersede,
        )
    except ApprovalConflict as exc:
        print(f"mlplatform {args.command}: conflict: {exc}", file=sys.stderr)
        return CONFLICT_EXIT
    except ApprovalError as exc:
        print(f"mlplatform {args.command}: {exc}", file=sys.stderr)
        return 2
    print(
        f"{name} v{approval.version} {approval.status} by {approval.by} at {approval.at}: "
        f"{approval.reason}\nRecorded as tags on the model version. If the latest deploy step "
        "waits for this version, approval_sensor resumes it within 30 s under the daemon "
        "(`make dev`); otherwise run deploy_job."
    )
    return 0


def approve_waiting_deploy(outcome):
    """Demo: approves a deploy that waits (as the first configured approver) and resumes it
    the way the daemon would, through approval_sensor and deploy_job.

    Returns:
        The outcome, with ``deployed_model`` replaced by the resumed deploy's; None on failure.
    """
    from dataclasses import replace

    from mlplatform.deployment.approvals import TRIGGERED_BY_TAG, parse_approvers, record_decision
    from mlplatform.lifecycle import run_job, tick_run_tags, tick_sensor

    deployment = outcome.values.get("deployed_model")
    if deployment is None or deployment.status != "awaiting_approval":
        return outcome
    name, client = _registry()
    version = deployment.candidate_version
    trainer = client.get_model_version(name, version).tags.get(TRIGGERED_BY_TAG, "unknown")
    approver = parse_approvers(os.environ.get("MLPLATFORM_APPROVERS", ""))[0]
    reason = "demo: AUC gate, slices, behaviour and serving parity passed"
    record_decision(
        client, name, version, "approved", approver, reason, os.environ["MLPLATFORM_APPROVERS"]
    )
    print(f"  approved v{version} as {approver} (training was started by {trainer}: four eyes)")
    tick = tick_sensor("approval_sensor")
    if len(tick.run_requests) != 1:
        print(f"  approval_sensor did not resume the deploy: {tick.skip_reason}", file=sys.stderr)
        return None
    tags = tick_run_tags("approval_sensor", tick.run_requests[0])
    resumed = run_job("deploy_job", tags=tags)
    if not resumed.success:
        print(f"  deploy run {resumed.run_id} FAILED:\n{resumed.failure}", file=sys.stderr)
        return None
    deployed = resumed.values["deployed_model"]
    print(
        f"  approval_sensor resumed the deploy ({deployed.status}): champion now "
        f"v{deployed.champion_version} (previous: {deployed.previous_version or 'none'})"
    )
    return replace(outcome, values={**outcome.values, "deployed_model": deployed})


def _wait_until_served(url: str, version: str, timeout: float) -> float | None:
    """Seconds until the serving process reports ``version`` as champion (None: it did not)."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).json().get("champion_version") == version:
                return time.perf_counter() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.05)
    return None


def roll_back_under_lease(client, name: str, by: str | None, reason: str):
    """``roll_back`` holding the deploy lease, as every rollback must.

    No canary step, promotion or release moves aliases meanwhile, and a tick that decided before
    the rollback is refused afterwards (its state is stale).

    Raises:
        ConflictError: The lease stayed held by another writer.
        RollbackError: Nothing to roll back to.
    """
    from mlplatform.deployment.canary_state import DEPLOY_LEASE, LEASE_WAIT_SECONDS
    from mlplatform.deployment.locks import held
    from mlplatform.deployment.rollback import roll_back

    holder = f"rollback by {by or 'CLI'}"
    with held(client, name, DEPLOY_LEASE, holder, wait_seconds=LEASE_WAIT_SECONDS):
        return roll_back(client, name, by=by, reason=reason)


def rollback(args: argparse.Namespace) -> int:
    """Makes ``previous`` the champion again (model and preprocessing: one artefact).

    Exit codes: 0 served, 1 not served in time, 2 nothing to roll back to, 3 conflict.
    """
    from mlplatform.deployment.locks import ConflictError
    from mlplatform.deployment.rollback import RollbackError
    from mlplatform.lifecycle import apply_environment

    apply_environment(args.dataset)
    started = time.perf_counter()
    name, client = _registry()
    try:
        result = roll_back_under_lease(client, name, args.by, args.reason)
    except ConflictError as exc:
        print(f"mlplatform rollback: conflict: {exc}", file=sys.stderr)
        return CONFLICT_EXIT
    except RollbackError as exc:
        print(f"mlplatform rollback: {exc}", file=sys.stderr)
        return 2
    switched = time.perf_counter() - started
    print(
        f"{name}: champion v{result.restored} again (was v{result.replaced}, kept as previous); "
        f"registry switched in {switched:.2f} s"
    )
    url = os.environ.get("MLPLATFORM_SERVING_URL", "").rstrip("/")
    if not url:
        print("no MLPLATFORM_SERVING_URL: serving picks the new champion up on its next poll")
        return 0
    served = _wait_until_served(url, result.restored, args.timeout)
    if served is None:
        print(
            f"{url} still does not serve v{result.restored} after {args.timeout:g} s",
            file=sys.stderr,
        )
        return 1
    print(f"{url} serves v{result.restored}: {switched + served:.2f} s end to end")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Runs the scoring server for the configured data set's registered model.

    Exit codes: 2 when MLPLATFORM_SERVING_ADMIN_TOKEN is set but unusable.
    """
    from mlplatform.lifecycle import apply_environment
    from mlplatform.serving.admin import ADMIN_TOKEN_VAR, admin_token_from_environment
    from mlplatform.serving.app import ServingSettings
    from mlplatform.serving.app import serve as run_server

    apply_environment(args.dataset)
    try:
        # Read once, at start-up: a malformed token stops the server before it serves.
        admin_token = admin_token_from_environment(os.environ)
    except ValueError as exc:
        print(f"mlplatform serve: {exc}", file=sys.stderr)
        return 2
    if admin_token is None:
        print(f"admin endpoints disabled (403): {ADMIN_TOKEN_VAR} is not set", file=sys.stderr)
    name, _ = _registry()
    from mlplatform.paths import resolve_tracking_uri

    settings = ServingSettings(
        tracking_uri=resolve_tracking_uri(os.environ["MLFLOW_TRACKING_URI"]),
        model_name=name,
        id_column=_id_column(),
        admin_token=admin_token,
    )
    run_server(settings, host=args.host, port=args.port)
    return 0


def _id_column() -> str | None:
    from mlplatform.datasets.spec import load_spec

    return load_spec(os.environ["MLPLATFORM_DATASET"]).id_column


def add_commands(commands) -> None:
    """Adds approve, reject, rollback and serve to the ``mlplatform`` sub-commands."""
    for command, status, verb in (
        ("approve", "approved", "approve"),
        ("reject", "rejected", "reject"),
    ):
        parser = commands.add_parser(command, help=f"{verb} a model version for deployment")
        parser.add_argument("version", help="model version, e.g. 7")
        parser.add_argument("--by", required=True, help="your name (must be an approver)")
        parser.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        parser.add_argument(
            "--supersede",
            action="store_true",
            help="replace the decision in force (needed to approve over a rejection)",
        )
        parser.add_argument("--dataset")
        parser.set_defaults(func=decide, status=status)
    back = commands.add_parser("rollback", help="make the previous champion the champion again")
    back.add_argument("--reason", default="manual rollback", help="why (recorded)")
    back.add_argument("--by", default=None, help="who (default: the current user)")
    back.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for serving")
    back.add_argument("--dataset")
    back.set_defaults(func=rollback)
    server = commands.add_parser("serve", help="serve champion (and canary) over HTTP")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8080)
    server.add_argument("--dataset")
    server.set_defaults(func=serve)
