import dagster as dg

retrain_job = dg.define_asset_job(
    name="retrain_job",
    selection=dg.AssetSelection.assets("features").downstream(),
    description="Train on the rolling window of validated days, evaluate, and deploy through "
    "the gates.",
)

weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain_schedule",
    job=retrain_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    description="Retrain every Monday 03:00 UTC to follow gradual concept drift.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
