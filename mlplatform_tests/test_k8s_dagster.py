"""The Dagster side of ``k8s/``, checked offline against Dagster's own config schemas.

The Helm values must keep the run launcher, the run queue with its retrain lane and the
external Postgres; their run launcher and run coordinator, rendered as the chart renders them,
and ``k8s/dagster.yaml`` validate against Dagster's config schemas; ``dagster_cloud.yaml``
names the code location's module.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib

import pytest
import yaml
from k8s_files import (
    ENV_SECRET,
    K8S,
    NAMESPACE,
    PLACEHOLDER,
    REPO_ROOT,
    documents,
    find,
)

# --- Dagster Helm values -----------------------------------------------------------------


@pytest.fixture(scope="module")
def values() -> dict:
    (doc,) = documents(K8S / "dagster-values.yaml")
    return doc


def _retrain_tags() -> dict:
    """RETRAIN_RUN_TAGS from the training assets, read without importing Dagster."""
    source = (REPO_ROOT / "mlplatform" / "defs" / "training" / "assets.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "RETRAIN_RUN_TAGS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("RETRAIN_RUN_TAGS not found in mlplatform/defs/training/assets.py")


def test_dagster_values_launch_each_run_in_a_pod(values):
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert {"name": ENV_SECRET} in launcher["envSecrets"]


def test_dagster_values_queue_runs_with_one_retrain_at_a_time(values):
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True
    assert coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    lane = [limit for limit in limits if limit["key"] == "mlplatform/lane"]
    assert lane == [{"key": "mlplatform/lane", "value": "retrain", "limit": 1}]
    # The tag the retrain runs actually carry.
    assert _retrain_tags() == {"mlplatform/lane": "retrain"}


def test_dagster_values_use_the_external_postgres(values):
    postgres = values["postgresql"]
    assert postgres["enabled"] is False
    assert postgres["postgresqlHost"]
    assert postgres["postgresqlUsername"]
    assert postgres["postgresqlDatabase"]
    assert postgres["service"]["port"] == 5432
    assert "postgresqlPassword" not in postgres
    assert values["generatePostgresqlPasswordSecret"] is False
    # The pre-created password secret exists in the example, with the key the chart reads.
    secret = find("Secret", values["global"]["postgresqlSecretName"])
    assert "postgresql-password" in secret["stringData"]


def test_dagster_code_location_gets_the_env_secret(values):
    (location,) = values["dagster-user-deployments"]["deployments"]
    assert location["envSecrets"] == [{"name": ENV_SECRET}]
    assert location["includeConfigInLaunchedRuns"]["enabled"] is True


# --- Dagster config schemas --------------------------------------------------------------

# The release namespace (`helm upgrade ... -n mlplatform`, see k8s/dagster-values.yaml): the
# chart's default job_namespace.
RELEASE_NAMESPACE = NAMESPACE
# runLauncher.config.k8sRunLauncher key -> K8sRunLauncher config key, as the official chart's
# templates/helpers/instance/_run-launcher.tpl renders them. Only keys present in our values
# are rendered (keys the chart fills from its own defaults, such as load_incluster_config,
# image_pull_policy and service_account_name, are left to the schema's defaults). envSecrets
# and envConfigMaps are lists of {name: ...} in the values and lists of names in the config.
HELM_RUN_LAUNCHER_KEYS = {
    "loadInclusterConfig": "load_incluster_config",
    "kubeconfigFile": "kubeconfig_file",
    "jobNamespace": "job_namespace",
    "imagePullPolicy": "image_pull_policy",
    "envConfigMaps": "env_config_maps",
    "envSecrets": "env_secrets",
    "envVars": "env_vars",
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
}
# What the chart always renders for the K8sRunLauncher, read from the environment of the
# daemon/webserver pods the chart sets up; the values here only stand in for them.
HELM_RUN_LAUNCHER_ENV = {
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env",
}
# dagsterDaemon.runCoordinator.config.queuedRunCoordinator key -> QueuedRunCoordinator config
# key, as templates/helpers/instance/_run-coordinator.tpl renders them (it skips empty values).
HELM_RUN_COORDINATOR_KEYS = {
    "maxConcurrentRuns": "max_concurrent_runs",
    "tagConcurrencyLimits": "tag_concurrency_limits",
    "dequeueIntervalSeconds": "dequeue_interval_seconds",
}
# k8s/dagster.yaml reads these ({env: ...}); stand-ins for processing the config.
DAGSTER_PG_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": PLACEHOLDER,
    "DAGSTER_PG_DB": "dagster",
}


def _render_run_launcher(values: dict) -> dict:
    """The K8sRunLauncher config the chart renders from our values."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    unmapped = set(launcher) - set(HELM_RUN_LAUNCHER_KEYS)
    assert not unmapped, f"add {sorted(unmapped)} to HELM_RUN_LAUNCHER_KEYS (see the chart)"
    config = {
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "job_namespace": RELEASE_NAMESPACE,
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}],
    }
    for key, value in launcher.items():
        if key in ("envSecrets", "envConfigMaps"):
            names = [item["name"] for item in value if "name" in item]
            config[HELM_RUN_LAUNCHER_KEYS[key]] = (
                config.get(HELM_RUN_LAUNCHER_KEYS[key], []) + names
            )
        else:
            config[HELM_RUN_LAUNCHER_KEYS[key]] = value
    return config


