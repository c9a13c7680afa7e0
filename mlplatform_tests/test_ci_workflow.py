"""The GitHub Actions workflow (``.github/workflows/ci.yml``), checked by parsing it (no network).

Four test layers as jobs (code, data, model, e2e), each on ubuntu-latest with Python 3.11 and
the pinned install; a deploy job that needs all four, runs for pushes to main only and uses the
protected ``production`` environment; and every test module runs in exactly one layer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
TESTS = Path(__file__).resolve().parent
LAYERS = ("code", "data", "model", "e2e")
# Unit-test layers: each lists its modules by file and runs them with -m "not e2e".
UNIT_LAYERS = ("code", "data", "model")
INSTALL = "pip install -c constraints.txt -e '.[dev]'"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def jobs(workflow) -> dict:
    return workflow["jobs"]


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _uses(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def _listed_modules(job: dict) -> list[str]:
    return [
        name
        for run in _runs(job)
        if "pytest" in run
        for name in re.findall(r"mlplatform_tests/(test_\w+\.py)", run)
    ]


def _e2e_modules() -> set[str]:
    """Modules marked e2e as a whole: only the e2e job runs them."""
    mark = re.compile(r"^pytestmark\s*=\s*pytest\.mark\.e2e\s*$", re.M)
    return {p.name for p in TESTS.glob("test_*.py") if mark.search(p.read_text())}


def test_triggers(workflow):
    # PyYAML (YAML 1.1) reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers is not None, "the workflow has no `on:`"
    assert triggers["push"]["branches"] == ["main"]
    assert "pull_request" in triggers


def test_the_five_jobs_exist(jobs):
    assert set(jobs) == {*LAYERS, "deploy"}


@pytest.mark.parametrize("name", LAYERS)
def test_each_layer_installs_the_pins_on_python_311(jobs, name):
    job = jobs[name]
    assert job["runs-on"] == "ubuntu-latest"
    assert "needs" not in job, "the layers run in parallel"
    (checkout,) = _uses(job, "actions/checkout")
    (setup,) = _uses(job, "actions/setup-python")
    assert job["steps"].index(checkout) < job["steps"].index(setup)
    assert str(setup["with"]["python-version"]) == "3.11"
    assert setup["with"]["cache"] == "pip"
    assert {"pyproject.toml", "constraints.txt"} <= set(
        setup["with"]["cache-dependency-path"].split()
    )
    assert any(INSTALL in run for run in _runs(job))


def test_code_job_lints(jobs):
    runs = "\n".join(_runs(jobs["code"]))
    assert "ruff check" in runs
    assert "ruff format --check" in runs


@pytest.mark.parametrize("name", UNIT_LAYERS)
def test_unit_layers_deselect_e2e(jobs, name):
    (run,) = [r for r in _runs(jobs[name]) if "pytest" in r]
    assert '-m "not e2e"' in run
    assert _listed_modules(jobs[name]), f"{name} lists no test module"


def test_every_test_module_runs_in_exactly_one_layer(jobs):
    listed = [m for name in UNIT_LAYERS for m in _listed_modules(jobs[name])]
    duplicates = sorted({m for m in listed if listed.count(m) > 1})
    assert not duplicates, f"in more than one layer: {duplicates}"
    existing = {p.name for p in TESTS.glob("test_*.py")}
    e2e = _e2e_modules()
    assert e2e, "no module is marked e2e as a whole"
    assert not set(listed) - existing, f"listed but missing: {sorted(set(listed) - existing)}"
    assert not set(listed) & e2e, f"e2e-only modules in a unit layer: {sorted(set(listed) & e2e)}"
    unassigned = existing - set(listed) - e2e
    assert not unassigned, f"in no CI job: {sorted(unassigned)}"


def test_e2e_job_runs_the_e2e_marker_against_postgres(jobs):
    job = jobs["e2e"]
    assert any(re.search(r'pytest -m "?e2e"?\s*$', run.strip()) for run in _runs(job))
    postgres = job["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "5432:5432" in [str(p) for p in postgres["ports"]]
    assert "shared/data/telco_customer_churn.csv" in "\n".join(_runs(job))


def test_deploy_needs_the_four_layers_and_the_production_environment(jobs):
    deploy = jobs["deploy"]
    assert sorted(deploy["needs"]) == sorted(LAYERS)
    environment = deploy["environment"]
    name = environment["name"] if isinstance(environment, dict) else environment
    assert name == "production"
    condition = deploy["if"]
    assert "github.event_name == 'push'" in condition
    assert "github.ref == 'refs/heads/main'" in condition
    assert " && " in condition and "||" not in condition


def test_deploy_is_a_dry_run(jobs):
    runs = "\n".join(_runs(jobs["deploy"]))
    assert "docker build" in runs
    # Logical shell lines: backslash continuations joined.
    commands = runs.replace("\\\n", " ").splitlines()
    applying = [c for c in commands if re.search(r"\b(helm (upgrade|install)|kubectl apply)\b", c)]
    assert applying, "no helm/kubectl step"
    for command in applying:
        assert "--dry-run" in command, command


def test_workflow_grants_read_only_token(workflow):
    assert workflow["permissions"] == {"contents": "read"}
