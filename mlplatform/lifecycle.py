"""Runs the asset graph headless against the configured Dagster instance (used by the CLI)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml
from dotenv import load_dotenv

from mlplatform.paths import PROJECT_ROOT, embedded_defaults


def apply_environment(dataset: str | None = None) -> None:
    """Environment for a CLI run: the shell wins, then ``.env``, then the embedded defaults."""
    load_dotenv(PROJECT_ROOT / ".env", override=False)
    # The CLI prints its own progress; MLflow's download bars would interleave with it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if dataset:
        os.environ["MLPLATFORM_DATASET"] = dataset
    for key, value in embedded_defaults(
        os.environ.get("MLPLATFORM_DATASET", "synthetic_churn")
    ).items():
        os.environ.setdefault(key, value)
    check_database_urls(os.environ)
    ensure_dagster_home(Path(os.environ["DAGSTER_HOME"]))


# The instance's Postgres URL, password included, stays in the environment: the dagster.yaml
# written below names this variable and Dagster reads it when the instance loads.
DAGSTER_PG_URL_VAR = "MLPLATFORM_DAGSTER_PG_URL"
INSTANCE_STORAGES = ("sqlite", "postgres")

_STORAGE_CONFIG = {
    "sqlite": "# Embedded default: SQLite storage in this directory.\n",
    "postgres": (
        "# Production storage: runs, events and schedules in PostgreSQL (dagster-postgres).\n"
        f"# The URL comes from ${DAGSTER_PG_URL_VAR} when the instance loads.\n"
        f"storage:\n  postgres:\n    postgres_url:\n      env: {DAGSTER_PG_URL_VAR}\n"
    ),
}
_COMMON_CONFIG = (
    "telemetry:\n  enabled: false\n"
    "# Queued runs (UI backfills, `dagster job backfill`) start when the daemon of\n"
    "# `make dev` dequeues them, two at a time on a small machine.\n"
    "run_queue:\n  max_concurrent_runs: 2\n"
    "  # One retrain at a time: triggers firing together must not race on the aliases.\n"
    "  tag_concurrency_limits:\n"
    "    - key: mlplatform/lane\n      value: retrain\n      limit: 1\n"
)


def check_database_urls(environ: Mapping[str, str]) -> None:
    """Checks that the PostgreSQL URL settings name the installed driver (psycopg2).

    Raises:
        ValueError: MLPLATFORM_DAGSTER_PG_URL or MLFLOW_TRACKING_URI is a bare
            ``postgresql://`` (or ``postgres://``) URL: SQLAlchemy 2.1 would load psycopg 3
            for it, which is not installed. The message names the variable, never its value.
    """
    for variable in (DAGSTER_PG_URL_VAR, "MLFLOW_TRACKING_URI"):
        scheme = environ.get(variable, "").partition("://")[0]
        if scheme in ("postgresql", "postgres"):
            raise ValueError(
                f"{variable} starts with '{scheme}://': write 'postgresql+psycopg2://...' "
                "(SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which is not "
                "installed; the pinned driver is psycopg2)"
            )


def instance_storage() -> str:
    """The instance storage the environment asks for: ``postgres`` when
    MLPLATFORM_DAGSTER_PG_URL is set and not empty, else the embedded ``sqlite``."""
    return "postgres" if os.environ.get(DAGSTER_PG_URL_VAR) else "sqlite"


def ensure_dagster_home(home: Path, storage: str | None = None) -> None:
    """Creates the instance directory with a dagster.yaml, unless it already has one.

    Args:
        home: The instance directory (DAGSTER_HOME).
        storage: ``sqlite`` (the embedded default: everything in ``home``) or ``postgres``
            (run, event and schedule storage at the URL in MLPLATFORM_DAGSTER_PG_URL).
            Default: ``instance_storage()``. An existing dagster.yaml is left as it is.

    Raises:
        ValueError: ``storage`` is unknown, or a storage is asked for (argument or
            MLPLATFORM_DAGSTER_PG_URL) that the existing dagster.yaml does not configure:
            the instance would otherwise silently stay where it is.
    """
    requested = storage or instance_storage()
    if requested not in INSTANCE_STORAGES:
        raise ValueError(f"unknown instance storage {requested!r}: use one of {INSTANCE_STORAGES}")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_STORAGE_CONFIG[requested] + _COMMON_CONFIG)
        return
    # Unasked, any existing config stands (e.g. a copy of k8s/dagster.yaml).
    if storage is None and requested == "sqlite":
        return
    configured = configured_storage(config)
    if configured != requested:
        reason = f"storage={storage!r}" if storage else f"{DAGSTER_PG_URL_VAR} is set"
        raise ValueError(
            f"{config} configures {configured} storage, but {requested} storage is asked for "
            f"({reason}): point DAGSTER_HOME at another directory or remove that dagster.yaml"
        )


def configured_storage(config: Path) -> str:
    """``postgres`` when a dagster.yaml has a ``storage: postgres`` section, else ``sqlite``.

    Raises:
        ValueError: The file is not a YAML mapping.
    """
    raw = yaml.safe_load(config.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{config} is not a YAML mapping of instance settings")
    return "postgres" if "postgres" in (raw.get("storage") or {}) else "sqlite"


@dataclass(frozen=True)
class RunOutcome:
    """One materialisation of the graph."""

    run_id: str
    success: bool
    failure: str | None
    values: dict


def run_job(
    job_name: str,
    partition_key: str | None = None,
    run_config: dict | None = None,
    instance: dg.DagsterInstance | None = None,
    tags: dict[str, str] | None = None,
) -> RunOutcome:
    """Runs one of the code location's jobs in this process, recorded on the instance.

    Args:
        job_name: E.g. ``daily_data_job`` (partitioned) or ``retrain_job``.
        partition_key: The day to run a partitioned job for.
        run_config: Dagster run config, e.g. the challenger_model training config.
        instance: Defaults to the instance under DAGSTER_HOME.
        tags: Run tags, e.g. a sensor's run key and trigger.

    Returns:
        The outcome, with the in-memory values of the assets that materialised.
    """
    from mlplatform.definitions import defs

    job = defs.resolve_job_def(job_name)
    instance = instance or dg.DagsterInstance.get()
    # The CLI prints its own progress; the run's full event log is in the UI.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = job.execute_in_process(
        run_config={**quiet, **(run_config or {})},
        instance=instance,
        partition_key=partition_key,
        tags=tags,
        raise_on_error=False,
    )
    materialized = {
        event.asset_key.to_user_string() for event in result.get_asset_materialization_events()
    }
    values = {key: result.asset_value(key) for key in materialized}
    failure = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        failure = (
            "\n".join(f"{e.step_key}: {_root_cause(e.step_failure_data.error)}" for e in failures)
            or "run failed (see the Dagster UI)"
        )
        failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
        for check in failed_checks:
            failure += f"\n  check {check.check_name} failed: {check.description or ''}"
    return RunOutcome(result.run_id, result.success, failure, values)


@dataclass(frozen=True)
class SensorTick:
    """One evaluation of a sensor: what it asked for, why, and its new cursor."""

    run_requests: list[dg.RunRequest]
    skip_reason: str | None
    cursor: str | None


def tick_sensor(
    name: str, cursor: str | None = None, instance: dg.DagsterInstance | None = None
) -> SensorTick:
    """Evaluates a sensor of the code location once, as the daemon would, without launching.

    Its asset events (e.g. the drift report) are recorded on the instance; the runs it requests
    are returned for the caller to launch with ``run_job(..., tags=tick_run_tags(...))``.
    """
    from mlplatform.definitions import defs

    instance = instance or dg.DagsterInstance.get()
    sensor = defs.resolve_sensor_def(name)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources, sensor_name=name
    )
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return SensorTick([], result.skip_message, cursor)
    if isinstance(result, dg.RunRequest):
        return SensorTick([result], None, cursor)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    skip = result.skip_reason.skip_message if result.skip_reason else None
    return SensorTick(list(result.run_requests or []), skip, result.cursor)


def tick_run_tags(sensor_name: str, request: dg.RunRequest) -> dict[str, str]:
    """The tags the daemon puts on a sensor's run: a later daemon tick will not repeat it."""
    return {**request.tags, "dagster/sensor_name": sensor_name, "dagster/run_key": request.run_key}