def _render_run_coordinator(values: dict) -> dict:
    """The QueuedRunCoordinator config the chart renders from our values."""
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    unmapped = set(queued) - set(HELM_RUN_COORDINATOR_KEYS)
    assert not unmapped, f"add {sorted(unmapped)} to HELM_RUN_COORDINATOR_KEYS (see the chart)"
    return {HELM_RUN_COORDINATOR_KEYS[k]: v for k, v in queued.items() if v}


def _config_errors(result) -> list[str]:
    return [error.message for error in result.errors or []]


def test_helm_run_launcher_config_fits_the_k8s_run_launcher_schema(values, monkeypatch):
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    for name, value in HELM_RUN_LAUNCHER_ENV.items():
        monkeypatch.setenv(name, value)
    result = process_config(K8sRunLauncher.config_type(), _render_run_launcher(values))
    assert result.success, _config_errors(result)
    config = result.value
    assert config["env_secrets"] == [ENV_SECRET]
    assert config["job_namespace"] == NAMESPACE
    assert config["instance_config_map"] == HELM_RUN_LAUNCHER_ENV["DAGSTER_K8S_INSTANCE_CONFIG_MAP"]
    # Not constructed: K8sRunLauncher loads the in-cluster Kubernetes config in __init__.


def test_the_dagster_schema_check_catches_mistakes(values, monkeypatch):
    from dagster._config import process_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher

    for name, value in HELM_RUN_LAUNCHER_ENV.items():
        monkeypatch.setenv(name, value)
    launcher = _render_run_launcher(values)
    # The values' {name: ...} form, unmapped; a misspelt key; a missing required key.
    for broken in (
        {**launcher, "env_secrets": [{"name": ENV_SECRET}]},
        {**launcher, "env_secret": [ENV_SECRET]},
        {k: v for k, v in launcher.items() if k != "instance_config_map"},
    ):
        assert not process_config(K8sRunLauncher.config_type(), broken).success, broken
    coordinator = {"tag_concurrency_limits": [{"key": "mlplatform/lane", "limit": "one"}]}
    assert not process_config(QueuedRunCoordinator.config_type(), coordinator).success


def test_helm_run_coordinator_config_fits_the_queued_run_coordinator(values):
    from dagster import QueuedRunCoordinator
    from dagster._serdes import ConfigurableClassData

    config = _render_run_coordinator(values)
    assert set(config) == {"max_concurrent_runs", "tag_concurrency_limits"}
    # rehydrate() is how the instance builds it: process_config against config_type(), then
    # from_config_value(), whose constructor checks the values.
    data = ConfigurableClassData("dagster", "QueuedRunCoordinator", yaml.safe_dump(config))
    coordinator = data.rehydrate(QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    assert queue.max_concurrent_runs == 10
    assert queue.tag_concurrency_limits == [
        {"key": "mlplatform/lane", "value": "retrain", "limit": 1}
    ]


@pytest.fixture(scope="module")
def instance_config() -> dict:
    """k8s/dagster.yaml loaded and validated as Dagster loads $DAGSTER_HOME/dagster.yaml."""
    from dagster._core.instance.config import dagster_instance_config

    config, custom_instance_class = dagster_instance_config(str(K8S), "dagster.yaml")
    assert custom_instance_class is None
    return config


def test_dagster_yaml_is_a_valid_instance_config(instance_config):
    assert set(instance_config) >= {"storage", "run_coordinator", "telemetry"}
    assert instance_config["telemetry"]["enabled"] is False


def test_dagster_yaml_storage_is_postgres_from_the_environment(instance_config, monkeypatch):
    from dagster._config import process_config
    from dagster_postgres import DagsterPostgresStorage

    (kind,) = instance_config["storage"]
    assert kind == "postgres"
    postgres = instance_config["storage"]["postgres"]
    # Credentials come only from the environment.
    for key in ("hostname", "username", "password", "db_name"):
        assert set(postgres["postgres_db"][key]) == {"env"}, key
    for name, value in DAGSTER_PG_ENV.items():
        monkeypatch.setenv(name, value)
    result = process_config(DagsterPostgresStorage.config_type(), postgres)
    assert result.success, _config_errors(result)
    db = result.value["postgres_db"]
    assert (db["hostname"], db["username"], db["db_name"], db["port"]) == (
        "postgres",
        "dagster",
        "dagster",
        5432,
    )


def test_dagster_yaml_run_coordinator_matches_the_helm_values(instance_config, values):
    from dagster import QueuedRunCoordinator
    from dagster._serdes import ConfigurableClassData

    entry = instance_config["run_coordinator"]
    data = ConfigurableClassData(entry["module"], entry["class"], yaml.safe_dump(entry["config"]))
    coordinator = data.rehydrate(QueuedRunCoordinator)
    assert type(coordinator) is QueuedRunCoordinator
    # Outside Kubernetes the same retrain lane as on it.
    helm = _render_run_coordinator(values)
    assert entry["config"]["tag_concurrency_limits"] == helm["tag_concurrency_limits"]


# --- dagster_cloud.yaml ------------------------------------------------------------------


def test_dagster_cloud_yaml_names_the_definitions_module():
    cloud = yaml.safe_load((REPO_ROOT / "dagster_cloud.yaml").read_text())
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    (location,) = cloud["locations"]
    assert location["location_name"] == pyproject["code_location_name"] == "mlplatform"
    module = location["code_source"]["module_name"]
    assert module == pyproject["module_name"] == "mlplatform.definitions"
    assert importlib.util.find_spec(module) is not None, f"{module} is not importable"
    assert (REPO_ROOT / location["build"]["directory"] / "Dockerfile").is_file()
