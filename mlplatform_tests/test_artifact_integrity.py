"""Artefact integrity and loading rules: a model version loads only from the registry, only
with the bytes it was registered with; a tampered version leaves the champion serving."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from registry_faults import mlflow_pointed_at
from sklearn.linear_model import LogisticRegression

from mlplatform.deployment.smoke import smoke_test
from mlplatform.ml.integrity import (
    DIGEST_TAG,
    ArtifactIntegrityError,
    artifact_digest,
    record_artifact_digest,
    remove_generated,
    verify_model_uri,
    verify_model_version,
)
from mlplatform.ml.registry import load_pipeline, log_and_register
from mlplatform.serving.app import ServingSettings, create_app
from mlplatform.serving.payload import PayloadError, read_table
from mlplatform.serving.slots import ModelSlots, load_pyfunc

NAME = "integrity-test"
ROWS = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


FILES = {"MLmodel": b"flavors: {}\n", "model.skops": b"\x00\x01weights", "code/m/f.py": b"x = 1\n"}


def _mutations():
    def flip(root):
        data = bytearray((root / "model.skops").read_bytes())
        data[3] ^= 0x01
        (root / "model.skops").write_bytes(bytes(data))

    return {
        "one bit of one file": flip,
        "a byte appended": lambda r: (r / "code/m/f.py").write_bytes(b"x = 1\n\n"),
        "a file renamed": lambda r: (r / "model.skops").rename(r / "model.skop"),
        "a file moved to another directory": lambda r: (r / "code/m/f.py").rename(r / "f.py"),
        "an empty file added": lambda r: (r / "code/m/new.py").write_bytes(b""),
        "a file deleted": lambda r: (r / "MLmodel").unlink(),
        "bytes moved between path and content": lambda r: (
            (r / "MLmodel").unlink(),
            (r / "MLmode").write_bytes(b"l" + FILES["MLmodel"]),
        ),
        "a sourceless .pyc beside the code": lambda r: (r / "code/m/g.pyc").write_bytes(b"pyc"),
        "registered_model_meta below the top": lambda r: (
            r / "code/registered_model_meta"
        ).write_bytes(b"model_name: x\n"),
    }


@pytest.mark.fault
def test_the_digest_is_stable_across_copies_and_write_order(tmp_path):
    first = _tree(tmp_path / "a", FILES)
    second = _tree(tmp_path / "b", dict(reversed(FILES.items())))
    assert artifact_digest(first) == artifact_digest(first) == artifact_digest(second)
    assert len(artifact_digest(first)) == 64


@pytest.mark.fault
@pytest.mark.parametrize("mutation", list(_mutations()))
def test_the_digest_changes_with_any_byte_or_file_name(tmp_path, mutation):
    root = _tree(tmp_path / "model", FILES)
    before = artifact_digest(root)
    _mutations()[mutation](root)
    assert artifact_digest(root) != before


@pytest.mark.fault
def test_only_what_reading_the_store_writes_is_left_out_and_removed_before_loading(tmp_path):
    root = _tree(tmp_path / "model", FILES)
    before = artifact_digest(root)
    _tree(root, {"registered_model_meta": b"model_name: m\n", "code/m/__pycache__/f.pyc": b"!"})
    assert artifact_digest(root) == before
    remove_generated(root)
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [
        "MLmodel",
        "f.py",
        "model.skops",
    ]


@pytest.mark.fault
def test_a_symbolic_link_in_the_artefacts_is_refused(tmp_path):
    root = _tree(tmp_path / "model", FILES)
    (root / "code/link.py").symlink_to(tmp_path / "elsewhere.py")
    with pytest.raises(ValueError, match="symbolic link"):
        artifact_digest(root)


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A sqlite registry with v1 and v2 registered by log_and_register; a pristine artefact copy."""
    root = tmp_path_factory.mktemp("integrity")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # load_pyfunc reads the process-global URIs, as in the serving process.
    with mlflow_pointed_at(uri):
        experiment = mlflow.create_experiment("integrity", (root / "artifacts").as_uri())
        for labels in ([0, 0, 1, 1], [1, 1, 0, 0]):
            model = LogisticRegression().fit(ROWS, labels)
            with mlflow.start_run(experiment_id=experiment):
                log_and_register(model, ROWS, model.predict_proba(ROWS), NAME)
        shutil.copytree(root / "artifacts", root / "pristine")
        yield root, MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def client(registered):
    """The registry with v1 champion; artefacts and digest tags restored after each test."""
    root, client = registered
    digests = {v: client.get_model_version(NAME, v).tags[DIGEST_TAG] for v in ("1", "2")}
    client.set_registered_model_alias(NAME, "champion", "1")
    yield client
    shutil.rmtree(root / "artifacts")
    shutil.copytree(root / "pristine", root / "artifacts")
    for version, digest in digests.items():
        client.set_model_version_tag(NAME, version, DIGEST_TAG, digest)
    client.delete_registered_model_alias(NAME, "previous")


