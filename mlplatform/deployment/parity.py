"""Serving must run the environment the model was trained in: compare the two, exactly.

The training run records its interpreter and library versions as tags (``python_version``,
``scikit_learn_version``, ...); the serving side reports the same names (``environment_report``
of the process that serves, or of the interpreter that would). Any difference blocks a deploy:
a pickled scikit-learn pipeline is only guaranteed to behave the same under the same versions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from mlplatform.ml.provenance import PIPELINE_DISTRIBUTIONS


@dataclass(frozen=True)
class Difference:
    """One component whose version differs between training and serving."""

    component: str
    training: str
    serving: str


def training_environment(run_tags: dict[str, str]) -> dict[str, str]:
    """The environment a model was trained in, from its MLflow run's tags.

    Raises:
        ValueError: The run recorded no environment (trained by something else than the
            platform): parity cannot be shown.
    """
    if "python_version" not in run_tags:
        raise ValueError("the training run recorded no environment (no python_version tag)")
    report = {"python": run_tags["python_version"]}
    for name in PIPELINE_DISTRIBUTIONS:
        report[name] = run_tags.get(f"{name.replace('-', '_')}_version", "not recorded")
    return report


def compare_environments(training: dict[str, str], serving: dict[str, str]) -> list[Difference]:
    """Components whose versions differ (missing on one side counts), in training's order."""
    names = [*training, *(name for name in serving if name not in training)]
    return [
        Difference(name, training.get(name, "absent"), serving.get(name, "absent"))
        for name in names
        if training.get(name) != serving.get(name)
    ]


def differences_markdown(differences: list[Difference]) -> str:
    """A table of the differences for the Dagster UI (a line saying so when there are none)."""
    if not differences:
        return "Training and serving environments are identical."
    rows = ["| component | training | serving |", "| --- | --- | --- |"]
    rows += [f"| {d.component} | {d.training} | {d.serving} |" for d in differences]
    return "\n".join(rows)


def interpreter_environment(python: str = sys.executable, timeout: float = 120.0) -> dict:
    """``environment_report`` of a fresh interpreter, as a serving process started with it sees.

    Raises:
        RuntimeError: The interpreter failed to report (the message carries its stderr).
    """
    code = "import json; from mlplatform.ml.provenance import environment_report as r; "
    code += "print(json.dumps(r()))"
    result = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{python} could not report its environment: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
