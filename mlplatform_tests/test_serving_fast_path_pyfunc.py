"""The serving fast path of a saved MLflow model: verified against the pyfunc it stands in for,
and used by the server for small requests only."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.models import infer_signature

from mlplatform.serving.app import ServingSettings, create_app
from mlplatform.serving.batching import FAST_PATH_MAX_ROWS
from mlplatform.serving.fast_path import row_scorer_for_model
from mlplatform.serving.frame import parse_payload
from mlplatform.serving.slots import ModelSlots
from mlplatform_tests.fast_path_training import train_pipelines


@pytest.fixture(scope="module")
def trained():
    """The gradient-boosting pipeline fitted on synthetic rows with gaps, and rows to score."""
    return train_pipelines(("gradient_boosting",))


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, trained) -> str:
    """The gradient-boosting pipeline saved as an MLflow model, as training logs it."""
    pipelines, sample, _ = trained
    pipeline = pipelines["gradient_boosting"]
    path = tmp_path_factory.mktemp("fast-path") / "model"
    mlflow.sklearn.save_model(
        pipeline,
        path,
        signature=infer_signature(sample, pipeline.predict_proba(sample)[:, 1]),
        input_example=sample,
        pyfunc_predict_fn="predict_proba",
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],  # not inferred: that loads the model in a subprocess
    )
    return str(path)


@pytest.fixture
def served(saved_model, trained):
    """The pipeline and the saved model loaded as a pyfunc, as serving loads it."""
    return trained[0]["gradient_boosting"], mlflow.pyfunc.load_model(saved_model)


def test_the_fast_path_of_a_pyfunc_is_verified_against_the_pyfunc(served, caplog):
    _, model = served
    with caplog.at_level(logging.INFO, logger="mlplatform.serving.fast_path"):
        assert row_scorer_for_model(model, "churn v1") is not None
    assert "churn v1: fast path on" in caplog.text
    assert row_scorer_for_model(SimpleNamespace(predict=lambda frame: None)) is None
    model.input_example = None
    assert row_scorer_for_model(model) is None


class Registry:
    def get_registered_model(self, name):
        return SimpleNamespace(aliases={"champion": "1", "previous": "2"}, tags={})


def test_the_server_scores_small_requests_with_the_fast_path_and_says_so(
    served, trained, monkeypatch
):
    pipeline, model = served
    calls = []
    predict = model.predict
    other = SimpleNamespace(predict=lambda frame: pipeline.predict_proba(frame))
    slots = ModelSlots(Registry(), "churn", loader=lambda name, v: {"1": model, "2": other}[v])
    settings = ServingSettings(tracking_uri="unused", model_name="churn", max_rows=1000)
    rows = trained[2].head(FAST_PATH_MAX_ROWS + 10)
    records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    with TestClient(create_app(settings, slots)) as client:
        assert client.get("/health").json()["fast_path"] == {"1": True, "2": False}
        monkeypatch.setattr(model, "predict", lambda f, *a, **k: calls.append(len(f)) or predict(f))
        for body in (records[:1], records[:20], records):
            answer = client.post("/invocations", json={"dataframe_records": body})
            assert answer.status_code == 200
            frame = parse_payload({"dataframe_records": body}, model.metadata.signature)
            assert answer.json()["predictions"] == pipeline.predict_proba(frame)[:, 1].tolist()
    assert calls == [len(records)]  # only the request above FAST_PATH_MAX_ROWS reached predict