def _store(client, version: str) -> Path:
    """The version's directory in the artefact store (what an attacker would edit)."""
    return Path(url2pathname(urlparse(client.get_model_version_download_uri(NAME, version)).path))


def _tamper(client, version: str, relative: str = "model.skops") -> None:
    path = _store(client, version) / relative
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.fault
def test_registration_records_the_digest_and_loading_uses_a_checked_copy(client, tmp_path):
    recorded = client.get_model_version(NAME, "1").tags[DIGEST_TAG]
    assert recorded == artifact_digest(_store(client, "1"))
    local = Path(verify_model_version(client, NAME, "1", tmp_path))
    assert local.is_relative_to(tmp_path) and artifact_digest(local) == recorded
    # The packaged feature code is covered too, not only the pickle.
    assert any(local.glob("code/mlplatform/**/*.py"))


@pytest.mark.fault
@pytest.mark.parametrize("relative", ["model.skops", "MLmodel", "code/mlplatform/ml/training.py"])
def test_a_version_modified_after_registration_is_refused_with_both_digests(client, relative):
    expected = client.get_model_version(NAME, "2").tags[DIGEST_TAG]
    _tamper(client, "2", relative)
    with pytest.raises(ArtifactIntegrityError) as error:
        verify_model_version(client, NAME, "2")
    message = str(error.value)
    assert f"{NAME} v2" in message and expected in message and error.value.actual in message
    assert error.value.actual != expected
    with pytest.raises(ArtifactIntegrityError):
        load_pipeline(NAME, "2")  # evaluation's loader
    verify_model_version(client, NAME, "1")  # the untampered version still loads


@pytest.mark.fault
def test_a_version_without_a_digest_is_refused_until_one_is_recorded(client):
    client.delete_model_version_tag(NAME, "2", DIGEST_TAG)
    with pytest.raises(ArtifactIntegrityError, match=f"v2: it has no {DIGEST_TAG} tag"):
        verify_model_version(client, NAME, "2")
    record_artifact_digest(client, NAME, "2")
    verify_model_version(client, NAME, "2")


@pytest.mark.fault
def test_a_recorded_digest_is_never_overwritten_by_tampered_bytes(client):
    recorded = client.get_model_version(NAME, "2").tags[DIGEST_TAG]
    _tamper(client, "2")
    with pytest.raises(ArtifactIntegrityError, match="changed after registration"):
        record_artifact_digest(client, NAME, "2")
    assert client.get_model_version(NAME, "2").tags[DIGEST_TAG] == recorded


