import dagster as dg

from mlplatform.defs.training.assets import RETRAIN_RUN_TAGS

retrain_on_code_change_sensor = dg.AutomationConditionSensorDefinition(
    name="retrain_on_code_change_sensor",
    target=dg.AssetSelection.assets("challenger_model", "evaluation", "deployed_model"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=RETRAIN_RUN_TAGS,
    description="Retrains once when the training code version changes, then follows the new "
    "challenger through its gates.",
)
