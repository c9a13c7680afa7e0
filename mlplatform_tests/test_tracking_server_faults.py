"""MLflow store unavailable (issue 7), on a tracking server that is stopped or failing: bounded
retries (exactly the configured attempts), then a clear failure naming the store, the operation
and the attempts; a server error that retrying cannot mend is not retried."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow.exceptions import MlflowException

from mlplatform.defs.training.resources import MLflowResource
from mlplatform.ml.registry import CHAMPION, promote_to_champion
from mlplatform.ml.retry import StoreUnavailableError
from mlplatform_tests.registry_faults import closed_port

pytestmark = pytest.mark.fault

NAME = "faults"


def test_a_stopped_tracking_server_fails_training_and_deploy_fast_and_clearly(mlflow_globals):
    port = closed_port()
    uri = f"http://127.0.0.1:{port}"
    resource = MLflowResource(tracking_uri=uri, retries="3", retry_seconds="0.05")
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as training:
        with resource.start_run("train-faults"):
            pytest.fail("a run started against a stopped server")
    client = resource.client()
    with pytest.raises(StoreUnavailableError) as deploy:
        promote_to_champion(client, NAME, "2")
    # MLflow's own 7 retries per request with exponential back-off are off: our 3 attempts
    # with 0.05 s and 0.1 s of back-off are the whole wait.
    assert time.monotonic() - started < 10
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    for caught, operation in (
        (training, "find or create experiment mlplatform"),
        (deploy, "get_registered_model('faults')"),
    ):
        message = str(caught.value)
        assert message.startswith(f"MLflow store {uri} unavailable")
        assert f"{operation} failed 3 time(s)" in message and "Connection refused" in message


class StatusServer:
    """A loopback HTTP server answering every request with one status code, counting them."""

    def __init__(self, status: int):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                outer.requests += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._server.shutdown()
        self._server.server_close()


def test_a_tracking_server_answering_503_gets_exactly_the_configured_attempts(mlflow_globals):
    with StatusServer(503) as server:
        client = MLflowResource(tracking_uri=server.uri, retries="4", retry_seconds="0.01").client()
        with pytest.raises(StoreUnavailableError, match="failed 4 time"):
            client.set_registered_model_alias(NAME, CHAMPION, "2")
    assert server.requests == 4  # one request per attempt


def test_a_tracking_server_answering_500_is_not_retried(mlflow_globals):
    with StatusServer(500) as server:
        client = MLflowResource(tracking_uri=server.uri, retries="4", retry_seconds="0.01").client()
        with pytest.raises(MlflowException, match="too many 500 error responses") as caught:
            client.set_registered_model_alias(NAME, CHAMPION, "2")
    assert not isinstance(caught.value, StoreUnavailableError)
    assert server.requests == 1
