"""The Kubernetes manifests in ``k8s/``, checked by parsing them (no cluster).

Every ``k8s/*.yaml`` must parse; the manifests must be well-formed objects that validate,
offline, against the Kubernetes JSON schema (strict: no unknown fields) kubernetes-validate
ships; and no file may hold a literal secret. The serving objects are checked in
``test_k8s_serving.py``, the Dagster Helm values and instance config in ``test_k8s_dagster.py``.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from k8s_files import (
    NAMESPACE,
    NOT_MANIFESTS,
    PLACEHOLDER,
    SERVING,
    YAML_FILES,
    documents,
    find,
    manifests,
)

# --- every file --------------------------------------------------------------------------


def test_the_expected_files_exist():
    names = {p.name for p in YAML_FILES}
    assert {"serving.yaml", "mlflow.yaml", "namespace-and-secrets.example.yaml"} <= names
    assert names >= NOT_MANIFESTS, "NOT_MANIFESTS names a file that no longer exists"


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_every_yaml_file_parses(path):
    assert documents(path), f"{path.name} has no YAML document"


@pytest.mark.parametrize(
    "path", [p for p in YAML_FILES if p.name not in NOT_MANIFESTS], ids=lambda p: p.name
)
def test_every_manifest_is_a_named_object(path):
    for doc in documents(path):
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
        for fname, doc in manifests()
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
    deployment = find("Deployment", SERVING, "serving.yaml")
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
    for doc in documents(path):
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
    for fname, doc in manifests():
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
