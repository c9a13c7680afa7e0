import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from mlplatform.defs.training.assets import RETRAIN_RUN_TAGS

DEFAULT_RETRAIN_CRON = "0 3 * * 1"
DEFAULT_RETRAIN_TIMEZONE = "UTC"
CRON_VARIABLE = "MLPLATFORM_RETRAIN_CRON"
TIMEZONE_VARIABLE = "MLPLATFORM_RETRAIN_TIMEZONE"

retrain_job = dg.define_asset_job(
    name="retrain_job",
    selection=dg.AssetSelection.assets("features").downstream(),
    description="Train on the rolling window of validated days, evaluate, and deploy through "
    "the gates.",
    tags=RETRAIN_RUN_TAGS,
)


def build_weekly_retrain_schedule(
    cron: str = DEFAULT_RETRAIN_CRON, timezone: str = DEFAULT_RETRAIN_TIMEZONE
) -> dg.ScheduleDefinition:
    """The calendar trigger of ``retrain_job``: features -> deployed_model, deploy gated.

    Args:
        cron: When to retrain (five-field cron), default Monday 03:00.
        timezone: IANA time zone of ``cron``, default UTC.

    Raises:
        ValueError: ``cron`` or ``timezone`` is invalid; the message names its variable.
    """
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{TIMEZONE_VARIABLE}='{timezone}' is not an IANA time zone (e.g. UTC, Europe/Berlin)"
        ) from exc
    try:
        return dg.ScheduleDefinition(
            name="weekly_retrain_schedule",
            job=retrain_job,
            cron_schedule=cron,
            execution_timezone=timezone,
            description=f"Retrain on '{cron}' ({timezone}) to follow gradual concept drift; "
            "deployed_model moves only when the evaluation's blocking checks pass.",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    except dg.DagsterInvalidDefinitionError as exc:
        raise ValueError(
            f"{CRON_VARIABLE}='{cron}' is not a valid cron expression (e.g. '0 3 * * 1' for "
            "Mondays at 03:00)"
        ) from exc


@dg.definitions
def weekly_retrain() -> dg.Definitions:
    # A schedule's cron is part of its definition, so it is read when the code location loads.
    return dg.Definitions(
        schedules=[
            build_weekly_retrain_schedule(
                os.environ.get(CRON_VARIABLE) or DEFAULT_RETRAIN_CRON,
                os.environ.get(TIMEZONE_VARIABLE) or DEFAULT_RETRAIN_TIMEZONE,
            )
        ]
    )
