"""The serving objects of ``k8s/serving.yaml`` fit together: probes, Service, HPA, PDB, env."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from k8s_files import (
    CONFIGMAP,
    ENV_SECRET,
    NAMESPACE,
    SERVING,
    find,
)


@pytest.fixture(scope="module")
def deployment() -> dict:
    return find("Deployment", SERVING, "serving.yaml")


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
    config = find("ConfigMap", CONFIGMAP, "serving.yaml")["data"]
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
    config = find("ConfigMap", CONFIGMAP, "serving.yaml")["data"]
    assert config["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    mlflow_service = find("Service", "mlflow", "mlflow.yaml")
    assert 5000 in {p["port"] for p in mlflow_service["spec"]["ports"]}
    assert config["MLPLATFORM_DATASET"]
    # Kubernetes rejects non-string ConfigMap values (YAML true/1.5 must be quoted).
    assert all(isinstance(v, str) for v in config.values())
    assert not any(re.search(r"PASSWORD|TOKEN|SECRET", k) for k in config)


def test_serving_service_selects_the_pods_and_targets_their_port(pod, container):
    service = find("Service", SERVING, "serving.yaml")
    spec = service["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    assert _labels_match(spec["selector"], pod["metadata"]["labels"])
    (port,) = spec["ports"]
    assert port["port"] == 8080
    assert _resolve_port(container, port.get("targetPort", port["port"])) == 8080


def test_the_serving_url_dagster_uses_points_at_the_service():
    secret = find("Secret", ENV_SECRET, "namespace-and-secrets.example.yaml")
    url = urlsplit(secret["stringData"]["MLPLATFORM_SERVING_URL"])
    service = find("Service", SERVING, "serving.yaml")
    assert url.hostname.split(".")[:3] == [SERVING, NAMESPACE, "svc"]
    assert url.port in {p["port"] for p in service["spec"]["ports"]}


def test_serving_hpa_scales_the_deployment_on_cpu(deployment):
    hpa = find("HorizontalPodAutoscaler", SERVING, "serving.yaml")
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
    pdb = find("PodDisruptionBudget", SERVING, "serving.yaml")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
