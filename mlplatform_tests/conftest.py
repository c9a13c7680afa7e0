"""Shared fixtures: an isolated platform (temporary MLflow store, state dir, Dagster home)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

from mlplatform.datasets.spec import SPEC_DIR

# Speed is measured in benchmarks/, never asserted in tests: on a loaded 2-core CI machine a
# correct example may take longer than hypothesis's default 200 ms deadline (a flaky failure).
settings.register_profile("mlplatform", deadline=None)
settings.load_profile("mlplatform")

REPO_ROOT = Path(__file__).resolve().parents[1]
TELCO_CSV = REPO_ROOT.parent / "shared" / "data" / "telco_customer_churn.csv"


@dataclass(frozen=True)
class Platform:
    """Paths and settings of one isolated platform."""

    root: Path
    env: dict[str, str]

    @property
    def tracking_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    def resources(
        self, dataset: str | None = None, deployment: dict | None = None, **gates: str
    ) -> dict:
        from mlplatform.defs.data.resources import DatasetResource
        from mlplatform.defs.deployment.resources import DeploymentPolicy
        from mlplatform.defs.evaluation.resources import GatePolicy
        from mlplatform.defs.storage.resources import PartitionAwareIOManager
        from mlplatform.defs.training.resources import MLflowResource

        return {
            "dataset": DatasetResource(
                name=dataset or self.env["MLPLATFORM_DATASET"],
                data_path=self.env["MLPLATFORM_DATA_PATH"],
                home_dir=self.env["MLPLATFORM_HOME"],
            ),
            "mlflow_tracking": MLflowResource(
                tracking_uri=self.tracking_uri, artifact_root=self.env["MLFLOW_ARTIFACT_ROOT"]
            ),
            "gates": GatePolicy(**{"min_auc": "0.80", "min_delta": "0.005", **gates}),
            "deployment": DeploymentPolicy(
                **{
                    "approvers": self.env["MLPLATFORM_APPROVERS"],
                    "require_approval": self.env["MLPLATFORM_REQUIRE_APPROVAL"],
                    "serving_url": self.env["MLPLATFORM_SERVING_URL"],
                    "canary_min_requests": self.env["MLPLATFORM_CANARY_MIN_REQUESTS"],
                    "canary_min_dwell_seconds": self.env["MLPLATFORM_CANARY_MIN_DWELL_SECONDS"],
                    **(deployment or {}),
                }
            ),
            "io_manager": PartitionAwareIOManager(
                dataset=dataset or self.env["MLPLATFORM_DATASET"]
            ),
        }


def write_spec(
    directory: Path, base: str = "synthetic_churn", top: dict | None = None, **source_overrides
) -> Path:
    """A copy of a shipped spec with top-level fields and source settings changed."""
    raw = yaml.safe_load((SPEC_DIR / f"{base}.yaml").read_text())
    raw.update(top or {})
    raw["source"].update(source_overrides)
    path = directory / f"{base}_test.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# Fixed days, so tests do not depend on today's date.
TEST_DAYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]


@pytest.fixture
def small_spec(tmp_path) -> Path:
    """Synthetic churn trained on a 4-day window of 1,000 rows a day: fast, and large enough
    for the AUC gate."""
    return write_spec(tmp_path, top={"training_window_days": len(TEST_DAYS)})


@pytest.fixture
def mlflow_globals():
    """Puts MLflow's process-global URIs back after a test that uses the MLflow resource."""
    # Imported here: conftest stays free of MLflow, which the pure unit tests never load.
    from mlplatform_tests.registry_faults import restored_mlflow_globals

    with restored_mlflow_globals():
        yield


def isolated_platform(root: Path, dataset: Path | str) -> Platform:
    """An isolated platform under ``root`` (its env is not applied to os.environ here)."""
    env = {
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MLPLATFORM_HOME": str(root / "state"),
        "MLPLATFORM_DATASET": str(dataset),
        "MLPLATFORM_DATA_PATH": "",
        "MLPLATFORM_STORAGE": "",
        # Empty: the embedded SQLite instance, even when the shell sets a production URL.
        "MLPLATFORM_DAGSTER_PG_URL": "",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLPLATFORM_MLFLOW_RETRIES": "5",
        "MLPLATFORM_MLFLOW_RETRY_SECONDS": "1.0",
        "MLPLATFORM_MIN_AUC": "0.80",
        "MLPLATFORM_MIN_DELTA": "0.005",
        "MLPLATFORM_APPROVERS": "reviewer",
        # Most tests are about other gates; the approval tests switch it on.
        "MLPLATFORM_REQUIRE_APPROVAL": "false",
        "MLPLATFORM_SERVING_URL": "",
        "MLPLATFORM_CANARY_MIN_REQUESTS": "200",
        "MLPLATFORM_CANARY_MIN_DWELL_SECONDS": "60",
    }
    Path(env["DAGSTER_HOME"]).mkdir()
    return Platform(root, env)


