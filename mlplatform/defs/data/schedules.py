import dagster as dg

from mlplatform.defs.data.partitions import daily_partitions

daily_data_job = dg.define_asset_job(
    name="daily_data_job",
    selection=dg.AssetSelection.assets("raw_data", "validated_data"),
    partitions_def=daily_partitions,
    description="Load one day of data and run it through the data checks; backfill it by range.",
)

daily_ingest_schedule = dg.build_schedule_from_partitioned_job(
    daily_data_job,
    name="daily_ingest_schedule",
    hour_of_day=1,
    description="Every day at 01:00 UTC, load and validate the day that just ended.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
