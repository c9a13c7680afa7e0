"""Load a registered model the way serving does, in a separate process, and score rows.

A model that scores in the training process can still fail to load elsewhere (a missing
dependency, code that was not packaged, a pickle that needs this process's state). Running the
load-and-query in a fresh interpreter catches that before the model gets traffic.

Run as ``python -m mlplatform.deployment.smoke <model_uri> <rows.parquet>``: prints one JSON
line ``{"rows": n, "invalid": k}`` and exits 0, or exits 1 with the error. Like serving, it
loads only a registry reference (``models:/<name>/<version>`` or ``@<alias>``) whose artefacts
match the digest recorded at registration (:mod:`mlplatform.ml.integrity`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SmokeResult:
    """Outcome of one load-and-query in a separate process."""

    passed: bool
    rows: int
    invalid: int
    seconds: float
    error: str | None


def smoke_test(
    model_uri: str,
    rows_path: Path,
    tracking_uri: str,
    python: str = sys.executable,
    timeout: float = 300.0,
) -> SmokeResult:
    """Loads ``model_uri`` with ``mlflow.pyfunc`` in a fresh interpreter and scores the rows.

    Args:
        model_uri: E.g. ``models:/mlplatform-synthetic_churn/7``.
        rows_path: Parquet file of raw input rows (model-input form).
        tracking_uri: The registry the serving process reads.
        python: Interpreter the serving process runs.
        timeout: Seconds before the attempt counts as failed.

    Returns:
        Passed when every row got a probability in [0, 1]; the error text otherwise (also
        when ``model_uri`` is not a registry reference or its artefacts fail verification).
    """
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [python, "-m", "mlplatform.deployment.smoke", model_uri, str(rows_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return SmokeResult(False, 0, 0, timeout, f"no answer within {timeout:g} s")
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        return SmokeResult(False, 0, 0, seconds, result.stderr.strip()[-3000:] or "exit 1")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    passed = report["rows"] > 0 and report["invalid"] == 0
    error = None if passed else f"{report['invalid']} of {report['rows']} scores invalid"
    return SmokeResult(passed, report["rows"], report["invalid"], seconds, error)


def _main(model_uri: str, rows_path: str) -> int:
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient

    from mlplatform.ml.integrity import verify_model_uri

    rows = pd.read_parquet(rows_path)
    # The verified copy lives as long as this process needs it, not in /tmp for good.
    with tempfile.TemporaryDirectory(prefix="mlplatform-smoke-") as local:
        model = mlflow.pyfunc.load_model(verify_model_uri(MlflowClient(), model_uri, local))
        scores = np.asarray(model.predict(rows), dtype=float)
    positive = scores[:, 1] if scores.ndim == 2 else scores
    valid = np.isfinite(positive) & (positive >= 0) & (positive <= 1)
    invalid = int((~valid).sum()) + abs(len(positive) - len(rows))
    print(json.dumps({"rows": len(rows), "invalid": invalid}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m mlplatform.deployment.smoke <model_uri> <rows.parquet>")
    sys.exit(_main(sys.argv[1], sys.argv[2]))
