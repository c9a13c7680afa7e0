import dagster as dg

# Written by psi_drift_sensor on every tick that sees a new day: a person can read the drift
# of each feature (table, chart, decision) without opening a log.
drift_report = dg.AssetSpec(
    "drift_report",
    group_name="monitoring",
    deps=["validated_data"],
    kinds={"psi"},
    description="Per-feature PSI of the newest validated day against the champion's training data.",
)
