"""Pictures in the Dagster UI and MLflow: the canary timeline figure, the evaluation's ROC with
its CI and slice table, the drift report's PSI chart."""

from __future__ import annotations

import json
from dataclasses import replace

import dagster as dg
import numpy as np
import pytest
from mlflow import MlflowClient
from pictures import decoded_png, inline_png

from mlplatform.defs.monitoring.resources import DriftPolicy
from mlplatform.defs.monitoring.sensors import psi_drift_sensor
from mlplatform.deployment.canary import decide, initial_state
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.metrics import ArmCounts
from mlplatform.deployment.timeline_plot import CanaryTick, canary_timeline_figure
from mlplatform.ml.metrics import AucEstimate
from mlplatform.ml.plots import png_bytes, psi_bar_chart, roc_figure
from mlplatform_tests.conftest import load_days, retrain

NAME = "mlplatform-synthetic_churn"  # what the code location calls the synthetic_churn model
T0 = 1_780_000_000.0


# --- the pure figure ---------------------------------------------------------------------------


def _ticks() -> list[CanaryTick]:
    """Hold, advance to 25%, hold, advance to 100%, roll back: cumulative counts per tick."""
    rows = [  # action, weight before, after, canary req/err, champion req/err, canary p99
        ("hold", 0.05, 0.05, 0, 0, 0, 0, None),
        ("advance", 0.05, 0.25, 40, 0, 760, 8, 0.012),
        ("hold", 0.25, 0.25, 240, 2, 1360, 14, 0.013),
        ("advance", 0.25, 1.0, 440, 4, 1960, 20, 0.013),
        ("rollback", 1.0, 0.0, 840, 40, 1960, 20, 0.020),
    ]
    return [
        CanaryTick(T0 + 30 * (i + 1), a, wb, w, cr, ce, br, be, p99, None if p99 is None else 0.011)
        for i, (a, wb, w, cr, ce, br, be, p99) in enumerate(rows)
    ]


def test_the_timeline_draws_the_weight_steps_the_error_rate_per_arm_and_the_decisions():
    figure = canary_timeline_figure(
        _ticks(),
        started_at=T0,
        events=[{"time": T0 + 75, "event": "counter_reset"}, {"time": T0, "event": "started"}],
        max_error_rate=0.05,
    )
    weight_axes, error_axes, p99_axes = figure.axes
    weight = weight_axes.get_lines()[0]
    assert weight.get_drawstyle() == "steps-post"
    assert list(weight.get_xdata()) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]  # minutes since the start
    assert list(weight.get_ydata()) == [5.0, 5.0, 25.0, 25.0, 100.0, 0.0]
    by_label = {line.get_label(): line for line in error_axes.get_lines()}
    canary = by_label["canary (840 req)"]
    champion = by_label["champion (1960 req)"]
    # An arm without requests yet has no rate: the first tick is not drawn as 0%.
    assert list(canary.get_xdata()) == [1.0, 1.5, 2.0, 2.5]
    assert np.allclose(canary.get_ydata(), [0.0, 100 * 2 / 240, 100 * 4 / 440, 100 * 40 / 840])
    champion_rates = [100 * 8 / 760, 100 * 14 / 1360, 100 * 20 / 1960, 100 * 20 / 1960]
    assert np.allclose(champion.get_ydata(), champion_rates)
    ceiling = [line for line in error_axes.get_lines() if line.get_label() == "ceiling"]
    assert list(ceiling[0].get_ydata()) == [5.0, 5.0]
    p99 = {line.get_label() for line in p99_axes.get_lines()}
    assert {label for label in p99 if not label.startswith("_")} == {"canary", "champion"}
    # Two advances, the rollback and the serving restart are marked; "started" and holds not.
    labels = sorted(text.get_text() for text in weight_axes.texts)
    assert labels == ["100%", "25%", "restart", "rollback"]
    marked = sorted(line.get_xdata()[0] for line in weight_axes.get_lines()[1:])
    assert marked == [1.0, 1.25, 2.0, 2.5]
    assert p99_axes.get_xlabel() == "minutes since the canary started"
    png = png_bytes(figure)
    assert decoded_png(png).shape[:2] == (414, 540)
    assert len(png) < 15_000  # a 64-colour palette: small enough for every observation


