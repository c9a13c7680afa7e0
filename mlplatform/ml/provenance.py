"""Which code and which environment produced a model: git commit and exact library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# Distributions a logged pipeline needs at load time, pinned to the versions that trained it.
# The pipeline's own feature code (mlplatform) travels with the model as code (code_paths);
# pyyaml is what that code imports beyond these.
PIPELINE_DISTRIBUTIONS = (
    "mlflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "skops",
    "joblib",
    "threadpoolctl",
    "pyyaml",
)


def pinned_requirements(distributions=PIPELINE_DISTRIBUTIONS) -> list[str]:
    """``name==version`` for each installed distribution the pipeline needs.

    Raises:
        metadata.PackageNotFoundError: A needed distribution is not installed.
    """
    return [f"{name}=={metadata.version(name)}" for name in distributions]


def environment_report(distributions=PIPELINE_DISTRIBUTIONS) -> dict[str, str]:
    """This interpreter's version and the exact version of each distribution a pipeline needs.

    Returns:
        ``{"python": "3.11.7", "scikit-learn": "1.9.1", ...}``; "not installed" for a missing
        distribution (a serving process without it cannot load the model: a parity failure).
    """
    report = {"python": platform.python_version()}
    for name in distributions:
        try:
            report[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            report[name] = "not installed"
    return report


def environment_tags() -> dict[str, str]:
    """The interpreter and library versions of this process, as MLflow tags."""
    tags = {"python_version": platform.python_version()}
    for name in PIPELINE_DISTRIBUTIONS:
        tags[f"{name.replace('-', '_')}_version"] = metadata.version(name)
    return tags


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def code_version(root: Path) -> dict[str, str]:
    """The code a model is trained with: git commit and whether the tree had local changes.

    A git checkout wins; without one (an image), ``MLPLATFORM_CODE_VERSION`` set at build time
    names the code.

    Args:
        root: The project checkout.

    Returns:
        Tags ``git_commit``, ``git_dirty`` and ``code_version`` ("unknown" without git).
    """
    commit = _git(root, "rev-parse", "HEAD") if (root / ".git").exists() else None
    if commit is None:
        baked = os.environ.get("MLPLATFORM_CODE_VERSION", "").strip() or "unknown"
        return {"git_commit": baked, "git_dirty": "unknown", "code_version": baked}
    # New, untracked modules of the package count: a model trained with them is not the commit.
    dirty = bool(_git(root, "status", "--porcelain", "--", "mlplatform", "pyproject.toml"))
    return {
        "git_commit": commit,
        "git_dirty": str(dirty).lower(),
        "code_version": commit[:12] + ("-dirty" if dirty else ""),
    }


def source_digest(*modules) -> str:
    """A short hash of the source of these modules: a code version that changes with the code.

    Args:
        *modules: Imported modules (e.g. the training and feature code).

    Returns:
        16 hex characters.
    """
    import hashlib
    import inspect

    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]
