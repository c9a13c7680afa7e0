import dagster as dg

# The earliest day that can be backfilled; the newest partition is yesterday (UTC), a day
# being complete only once it is over.
FIRST_DAY = "2025-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC")