@pytest.mark.fault
def test_serving_keeps_the_champion_when_the_new_one_was_tampered_and_retries_later(
    client, caplog, tmp_path
):
    slots = ModelSlots(client, NAME, poll_seconds=60)
    assert slots._loader is load_pyfunc  # the serving process's own loader
    assert slots.refresh().champion_version == "1"
    shutil.copytree(_store(client, "2"), tmp_path / "backup")
    _tamper(client, "2")
    client.set_registered_model_alias(NAME, "previous", "1")
    client.set_registered_model_alias(NAME, "champion", "2")
    with caplog.at_level(logging.ERROR, logger="mlplatform.serving.slots"):
        assert slots.refresh().champion_version == "1"
        assert slots.refresh().champion_version == "1"
    failures = [r for r in caplog.records if r.exc_info and "v2 failed" in r.getMessage()]
    assert len(failures) == 1  # logged once, then backed off rather than retried every poll
    assert isinstance(failures[0].exc_info[1], ArtifactIntegrityError)
    scores = slots.snapshot().champion.model.predict(ROWS)
    np.testing.assert_allclose(scores, load_pipeline(NAME, "1").predict_proba(ROWS))
    # Once the registered bytes are back, the retry loads the new champion.
    shutil.rmtree(_store(client, "2"))
    shutil.copytree(tmp_path / "backup", _store(client, "2"))
    slots._failed["2"] = (0.0, 1.0)  # the back-off has passed
    assert slots.refresh().champion_version == "2"


@pytest.mark.fault
def test_the_smoke_test_refuses_a_tampered_version(client, tmp_path):
    _tamper(client, "2")
    ROWS.to_parquet(tmp_path / "rows.parquet")
    tracking_uri = client.tracking_uri
    result = smoke_test(f"models:/{NAME}/2", tmp_path / "rows.parquet", tracking_uri)
    assert not result.passed
    assert (
        "ArtifactIntegrityError" in result.error and "modified after registration" in result.error
    )


class NoRegistry:
    """A client that must not be asked anything: the URI is refused before any lookup."""

    def __getattr__(self, name):
        raise AssertionError(f"registry consulted ({name}) for a URI that should be refused")


@pytest.mark.security
@pytest.mark.parametrize(
    "uri",
    [
        "file:///tmp/x",
        "/tmp/x",
        "runs:/0123/model",
        "s3://bucket/model",
        "https://example.invalid/model.tar",
        "models:/m-0123abcd",  # a logged model id: not a registered version
        "models:/name/1/../../other",
        "models:/name/latest",
    ],
)
def test_only_registry_references_are_loaded(uri):
    with pytest.raises(ValueError, match="not a registry reference"):
        verify_model_uri(NoRegistry(), uri)


@pytest.mark.security
def test_a_request_cannot_choose_what_is_loaded(client, tmp_path):
    evil = tmp_path / "evil"
    shutil.copytree(_store(client, "2"), evil)  # a loadable model the request points at
    loads = []

    def recording_loader(name, version):
        loads.append((name, version))
        return load_pyfunc(name, version)

    slots = ModelSlots(client, NAME, poll_seconds=60, loader=recording_loader)
    settings = ServingSettings(tracking_uri=client.tracking_uri, model_name=NAME)
    records = [{"x": 1.0}, {"x": 2.0}]
    expected = load_pipeline(NAME, "1").predict_proba(pd.DataFrame(records))[:, 1]
    hostile = [
        {"model_uri": evil.as_uri(), "dataframe_records": records},
        {"dataframe_records": records, "model_version": "2"},
        {"inputs": records, "params": {"model_uri": str(evil)}},
    ]
    with TestClient(create_app(settings, slots=slots)) as http:
        for body in hostile:
            with pytest.raises(PayloadError):
                read_table(body)
            response = http.post("/invocations", json=body)
            assert response.status_code == 400, body
            assert "exactly one key" in response.json()["message"]
        response = http.post(
            f"/invocations?model_uri={evil.as_uri()}&version=2",
            json={"dataframe_records": records},
            headers={"X-Model-Uri": evil.as_uri(), "X-Model-Version": "2", "Model": str(evil)},
        )
    assert response.status_code == 200 and response.headers["X-Model-Version"] == "1"
    np.testing.assert_allclose(response.json()["predictions"], expected)
    assert loads == [(NAME, "1")]