def test_without_latency_the_timeline_has_two_panels_and_a_single_tick_draws():
    (tick,) = [replace(t, canary_p99_seconds=None, champion_p99_seconds=None) for t in _ticks()[:1]]
    figure = canary_timeline_figure([tick])
    assert len(figure.axes) == 2
    assert figure.axes[-1].get_xlabel() == "seconds since the canary started"
    decoded_png(png_bytes(figure))
    with pytest.raises(ValueError, match="at least one tick"):
        canary_timeline_figure([])


def test_a_tick_comes_from_a_decision_and_survives_json():
    plan = CanaryPlan(min_requests=10, min_dwell_seconds=0)
    state = initial_state(plan, NAME, "2", "1", T0)
    baseline = decide(plan, state, {"canary": ArmCounts(0), "champion": ArmCounts(100)}, T0 + 10)
    scrape = {"canary": ArmCounts(50, 1), "champion": ArmCounts(1100, 10)}
    decision = decide(plan, baseline.new_state, scrape, T0 + 40)
    tick = CanaryTick.from_decision(decision)
    assert (tick.action, tick.weight_before, tick.weight, tick.time) == (
        "advance",
        0.05,
        0.25,
        T0 + 40,
    )
    assert (tick.canary_requests, tick.canary_errors) == (50, 1)
    assert (tick.champion_requests, tick.champion_errors) == (1000, 10)
    assert CanaryTick.from_dict(json.loads(json.dumps(tick.to_dict()))) == tick


# --- ROC and PSI figures -----------------------------------------------------------------------


def test_the_roc_legend_carries_each_auc_with_its_ci_and_the_psi_chart_its_thresholds():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 400)
    curves = {
        "challenger v2": (
            labels + rng.normal(0, 0.8, 400),
            AucEstimate(0.81, 0.02, 0.77, 0.85, 1, 1),
        ),
        "champion v1": (
            labels + rng.normal(0, 1.2, 400),
            AucEstimate(0.71, 0.02, 0.67, 0.75, 1, 1),
        ),
    }
    legend = [t.get_text() for t in roc_figure(labels, curves).axes[0].get_legend().get_texts()]
    assert legend == ["challenger v2: 0.810 [0.770, 0.850]", "champion v1: 0.710 [0.670, 0.750]"]
    chart = psi_bar_chart({"tenure": 0.05, "monthly_spend": 0.3}, watch=0.1, drift=0.2)
    lines = {line.get_label(): line.get_xdata()[0] for line in chart.axes[0].get_lines()}
    assert lines == {"watch 0.1": 0.1, "drift 0.2": 0.2}
    decoded_png(png_bytes(chart))


# --- evaluation and drift report, through a real retrain ----------------------------------------


def test_evaluation_shows_the_roc_with_its_ci_and_the_slices_and_drift_logs_its_chart(
    platform, instance, monkeypatch
):
    import mlplatform.defs.evaluation.assets as evaluation_assets

    drawn = []

    def recording_roc_figure(*args, **kwargs):
        drawn.append(roc_figure(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(evaluation_assets, "roc_figure", recording_roc_figure)
    result = retrain(platform, instance)
    assert result.success
    challenger = result.asset_value("evaluation").challenger
    (figure,) = drawn
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == [
        f"challenger v1: {challenger.auc:.3f} [{challenger.low:.3f}, {challenger.high:.3f}]"
    ]
    record = instance.get_latest_materialization_event(dg.AssetKey("evaluation"))
    metadata = record.asset_materialization.metadata
    decoded_png(inline_png(metadata["decision"].value))
    slices = metadata["slices"].value.splitlines()
    assert slices[0].startswith("| slice | rows | pos/neg | AUC [95% CI] |")
    assert slices[1].startswith("| --- |") and slices[2].startswith("| ")

    # A new day: the drift report's chart is in the UI and on the champion's run in MLflow.
    assert all(run.success for run in load_days(platform, instance, ["2026-03-05"]))
    resources = platform.resources()
    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "dataset": resources["dataset"],
            "mlflow_tracking": resources["mlflow_tracking"],
            "drift": DriftPolicy(),
        },
    )
    (report,) = psi_drift_sensor(context).asset_events
    decoded_png(inline_png(report.metadata["chart"].value))
    run_id = result.asset_value("challenger_model").run_id
    assert report.metadata["chart_artifact"].value == f"runs:/{run_id}/drift/2026-03-05/psi.png"
    client = MlflowClient(platform.tracking_uri, platform.tracking_uri)
    logged = {a.path for a in client.list_artifacts(run_id, "drift/2026-03-05")}
    assert logged == {"drift/2026-03-05/psi.png", "drift/2026-03-05/psi.md"}
