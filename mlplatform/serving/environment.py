"""The serving process's environment, for comparison with the one that trained the model."""

from __future__ import annotations

from mlplatform.ml.provenance import PIPELINE_DISTRIBUTIONS, environment_report

# The web stack has no training counterpart, so it is reported apart: the deploy gate treats
# any key missing on one side as a difference.
SERVING_DISTRIBUTIONS = ("fastapi", "starlette", "uvicorn", "prometheus-client")


def serving_environment() -> dict[str, str]:
    """This interpreter's version and the exact version of each library the pipeline needs.

    The same keys as the training run's environment (``environment_report``), so the deploy
    gate can compare the two one to one.

    Returns:
        ``{"python": "3.11.7", "mlflow": ..., "scikit-learn": ..., "pandas": ...,
        "numpy": ..., "scipy": ..., ...}``; "not installed" for a missing distribution.
    """
    return environment_report(PIPELINE_DISTRIBUTIONS)


def serving_stack() -> dict[str, str]:
    """Exact versions of the web stack that serves (not part of the parity comparison)."""
    report = environment_report(SERVING_DISTRIBUTIONS)
    del report["python"]
    return report
