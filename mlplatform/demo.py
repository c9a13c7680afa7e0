"""``mlplatform demo``: the whole lifecycle on the embedded default, one step after another.

Data: a 30-day window, validated day by day. Models: a quick baseline becomes champion after
an approval; a better challenger passes its gates, is approved and released through a canary
(5% -> 25% -> 100%) to a real ``mlplatform serve``; a broken release is rolled back by the canary
controller; a drifted day makes the drift sensor retrain once; a manual rollback is timed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

DEMO_DRIFT = {"spend_multiplier": 1.5, "tenure_shift_months": 6.0}
# A deliberately small first model, so that the full one has something to beat.
BASELINE = {"estimator": "gradient_boosting", "max_iter": 15}
STEPS = 7


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
            f"{tests.min_slice_auc} (Holm), "
            f"{len(tests.behaviours) - len(tests.failed_behaviours)}/{len(tests.behaviours)} "
            f"behaviours, coverage {'ok' if not tests.failed_coverage else 'FAILED'}, "
            f"ECE {tests.calibration.ece:.3f}"
        )
    print(f"  decision: {evaluation.decision} - {evaluation.reason}")
    if deployment is not None and deployment.status == "awaiting_approval":
        print(f"  deploy: v{deployment.candidate_version} waits for approval")
    elif deployment is not None:
        print(
            f"  champion now: v{deployment.champion_version} "
            f"(previous: {deployment.previous_version or 'none'})"
        )


# The demo's progress display while run_demo runs (steps done, the current one as its note).
_progress = None


def _step(number: int, text: str) -> None:
    print(f"\n[{number}/{STEPS}] {text}")
    if _progress is not None:
        _progress.update(completed=number - 1, note=text.split(":")[0][:48])


def _retrain(run_config: dict | None = None, tags: dict | None = None):
    """retrain_job, then the approval and canary it may need; None when something failed."""
    from mlplatform.deploy_commands import approve_waiting_deploy
    from mlplatform.lifecycle import run_job

    started = time.perf_counter()
    outcome = run_job("retrain_job", run_config=run_config, tags=tags)
    if not outcome.success:
        print(f"  run {outcome.run_id} FAILED:\n{outcome.failure}", file=sys.stderr)
        return None
    features = outcome.values["features"]
    print(
        f"  run {outcome.run_id} succeeded in {time.perf_counter() - started:.1f}s: "
        f"window {features.window}, {len(features.train)} training rows, holdout "
        f"{features.holdout_version} ({len(features.holdout)} rows)"
    )
    _print_evaluation(outcome.values["evaluation"], outcome.values.get("deployed_model"))
    return approve_waiting_deploy(outcome)


def _follow_canary(outcome, rows) -> bool:
    """Drives a canary the deploy started (if any) to its end; False when it did not finish."""
    from mlplatform.demo_release import drive_canary, serving_url
    from mlplatform.deploy_commands import _registry

    deployment = outcome.values.get("deployed_model")
    if deployment is None or deployment.status != "canary":
        return True
    name, client = _registry()
    print(f"  canary v{deployment.candidate_version} under generated traffic:")
    state = drive_canary(client, name, serving_url(), rows)
    return state.status in ("promoted", "rolled_back")


def _drift_event(dataset: str, day: str, rows) -> bool:
    """A drifted day arrives, psi_drift_sensor fires once, its retrain runs, a re-tick does not."""
    from mlplatform.lifecycle import run_job, tick_run_tags, tick_sensor

    shifts = ", ".join(f"{k}={v}" for k, v in DEMO_DRIFT.items())
    print(f"  a drifted day arrives: {day} with {shifts}")
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
    tags = tick_run_tags("psi_drift_sensor", request)
    outcome = _retrain(tags=tags)
    if outcome is None or not _follow_canary(outcome, rows):
        return False
    again = tick_sensor("psi_drift_sensor", cursor=tick.cursor)
    print(
        f"  next tick on the same day: {len(again.run_requests)} new run(s) ({again.skip_reason})"
    )
    return True


def _release_steps(dataset: str, drifted_day: str, outcome) -> int:
    """Steps 3 to 7, with ``mlplatform serve`` running."""
    from mlplatform.datasets.spec import load_spec
    from mlplatform.demo_release import (
        DEMO_CANARY,
        broken_category,
        demo_plan,
        drive_canary,
        register_broken_release,
        request_rows,
        running_server,
        send_traffic,
    )
    from mlplatform.deploy_commands import _registry, _wait_until_served, roll_back_under_lease
    from mlplatform.deployment.canary_state import REASON_TAG, start_canary
    from mlplatform.deployment.rollback import RollbackError
    from mlplatform.lifecycle import training_config

    spec = load_spec(dataset)
    rows = request_rows(outcome.values["features"].holdout, spec)
    name, client = _registry()
    with running_server(Path(os.environ["MLPLATFORM_HOME"]) / "demo") as url:
        # From here on a promotion is a canary the demo can watch in seconds, not minutes.
        os.environ.update({"MLPLATFORM_SERVING_URL": url, **DEMO_CANARY})
        _step(
            3,
            f"mlplatform serve at {url}: champion v{outcome.values['deployed_model'].champion_version}",
        )
        print(f"  {send_traffic(url, rows, 0, 20)} for 20 requests")
        _step(4, "a better challenger (logistic regression): gates, approval, canary")
        better = _retrain(training_config("logistic_regression"))
        if better is None or not _follow_canary(better, rows):
            return 1
        column, value = broken_category(spec)
        _step(5, f"a broken release (crashes on {column} '{value}') straight to canary")
        version = register_broken_release(client, name, column, value)
        start_canary(client, name, version, demo_plan())
        state = drive_canary(client, name, url, rows)
        tags = client.get_model_version(name, version).tags
        print(f"  v{version} {state.status}: {tags.get(REASON_TAG, '')}")
        if state.status != "rolled_back":
            return 1
        _step(6, "drift: the sensor retrains once")
        if spec.source.get("kind") != "synthetic":
            print("  drift drill skipped: it shifts synthetic data only")
        elif not _drift_event(dataset, drifted_day, rows):
            return 1
        _step(7, "manual rollback: `mlplatform rollback`")
        started = time.perf_counter()
        try:
            result = roll_back_under_lease(client, name, None, "demo: manual rollback")
        except RollbackError as exc:
            print(f"  {exc}")
            return 0
        served = _wait_until_served(url, result.restored, 30.0)
        print(
            f"  champion v{result.restored} again (v{result.replaced} is previous); served by "
            f"{url} after {time.perf_counter() - started:.2f} s end to end"
            if served is not None
            else f"  {url} did not serve v{result.restored} within 30 s"
        )
        print(f"  {send_traffic(url, rows, 0, 20)} for 20 requests")
    return 0 if served is not None else 1


def _demo_steps(dataset: str, window: list[str], drifted_day: str) -> int:
    """Steps 1 to 7; returns the exit code."""
    from mlplatform.cli import _backfill_days

    _step(1, f"loading and validating {len(window)} day(s) {window[0]}..{window[-1]}")
    if _backfill_days(window):
        return 1
    _step(2, f"a baseline model ({BASELINE}): gates, approval, champion")
    outcome = _retrain({"ops": {"challenger_model": {"config": BASELINE}}})
    if outcome is None:
        return 1
    code = _release_steps(dataset, drifted_day, outcome)
    if _progress is not None and code == 0:
        _progress.update(completed=STEPS, note="done")
    return code


def run_demo(dataset: str | None) -> int:
    """Runs every step; returns the exit code."""
    global _progress
    from mlplatform.datasets.spec import load_spec
    from mlplatform.lifecycle import apply_environment, window_partition_keys
    from mlplatform.progress import progress

    apply_environment(dataset)
    os.environ["MLPLATFORM_SERVING_URL"] = ""  # no server yet: the baseline is promoted directly
    dataset = os.environ["MLPLATFORM_DATASET"]
    print(
        f"mlplatform demo: data set '{dataset}', Dagster instance {os.environ['DAGSTER_HOME']}, "
        f"MLflow {os.environ['MLFLOW_TRACKING_URI']}"
    )
    # The window ends the day before yesterday, so yesterday is left for the drifted batch.
    *window, drifted_day = window_partition_keys(load_spec(dataset).training_window_days + 1)
    with progress("demo", total=STEPS, unit="steps") as _progress:
        try:
            code = _demo_steps(dataset, window, drifted_day)
        finally:
            _progress = None
    if code == 0:
        from mlplatform.status.command import current_status
        from mlplatform.status.render import render_text

        print("\n`mlplatform status` now:\n" + render_text(current_status()))
    print(
        "\nLook closer: `make dev`, then http://127.0.0.1:3000 (Assets -> evaluation, "
        "deployed_model), and `make mlflow-ui` for the runs, versions, approvals and canary tags."
    )
    return code
