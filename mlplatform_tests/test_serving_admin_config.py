"""How the serving admin token is configured: read from the environment once when
``mlplatform serve`` starts, refused when weak (without quoting it), and in Kubernetes taken from a
secret of its own."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import yaml

from mlplatform.serving.admin import ADMIN_TOKEN_VAR, admin_token_from_environment

pytestmark = pytest.mark.security

TOKEN = "admin-token-0123456789abcdef"
REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_token_comes_from_the_environment_and_a_weak_one_is_refused_unquoted():
    assert admin_token_from_environment({}) is None
    assert admin_token_from_environment({ADMIN_TOKEN_VAR: "  "}) is None
    assert admin_token_from_environment({ADMIN_TOKEN_VAR: f"{TOKEN}\n"}) == TOKEN
    for weak in ("short-token", "has space in the middle 123", "ünïcode-token-0123456789"):
        with pytest.raises(ValueError, match=ADMIN_TOKEN_VAR) as error:
            admin_token_from_environment({ADMIN_TOKEN_VAR: weak})
        assert weak not in str(error.value)


# --- the command and the manifest ------------------------------------------------------------


def _serve_args():
    return argparse.Namespace(dataset=None, host="127.0.0.1", port=0)


@pytest.fixture
def cli_environment(platform, monkeypatch):
    """``mlplatform serve``'s environment, restored afterwards (it sets defaults)."""
    from mlplatform.paths import embedded_defaults

    for key, value in embedded_defaults().items():
        monkeypatch.setenv(key, os.environ.get(key, value))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlplatform import deploy_commands

    # The registry itself is not what this is about.
    monkeypatch.setattr(deploy_commands, "_registry", lambda: ("mlplatform-synthetic_churn", None))
    started = []
    monkeypatch.setattr(
        "mlplatform.serving.app.serve", lambda settings, **where: started.append(settings)
    )
    return deploy_commands, started


def test_serve_reads_the_token_once_at_start_up(cli_environment, monkeypatch, capfd):
    deploy_commands, started = cli_environment
    monkeypatch.setenv(ADMIN_TOKEN_VAR, TOKEN)
    assert deploy_commands.serve(_serve_args()) == 0
    (settings,) = started
    assert settings.admin_token == TOKEN and TOKEN not in repr(settings)
    monkeypatch.delenv(ADMIN_TOKEN_VAR)
    assert deploy_commands.serve(_serve_args()) == 0
    assert started[1].admin_token is None
    assert f"admin endpoints disabled (403): {ADMIN_TOKEN_VAR}" in capfd.readouterr().err


def test_serve_refuses_to_start_with_a_weak_token(cli_environment, monkeypatch, capfd):
    deploy_commands, started = cli_environment
    monkeypatch.setenv(ADMIN_TOKEN_VAR, "hunter2")
    assert deploy_commands.serve(_serve_args()) == 2
    err = capfd.readouterr().err
    assert ADMIN_TOKEN_VAR in err and "hunter2" not in err
    assert started == []


def test_the_serving_deployment_reads_the_token_from_its_own_secret():
    docs = [
        doc
        for name in ("serving.yaml", "namespace-and-secrets.example.yaml")
        for doc in yaml.safe_load_all((REPO_ROOT / "k8s" / name).read_text())
        if doc
    ]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (entry,) = [e for e in container["env"] if e["name"] == ADMIN_TOKEN_VAR]
    ref = entry["valueFrom"]["secretKeyRef"]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    assert ref["key"] in secrets[ref["name"]]["stringData"]
    # Not in the secret every Dagster run pod reads.
    assert ADMIN_TOKEN_VAR not in secrets["mlplatform-env"]["stringData"]