@pytest.fixture
def platform(tmp_path, monkeypatch, small_spec) -> Platform:
    """Environment of an isolated platform, applied to os.environ for the test."""
    isolated = isolated_platform(tmp_path, small_spec)
    for key, value in isolated.env.items():
        monkeypatch.setenv(key, value)
    return isolated


@pytest.fixture
def instance(platform):
    """A temporary Dagster instance with TEST_DAYS loaded and validated."""
    import dagster as dg

    with dg.instance_for_test() as test_instance:
        assert all(run.success for run in load_days(platform, test_instance))
        yield test_instance


def aliases(platform, model_name: str) -> dict[str, str | None]:
    """The challenger, champion and previous versions in the platform's registry."""
    from mlflow import MlflowClient

    from mlplatform.ml.registry import CHALLENGER, CHAMPION, PREVIOUS, version_for_alias

    client = MlflowClient(tracking_uri=platform.tracking_uri, registry_uri=platform.tracking_uri)
    return {
        alias: version_for_alias(client, model_name, alias)
        for alias in (CHALLENGER, CHAMPION, PREVIOUS)
    }


@pytest.fixture
def subprocess_env(platform) -> dict[str, str]:
    """Environment for a child process (CLI) of the isolated platform."""
    return {**os.environ, **platform.env}


def _lifecycle():
    from mlplatform.definitions import defs

    return [*defs.assets, *defs.asset_checks]


def load_days(platform, instance, days=TEST_DAYS, dataset=None) -> list:
    """Materialises raw_data and validated_data, with their checks, one run per day."""
    import dagster as dg

    return [
        dg.materialize(
            _lifecycle(),
            selection=dg.AssetSelection.assets("raw_data", "validated_data"),
            partition_key=day,
            instance=instance,
            resources=platform.resources(dataset),
            raise_on_error=False,
        )
        for day in days
    ]


def retrain(
    platform,
    instance,
    dataset=None,
    estimator="gradient_boosting",
    training=None,
    deployment=None,
    **gates,
):
    """Trains, evaluates and deploys on the validated days already in the instance.

    ``training`` overrides challenger_model config (hyperparameters); ``deployment`` the
    DeploymentPolicy (approval off by default); ``gates`` the GatePolicy.
    """
    import dagster as dg

    return dg.materialize(
        _lifecycle(),
        selection=dg.AssetSelection.assets("features").downstream(),
        instance=instance,
        resources=platform.resources(dataset, deployment, **gates),
        run_config={
            "ops": {
                "challenger_model": {"config": {"estimator": estimator, **(training or {})}},
                # Tests use fixed past days: the staleness guard is tested on its own.
                "features": {"config": {"max_staleness_days": None}},
            }
        },
        raise_on_error=False,
    )


def materialized_count(instance, asset: str, partition: str | None = None) -> int:
    """How many materialisations of an asset (or one partition of it) the instance holds."""
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1000,
    ).records
    return len(records)


# Reliability kinds (issue 7): the run summary says how many tests of each kind ran and passed.
GUARANTEE_MARKERS = ("fault", "bad_input", "load", "security", "production_storage")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Prints, per reliability kind, how many of its tests passed out of those that ran."""
    ran: dict[str, list[str]] = {kind: [] for kind in GUARANTEE_MARKERS}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call" and outcome != "error":
                continue
            for kind in GUARANTEE_MARKERS:
                if kind in getattr(report, "keywords", {}):
                    ran[kind].append(outcome)
    if not any(ran.values()):
        return
    terminalreporter.section("guarantees exercised")
    for kind, outcomes in ran.items():
        if outcomes:
            passed = outcomes.count("passed")
            terminalreporter.write_line(f"{kind:<20} {passed} passed of {len(outcomes)} run")


def pytest_collection_modifyitems(config, items):
    """Runs the end-to-end modules first: with one worker per CPU, the long ones start at once
    and the short ones fill in around them, instead of a long one starting last."""
    # Whole modules move, so a module's tests stay together (its module fixtures built once).
    long_modules = {item.path for item in items if item.get_closest_marker("e2e") is not None}
    items.sort(key=lambda item: item.path not in long_modules)
