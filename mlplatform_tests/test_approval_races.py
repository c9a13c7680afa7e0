"""Approvals under concurrency and tampering: of two racing approvals exactly one is recorded,
a decision is one atomic write, and a version whose deploy gates failed or never ran cannot be
approved (through the CLI too, with nothing recorded)."""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient
from tiny_registry import build_template

from mlplatform.deployment.approvals import (
    GATE_TAG_PREFIX,
    HISTORY_TAG,
    RECORD_TAG,
    STATUS_TAG,
    ApprovalConflict,
    approval_for,
    record_decision,
)

pytestmark = [pytest.mark.security, pytest.mark.fault]
NAME = "mlplatform-synthetic_churn"  # the CLI's model name for the synthetic_churn spec
APPROVERS = "alice, bob"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """A registry with v1 of a tiny model that passed every gate, trained by carol."""
    return build_template(tmp_path_factory.mktemp("registry"), NAME, 1)


@pytest.fixture
def uri(template_db, tmp_path) -> str:
    shutil.copy(template_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def client(uri) -> MlflowClient:
    return MlflowClient(uri, uri)


def _history(client) -> list[dict]:
    return json.loads(client.get_model_version(NAME, "1").tags[RECORD_TAG])["history"]


def test_two_approvals_racing_from_threads_record_exactly_one(client):
    barrier, outcomes = threading.Barrier(2), {}

    def approve(by: str) -> None:
        barrier.wait()
        try:
            outcomes[by] = record_decision(client, NAME, "1", "approved", by, "ok", APPROVERS)
        except ApprovalConflict as exc:
            outcomes[by] = exc

    threads = [threading.Thread(target=approve, args=(by,)) for by in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (conflict,) = [o for o in outcomes.values() if isinstance(o, ApprovalConflict)]
    (winner,) = [o for o in outcomes.values() if not isinstance(o, ApprovalConflict)]
    assert f"was approved by {winner.by}" in str(conflict) and "nothing recorded" in str(conflict)
    assert [entry["by"] for entry in _history(client)] == [winner.by]
    assert approval_for(client, NAME, "1") == winner


def _approve_in_process(uri: str, by: str, barrier, results) -> None:
    barrier.wait()
    try:
        record_decision(MlflowClient(uri, uri), NAME, "1", "approved", by, "ok", APPROVERS)
        results.put((by, "recorded"))
    except ApprovalConflict as exc:
        results.put((by, f"conflict: {exc}"))


def test_two_approvals_racing_from_processes_record_exactly_one(uri, client):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_approve_in_process, args=(uri, by, barrier, results))
        for by in ("alice", "bob")
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=180) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    winners = [by for by, outcome in outcomes.items() if outcome == "recorded"]
    assert len(winners) == 1, outcomes
    (loser,) = set(outcomes) - set(winners)
    assert outcomes[loser].startswith("conflict: ") and winners[0] in outcomes[loser]
    assert [entry["by"] for entry in _history(client)] == winners


class FailsAfterRecord:
    """An MlflowClient whose process dies right after the decision's first tag write."""

    def __init__(self, client):
        self.client, self.writes = client, 0

    def __getattr__(self, name):
        method = getattr(self.client, name)
        if name != "set_model_version_tag":
            return method

        def write(*args):
            if self.writes == 1:
                raise ConnectionError("registry gone")
            self.writes += 1
            return method(*args)

        return write


def test_a_decision_is_one_write_so_no_reader_sees_half_of_it(client):
    record_decision(client, NAME, "1", "approved", "alice", "slices fine", APPROVERS)
    with pytest.raises(ConnectionError):
        record_decision(
            FailsAfterRecord(client), NAME, "1", "rejected", "bob", "drift in region", APPROVERS
        )
    # The readable copies still say alice approved; the record (what everyone reads) has bob's
    # rejection whole: status, who, when and why of one decision.
    assert client.get_model_version(NAME, "1").tags[STATUS_TAG] == "approved"
    decision = approval_for(client, NAME, "1")
    assert (decision.status, decision.by, decision.reason) == ("rejected", "bob", "drift in region")
    assert [e["by"] for e in _history(client)] == ["alice", "bob"]


def _approve_cli(env: dict, cwd: Path, by: str = "alice") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "mlplatform"), "approve", "1", "--by", by, "--reason", "looked fine"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("gate_value", "message"),
    [
        ("failed", "serving_parity failed"),
        (None, "serving_parity never ran \\(no mlplatform.gate.serving_parity tag\\)"),
    ],
)
def test_the_cli_refuses_to_approve_a_version_whose_gate_failed_or_never_ran(
    uri, client, platform, subprocess_env, gate_value, message
):
    tag = GATE_TAG_PREFIX + "serving_parity"
    if gate_value is None:
        client.delete_model_version_tag(NAME, "1", tag)
    else:
        client.set_model_version_tag(NAME, "1", tag, gate_value)
    env = {**subprocess_env, "MLFLOW_TRACKING_URI": uri, "MLPLATFORM_APPROVERS": APPROVERS}
    env.pop("MLFLOW_REGISTRY_URI", None)
    refused = _approve_cli(env, platform.root)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "cannot be approved: deploy gate(s) not passed" in refused.stderr
    assert re.search(message, refused.stderr), refused.stderr
    tags = client.get_model_version(NAME, "1").tags
    assert not {RECORD_TAG, STATUS_TAG, HISTORY_TAG} & set(tags)  # nothing recorded


def test_the_cli_reports_a_second_approval_as_a_conflict(uri, client, platform, subprocess_env):
    env = {**subprocess_env, "MLFLOW_TRACKING_URI": uri, "MLPLATFORM_APPROVERS": APPROVERS}
    env.pop("MLFLOW_REGISTRY_URI", None)
    first = _approve_cli(env, platform.root, by="alice")
    assert first.returncode == 0, first.stdout + first.stderr
    second = _approve_cli(env, platform.root, by="bob")
    assert second.returncode == 3, second.stdout + second.stderr
    assert "conflict" in second.stderr and "was approved by alice" in second.stderr
    assert [e["by"] for e in _history(client)] == ["alice"]
