"""The YAML files in ``k8s/``, read for the tests that check them (no cluster)."""

from __future__ import annotations

from pathlib import Path

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


def documents(path: Path) -> list:
    """The YAML documents of one file."""
    # Empty documents (a leading or trailing ---) are not objects.
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[tuple[str, dict]]:
    """(file name, object) for every Kubernetes object in k8s/."""
    return [
        (path.name, doc)
        for path in YAML_FILES
        if path.name not in NOT_MANIFESTS
        for doc in documents(path)
    ]


def find(kind: str, name: str, file: str | None = None) -> dict:
    """The one object of a kind and name (in one file when given)."""
    found = [
        doc
        for fname, doc in manifests()
        if doc["kind"] == kind
        and doc["metadata"]["name"] == name
        and (file is None or fname == file)
    ]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]
