"""The Kubernetes manifests and Helm values in ``k8s/``, checked by parsing them (no cluster).

Every ``k8s/*.yaml`` must parse; the manifests must be well-formed objects; the serving
objects (``k8s/serving.yaml``) must fit together (probes, Service, HPA, PDB, env); no file may
hold a literal secret; and the Dagster values must keep the run launcher, the run queue with
its retrain lane and the external Postgres.

Schemas, offline: every Kubernetes document validates against the Kubernetes JSON schema
(strict: no unknown fields) that kubernetes-validate ships; the Helm values' run launcher and
run coordinator, rendered as the chart renders them, and ``k8s/dagster.yaml`` validate against
Dagster's own config schemas; ``dagster_cloud.yaml`` names the code location's module.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import socket
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S = REPO_ROOT / "k8s"
NAMESPACE = "mlplatform"
SERVING = "mlplatform-serving"
CONFIGMAP = "mlplatform-serving-config"
ENV_SECRET = "mlplatform-env"
PLACEHOLDER = "CHANGE_ME"
# Configuration files that are not Kubernetes objects: Helm values and a Dagster instance config.
NOT_MANIFESTS = {"dagster-values.yaml", "dagster.yaml"}

YAML_FILES = sorted(K8S.glob("*.yaml"))


def _documents(path: Path) -> list:
    # Empty documents (a leading or trailing ---) are not objects.
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _manifests() -> list[tuple[str, dict]]:
    return [
        (path.name, doc)
        for path in YAML_FILES
        if path.name not in NOT_MANIFESTS
        for doc in _documents(path)
    ]


def _find(kind: str, name: str, file: str | None = None) -> dict:
    found = [
        doc
        for fname, doc in _manifests()
        if doc["kind"] == kind
        and doc["metadata"]["name"] == name
        and (file is None or fname == file)
    ]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def deployment() -> dict:
    return _find("Deployment", SERVING, "serving.yaml")


@pytest.fixture(scope="module")
def pod(deployment) -> dict:
    return deployment["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (serving,) = [c for c in pod["spec"]["containers"] if c["name"] == "serving"]
    return serving


def _resolve_port(container: dict, port) -> int:
    """A probe's or Service's port (number or name) as a container port number."""
    by_name = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    numbers = {p["containerPort"] for p in container["ports"]}
    if isinstance(port, str):
        assert port in by_name, f"port name {port!r} is not a container port {sorted(by_name)}"
        return by_name[port]
    assert port in numbers, f"port {port} is not a container port {sorted(numbers)}"
    return port


def _labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- every file --------------------------------------------------------------------------


def test_the_expected_files_exist():
    names = {p.name for p in YAML_FILES}
    assert {"serving.yaml", "mlflow.yaml", "namespace-and-secrets.example.yaml"} <= names
    assert names >= NOT_MANIFESTS, "NOT_MANIFESTS names a file that no longer exists"


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_every_yaml_file_parses(path):
    assert _documents(path), f"{path.name} has no YAML document"


@pytest.mark.parametrize(
    "path", [p for p in YAML_FILES if p.name not in NOT_MANIFESTS], ids=lambda p: p.name
)
def test_every_manifest_is_a_named_object(path):
    for doc in _documents(path):
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
        assert doc.get("apiVersion"), f"{path.name}: document without apiVersion"
        assert doc.get("kind"), f"{path.name}: document without kind"
        name = (doc.get("metadata") or {}).get("name")
        assert name, f"{path.name}: {doc['kind']} without metadata.name"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']} {name}"


# --- Kubernetes schema ---------------------------------------------------------------------

# The newest Kubernetes release whose schemas kubernetes-validate (pinned in the dev extra)
# ships; it validates from files inside the package, no download.
K8S_VERSION = "1.37.0"


def _manifest_params() -> list:
    return [
        pytest.param(doc, id=f"{fname}:{doc['kind']}/{doc['metadata']['name']}")
        for fname, doc in _manifests()
    ]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network (a schema download, say) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access during schema validation: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _schema_errors(doc: dict) -> str | None:
    try:
        # Strict: additionalProperties false everywhere, so a misspelt field fails. Every
        # document here passes it; none needs the lenient schema.
        used = kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"{where}: {exc.message}"
    assert used == K8S_VERSION.rsplit(".", 1)[0], f"validated against Kubernetes {used}"
    return None


@pytest.mark.parametrize("doc", _manifest_params())
def test_every_manifest_matches_the_kubernetes_schema(doc, offline):
    error = _schema_errors(doc)
    assert error is None, f"{doc['kind']} {doc['metadata']['name']}: {error}"


def test_the_schema_check_catches_mistakes(offline):
    deployment = _find("Deployment", SERVING, "serving.yaml")
    container_path = "spec.template.spec.containers.0"

    def broken(change) -> dict:
        doc = yaml.safe_load(yaml.safe_dump(deployment))  # a deep copy
        change(doc["spec"], doc["spec"]["template"]["spec"]["containers"][0])
        return doc

    assert _schema_errors(deployment) is None
    # A misspelt field (only strict mode catches it), a wrong type, a missing required field.
    typo = broken(lambda spec, c: c.update(imagePulPolicy="Always"))
    assert "imagePulPolicy" in _schema_errors(typo)
    assert _schema_errors(typo).startswith(container_path)
    wrong_type = broken(lambda spec, c: spec.update(replicas="2"))
    assert _schema_errors(wrong_type).startswith("spec.replicas")
    missing = broken(lambda spec, c: c.pop("name"))
    assert "'name' is a required property" in _schema_errors(missing)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate({**deployment, "apiVersion": "apps/v1beta1"}, K8S_VERSION)


# --- serving -----------------------------------------------------------------------------


def test_serving_runs_the_serve_command_on_its_container_port(deployment, container):
    assert container["image"] == "mlplatform:latest"
    command = container["command"] + container.get("args", [])
    assert command[:2] == ["mlplatform", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1])
    assert port == 8080
    assert port in {p["containerPort"] for p in container["ports"]}


def test_serving_rollout_never_drops_below_capacity(deployment):
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert _labels_match(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])


def test_serving_probes_use_the_container_port(container):
    probes = {k: container[k] for k in ("readinessProbe", "livenessProbe", "startupProbe")}
    for kind, probe in probes.items():
        get = probe["httpGet"]
        assert _resolve_port(container, get["port"]) == 8080, kind
    # Readiness: no traffic until a champion is loaded (/health is 503 before).
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health"
    # Liveness and startup must not depend on the registry having a champion: a missing
    # champion must not restart pods (the poller picks it up); /health/live always answers.
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert probes["startupProbe"]["httpGet"]["path"] == "/health/live"
    # Model loading takes seconds: the startup probe must allow well over a minute.
    startup = probes["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_serving_shutdown_lets_in_flight_requests_finish(pod, container):
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert int(pre_stop[1]) + 10 <= grace, "the grace period must cover preStop + draining"


def test_serving_pod_is_scraped_on_its_metrics_endpoint(pod, container):
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert _resolve_port(container, int(annotations["prometheus.io/port"])) == 8080


def test_serving_resources_and_thread_pools_follow_the_cpu_limit(container):
    resources = container["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[part]), part
    env = {e["name"]: e for e in container["env"]}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        ref = env[name]["valueFrom"]["resourceFieldRef"]
        assert ref["resource"] == "limits.cpu", name
        assert ref["containerName"] == container["name"], name
        assert str(ref.get("divisor", "1")) == "1", name


def test_serving_runs_as_non_root_with_a_read_only_root(pod, container):
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] != 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_serving_writable_paths_are_on_a_writable_volume(pod, container):
    # `mlplatform serve` creates DAGSTER_HOME at start-up; with a read-only root it must be
    # on a mounted volume, as must the temp dir MLflow downloads models to.
    config = _find("ConfigMap", CONFIGMAP, "serving.yaml")["data"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    for key in ("DAGSTER_HOME", "HOME", "TMPDIR"):
        path = config[key]
        assert any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable), key


def test_serving_env_comes_from_the_configmap_and_the_env_secret(container):
    env_from = container["envFrom"]
    secrets = [e["secretRef"]["name"] for e in env_from if "secretRef" in e]
    config_maps = [e["configMapRef"]["name"] for e in env_from if "configMapRef" in e]
    assert secrets == [ENV_SECRET]
    assert config_maps == [CONFIGMAP]
    # The later source wins for a key in both: the serving ConfigMap must override the secret.
    kinds = ["secretRef" if "secretRef" in e else "configMapRef" for e in env_from]
    assert kinds == ["secretRef", "configMapRef"]
    # Explicit env only derives values (resource fields), it holds no literal setting.
    for item in container.get("env", []):
        assert "valueFrom" in item, f"{item['name']} belongs in the ConfigMap or the secret"


def test_serving_configmap_holds_the_non_secret_settings():
    config = _find("ConfigMap", CONFIGMAP, "serving.yaml")["data"]
    assert config["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    mlflow_service = _find("Service", "mlflow", "mlflow.yaml")
    assert 5000 in {p["port"] for p in mlflow_service["spec"]["ports"]}
    assert config["MLPLATFORM_DATASET"]
    # Kubernetes rejects non-string ConfigMap values (YAML true/1.5 must be quoted).
    assert all(isinstance(v, str) for v in config.values())
    assert not any(re.search(r"PASSWORD|TOKEN|SECRET", k) for k in config)


def test_serving_service_selects_the_pods_and_targets_their_port(pod, container):
    service = _find("Service", SERVING, "serving.yaml")
    spec = service["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    assert _labels_match(spec["selector"], pod["metadata"]["labels"])
    (port,) = spec["ports"]
    assert port["port"] == 8080
    assert _resolve_port(container, port.get("targetPort", port["port"])) == 8080


def test_the_serving_url_dagster_uses_points_at_the_service():
    secret = _find("Secret", ENV_SECRET, "namespace-and-secrets.example.yaml")
    url = urlsplit(secret["stringData"]["MLPLATFORM_SERVING_URL"])
    service = _find("Service", SERVING, "serving.yaml")
    assert url.hostname.split(".")[:3] == [SERVING, NAMESPACE, "svc"]
    assert url.port in {p["port"] for p in service["spec"]["ports"]}


def test_serving_hpa_scales_the_deployment_on_cpu(deployment):
    hpa = _find("HorizontalPodAutoscaler", SERVING, "serving.yaml")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    # The Deployment's replicas must not fight the HPA's minimum on the next apply.
    assert deployment["spec"]["replicas"] == hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100


def test_serving_pdb_keeps_one_pod(pod):
    pdb = _find("PodDisruptionBudget", SERVING, "serving.yaml")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])


# --- secrets -----------------------------------------------------------------------------

SENSITIVE_KEY = re.compile(r"passw(or)?d|token|secret[-_]?key|api[-_]?key|credential", re.I)
# `password: value` / `X_TOKEN=value` anywhere in the text, comments included: a key ending in
# password/token, then the value on the same line (empty when a mapping follows).
SENSITIVE_TEXT = re.compile(
    r"(?i)\b[\w.-]*(?:passw(?:or)?d|token)[\"']?[ \t]*[:=][ \t]*[\"']?([^\s\"'#,}]*)"
)
# Flags such as automountServiceAccountToken: false are not secrets.
NOT_SECRETS = {"true", "false"}


def _walk(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, str(i)))
    else:
        yield path, node


def _is_placeholder(value) -> bool:
    return value in (None, "") or PLACEHOLDER in str(value) or str(value).lower() in NOT_SECRETS


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_no_literal_secret_values(path):
    for doc in _documents(path):
        for keys, value in _walk(doc):
            # A sensitive key must hold a placeholder; references ({env: ...}, secretKeyRef)
            # are mappings and never reach here as a value.
            if keys and SENSITIVE_KEY.search(keys[-1]) and isinstance(value, str):
                assert _is_placeholder(value), f"{path.name}: {'.'.join(keys)} has a literal"
            # Credentials inside URLs (postgresql://user:password@host).
            if isinstance(value, str) and "://" in value:
                password = urlsplit(value).password
                assert _is_placeholder(password), f"{path.name}: {'.'.join(keys)} has a password"
    for match in SENSITIVE_TEXT.finditer(path.read_text()):
        assert _is_placeholder(match.group(1)), f"{path.name}: {match.group(0)!r}"


def test_secret_objects_only_in_example_files():
    for fname, doc in _manifests():
        if doc["kind"] != "Secret":
            continue
        assert fname.endswith(".example.yaml"), f"{fname}: a Secret belongs in an example file"
        # Base64 `data` would hide a real value from the checks above.
        assert "data" not in doc, f"{fname}: Secret {doc['metadata']['name']} uses data"


def test_the_secret_check_catches_a_literal():
    assert not _is_placeholder("hunter2")
    assert SENSITIVE_TEXT.search('password: "hunter2"').group(1) == "hunter2"
    assert SENSITIVE_TEXT.search("MLPLATFORM_ADMIN_TOKEN: abc123").group(1) == "abc123"
    assert SENSITIVE_TEXT.search("MLFLOW_TRACKING_TOKEN=abc123").group(1) == "abc123"
    assert SENSITIVE_TEXT.search("password:\n  env: X").group(1) == ""
    assert urlsplit("postgresql://u:hunter2@db/x").password == "hunter2"


# --- Dagster Helm values -----------------------------------------------------------------


@pytest.fixture(scope="module")
def values() -> dict:
    (doc,) = _documents(K8S / "dagster-values.yaml")
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
    secret = _find("Secret", values["global"]["postgresqlSecretName"])
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
