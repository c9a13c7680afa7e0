import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.monitoring.resources import DriftPolicy
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.ml.registry import CHAMPION, version_for_alias


def _newest_day(instance: dg.DagsterInstance):
    """The newest validated day: its partition, data version and stored path."""
    days = instance.get_materialized_partitions(dg.AssetKey("validated_data"))
    if not days:
        return None
    day = max(days)
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("validated_data"), asset_partitions=[day]),
        limit=1,
    ).records
    metadata = record.asset_materialization.metadata
    return day, metadata["data_version"].value, metadata["path"].value


def _log_report(mlflow_tracking: MLflowResource, client, run_id: str, day: str, report, figure):
    """Logs the day's PSI chart and table on the champion's run; returns the chart's URI."""
    folder = f"drift/{day}"
    # Overwrites the same files when repeated (a re-delivered day), so retries are safe.
    mlflow_tracking.retrying(
        f"log {folder}/psi.png on run {run_id}",
        lambda: client.log_figure(run_id, figure, f"{folder}/psi.png"),
    )
    mlflow_tracking.retrying(
        f"log {folder}/psi.md on run {run_id}",
        lambda: client.log_text(run_id, report.to_markdown(), f"{folder}/psi.md"),
    )
    return f"runs:/{run_id}/{folder}/psi.png"


def _report_event(report, day: str, champion: str, decision: str, figure, chart_artifact: str):
    """The drift_report materialisation: the PSI table, its chart and where MLflow keeps it."""
    from mlplatform.ml.plots import markdown_image, png_bytes

    chart = png_bytes(figure)
    return dg.AssetMaterialization(
        asset_key="drift_report",
        description=decision,
        metadata={
            "day": day,
            "champion_version": champion,
            "rows": report.rows,
            "max_psi": report.max_psi,
            "max_feature": report.max_feature,
            "decision": decision,
            "features": dg.MetadataValue.md(report.to_markdown()),
            "chart": dg.MetadataValue.md(markdown_image(chart, "PSI per feature")),
            "chart_artifact": chart_artifact,
        },
    )


@dg.sensor(
    job_name="retrain_job",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains once when the newest validated day drifted from the champion's "
    "training data (PSI above the threshold on any feature).",
)
def psi_drift_sensor(
    context: dg.SensorEvaluationContext,
    dataset: DatasetResource,
    mlflow_tracking: MLflowResource,
    drift: DriftPolicy,
):
    """Measures PSI per feature on each new validated day; one retrain per drift cause."""
    from mlplatform.ml.plots import psi_bar_chart
    from mlplatform.monitoring.drift import feature_psi
    from mlplatform.monitoring.profiles import load_reference_profile

    spec = dataset.spec()
    client = mlflow_tracking.client()
    name = mlflow_tracking.model_name(spec.name)
    champion = version_for_alias(client, name, CHAMPION)
    if champion is None:
        return dg.SkipReason(f"{name} has no champion yet: there is nothing to drift from")
    newest = _newest_day(context.instance)
    if newest is None:
        return dg.SkipReason("validated_data has no day yet")
    day, data_version, path = newest
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen = f"{champion}:{day}:{data_version}"
    if cursor.get("seen") == seen:
        return dg.SkipReason(f"day {day} was already checked against champion v{champion}")
    run_id = client.get_model_version(name, champion).run_id
    profile = load_reference_profile(client, run_id)
    report = feature_psi(profile, pd.read_pickle(path))
    fires, reason = report.fires(threshold=drift.psi_threshold, min_rows=drift.min_rows)
    cursor["seen"] = seen
    now = datetime.now(UTC)
    last_fired = cursor.get("last_fired")
    if (
        fires
        and last_fired
        and now - datetime.fromisoformat(last_fired) < timedelta(hours=drift.cooldown_hours)
    ):
        fires = False
        reason = (
            f"{reason}; but a drift retrain ran at {last_fired} (cooldown {drift.cooldown_hours} h)"
        )
    psi = {f: r.psi for f, r in report.features.items()}
    figure = psi_bar_chart(psi, drift.watch_threshold, drift.psi_threshold)
    chart_artifact = _log_report(mlflow_tracking, client, run_id, day, report, figure)
    event = _report_event(report, day, champion, reason, figure, chart_artifact)
    if not fires:
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(cursor), asset_events=[event])
    cursor["last_fired"] = now.isoformat()
    top = sorted(report.features.items(), key=lambda item: -item[1].psi)[:5]
    tags = {
        "trigger": "psi_drift",
        "drift/day": day,
        "drift/champion_version": champion,
        "drift/max_psi": f"{report.max_psi:.4f}",
        "drift/max_feature": report.max_feature,
        **{f"drift/psi.{feature}": f"{r.psi:.4f}" for feature, r in top},
    }
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"drift:{name}:v{champion}:{day}:{data_version}", tags=tags)
        ],
        cursor=json.dumps(cursor),
        asset_events=[event],
    )