def partition_keys_between(start: str, end: str) -> list[str]:
    """The daily partition keys from ``start`` to ``end`` inclusive.

    Raises:
        ValueError: A day is not a partition (before the first day, in the future, malformed).
    """
    from mlplatform.defs.data.partitions import daily_partitions

    keys = daily_partitions.get_partition_keys()
    for day in (start, end):
        if day not in keys:
            raise ValueError(
                f"'{day}' is not a daily partition (partitions run {keys[0]}..{keys[-1]})"
            )
    if start > end:
        raise ValueError(f"the range {start}..{end} is empty: --from must not be after --to")
    return keys[keys.index(start) : keys.index(end) + 1]


def window_partition_keys(days: int, end: str | None = None) -> list[str]:
    """The daily partition keys of the ``days`` days ending at ``end`` (default: yesterday)."""
    from mlplatform.defs.data.partitions import daily_partitions

    last = end or daily_partitions.get_last_partition_key()
    keys = daily_partitions.get_partition_keys()
    stop = keys.index(last) + 1
    return keys[max(0, stop - days) : stop]


def _root_cause(error) -> str:
    while error.cause is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}"


def training_config(estimator: str, window_days: int | None = None) -> dict:
    """Run config selecting the challenger's estimator and the training window."""
    return {
        "ops": {
            "challenger_model": {"config": {"estimator": estimator}},
            "features": {"config": {"window_days": window_days}},
        }
    }
