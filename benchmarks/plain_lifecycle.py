"""The lifecycle's asset and check functions called as plain Python: orchestration.py's baseline.

For one day, in this one process and in graph order: ``raw_data`` (its Great Expectations
checks run inside it), ``validated_data``, ``features`` over the spec's training window,
``challenger_model``, ``evaluation``, ``deployed_model``, each followed by the asset checks
defined on it (``mlplatform/defs/<stage>/checks.py``). Each is the very function under its
``@dg.asset`` / ``@dg.asset_check`` decorator, called with the code location's own resources
(each ``mlplatform/defs/<stage>/resources.py``, configured from the environment as Dagster
configures them), the run config's values and its inputs' values, kept in memory. There is no
run, no event log and no IO manager: the earlier days are read where the IO manager stored them,
and ``features`` reads the Dagster instance for the rejected days and data versions, as in a
run. A failed blocking check stops the lifecycle, as it stops a run.

Usage (orchestration.py starts it in the environment of an isolated platform):
``python benchmarks/plain_lifecycle.py DAY RUN_CONFIG_JSON``. Prints one JSON line: seconds
spent importing and per step, the checks run, and the outcome (decision, champion, AUC).
"""

import time

STARTED = time.perf_counter()

import importlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import dagster as dg  # noqa: E402

from mlplatform.datasets.window import StoredPartitions  # noqa: E402

# The lifecycle in graph order: (stage package under mlplatform.defs, asset).
LIFECYCLE = (
    ("data", "raw_data"),
    ("data", "validated_data"),
    ("features", "features"),
    ("training", "challenger_model"),
    ("evaluation", "evaluation"),
    ("deployment", "deployed_model"),
)
STAGES = tuple(dict.fromkeys(stage for stage, _ in LIFECYCLE))
IN_MEMORY = "in memory"


@dataclass
class PlainContext:
    """What the asset and check functions read from their Dagster context, without a run."""

    instance: dg.DagsterInstance
    partition_key: str | None
    run: SimpleNamespace
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("plain_lifecycle"))


def _stage_module(stage: str, kind: str):
    try:
        return importlib.import_module(f"mlplatform.defs.{stage}.{kind}")
    except ModuleNotFoundError:
        return None


def load_definitions() -> tuple[dict, dict, dict]:
    """The lifecycle's assets by name, their checks by asset name, and the resources."""
    assets, checks, resources = {}, {}, {}
    for stage in STAGES:
        for definition in dg.load_assets_from_modules([_stage_module(stage, "assets")]):
            assets[definition.key.to_user_string()] = definition
        module = _stage_module(stage, "checks")
        for check in dg.load_asset_checks_from_modules([module] if module else []):
            (key,) = check.check_keys
            checks.setdefault(key.asset_key.to_user_string(), []).append(check)
    for stage in (*STAGES, "storage"):
        module = _stage_module(stage, "resources")
        if module is not None:
            for name, resource in module.resources().resources.items():
                if name != "io_manager":  # values stay in memory here
                    resources[name] = resource.process_config_and_initialize()
    return assets, checks, resources


def call(definition, values: dict, configs: dict):
    """Calls the function under a definition's decorator with the values its parameters name."""
    function = definition.op.compute_fn.decorated_fn
    arguments = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "config":
            arguments[name] = parameter.annotation(**configs.get(definition.op.name, {}))
        else:
            arguments[name] = values[name]
    return function(**arguments)


def outputs(result) -> tuple[object, list[dg.AssetCheckResult]]:
    """The value an asset function returns (or yields last) and the check results it yields."""
    events = [result] if isinstance(result, dg.Output) else list(result)
    checks = [event for event in events if isinstance(event, dg.AssetCheckResult)]
    (output,) = [event for event in events if isinstance(event, dg.Output)]
    return output.value, checks


def stored_days(instance: dg.DagsterInstance, dataset: str, day: str, frame) -> StoredPartitions:
    """The validated days where the IO manager keeps them, plus this run's day in memory."""
    directory = Path(instance.storage_directory()) / dataset / "validated_data"
    locations: dict[str, object] = {path.stem: path for path in directory.glob("*.pkl")}
    locations[day] = IN_MEMORY

    def read(location):
        if location == IN_MEMORY:
            return frame
        with open(location, "rb") as file:
            return pickle.load(file)

    return StoredPartitions(locations, read)


def run_step(name: str, assets: dict, checks: dict, values: dict, configs: dict) -> list[str]:
    """One asset, then its checks; returns the checks run. Raises when a blocking one fails."""
    values[name], inline = outputs(call(assets[name], values, configs))
    blocking = {spec.name: spec.blocking for spec in assets[name].check_specs}
    results = {result.check_name: result for result in inline}
    for check in checks.get(name, []):
        (spec,) = check.check_specs
        blocking[spec.name] = spec.blocking
        results[spec.name] = call(check, values, configs)
    failed = [r for check, r in results.items() if not r.passed and blocking[check]]
    if failed:
        raise RuntimeError(f"{name}: blocking checks failed: {failed}")
    return [f"{name}/{check}" for check in results]


def run_lifecycle(day: str, run_config: dict) -> dict:
    """Every step of the lifecycle for ``day``; returns the timings and the outcome."""
    imported = time.perf_counter()
    assets, checks, resources = load_definitions()
    configs = {name: op["config"] for name, op in run_config.get("ops", {}).items()}
    setup = time.perf_counter() - imported
    steps: dict[str, float] = {}
    ran: list[str] = []
    with dg.DagsterInstance.get() as instance:
        run = SimpleNamespace(run_id=uuid.uuid4().hex, tags={})
        values: dict = dict(resources)
        for _, name in LIFECYCLE:
            started = time.perf_counter()
            partitioned = assets[name].partitions_def is not None
            values["context"] = PlainContext(instance, day if partitioned else None, run)
            if name == "features":
                # An unpartitioned asset reads the daily partitions lazily, as from the IO manager.
                dataset = resources["dataset"].spec().name
                values["validated_data"] = stored_days(
                    instance, dataset, day, values["validated_data"]
                )
            ran += run_step(name, assets, checks, values, configs)
            steps[name] = time.perf_counter() - started
    evaluation, deployment = values["evaluation"], values["deployed_model"]
    return {
        "imports": imported - STARTED,
        "definitions and resources": setup,
        "steps": steps,
        "checks": sorted(ran),
        "holdout_auc": evaluation.challenger.auc,
        "status": deployment.status,
        "champion": deployment.champion_version,
    }


if __name__ == "__main__":
    outcome = run_lifecycle(sys.argv[1], json.loads(sys.argv[2]))
    outcome["total"] = time.perf_counter() - STARTED
    print(json.dumps(outcome))
