"""The command-line part of the bad-input corpus: ``mlplatform`` given what it must refuse.

One isolated platform for the module: four validated days and a champion v1 (no ``previous``).
Each case runs ``mlplatform.cli.main(argv)`` in this process, as the console script does, and
must print a message naming the problem, return (or exit with) a nonzero status, raise nothing
(an exception escaping ``main`` is the traceback a user would see) and leave the registry as it
was: versions, aliases and tags. Bad gate thresholds go through ``lifecycle.run_job``, the path
``mlplatform demo`` and the daemon's schedule take.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import mlflow
import pytest
from mlflow import MlflowClient

from mlplatform.cli import main
from mlplatform.lifecycle import RunOutcome, run_job
from mlplatform.ml.registry import CHALLENGER, CHAMPION, PREVIOUS
from mlplatform_tests.bad_inputs.cli_cases import (
    CLI_CASES,
    CONFIG_CASES,
    UNKNOWN_DATA_SET,
    CliCase,
    ConfigCase,
)
from mlplatform_tests.bad_inputs.state import registry_state
from mlplatform_tests.conftest import (
    TEST_DAYS,
    Platform,
    isolated_platform,
    load_days,
    materialized_count,
    retrain,
    write_spec,
)

pytestmark = pytest.mark.bad_input

MODEL = "mlplatform-synthetic_churn"
DOWNSTREAM = ("features", "challenger_model", "evaluation", "deployed_model")
# A small model: these runs only have to reach the gates, not to pass them.
QUICK_RETRAIN = {
    "ops": {
        "challenger_model": {"config": {"max_iter": 20}},
        "features": {"config": {"max_staleness_days": None}},
    }
}


@dataclass(frozen=True)
class Deployed:
    platform: Platform
    instance: dg.DagsterInstance
    client: MlflowClient


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Iterator[Deployed]:
    """Four validated days and champion v1, with the platform's environment applied."""
    root = tmp_path_factory.mktemp("cli_corpus")
    platform = isolated_platform(root, write_spec(root, top={"training_window_days": 4}))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in platform.env.items():
            patch.setenv(key, value)
        # MLflow's URIs are process-global (and mirrored in env vars): undone below.
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        try:
            with dg.instance_for_test() as instance:
                assert all(run.success for run in load_days(platform, instance, TEST_DAYS))
                assert retrain(platform, instance).success
                uri = platform.tracking_uri
                client = MlflowClient(tracking_uri=uri, registry_uri=uri)
                state = registry_state(client, MODEL)["aliases"]
                assert state == {CHAMPION: "1", CHALLENGER: "1"}, state
                yield Deployed(platform, instance, client)
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


@pytest.fixture
def environment(deployed, monkeypatch) -> Platform:
    """The platform's environment again for one test: commands may change os.environ
    (``--dataset`` sets MLPLATFORM_DATASET), and this restores it afterwards."""
    for key, value in deployed.platform.env.items():
        monkeypatch.setenv(key, value)
    return deployed.platform


def _run(argv, capsys) -> tuple[int, str]:
    """Runs the command line; returns its exit status and what it printed on stderr."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors: a message and status 2, no traceback
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.err


def _dagster_home_untouched(platform: Platform) -> bool:
    """No run was recorded under DAGSTER_HOME (the CLI's instance): only its config exists."""
    home = Path(platform.env["DAGSTER_HOME"])
    return {p.name for p in home.iterdir()} <= {"dagster.yaml"}


@pytest.mark.parametrize("case", CLI_CASES.values(), ids=CLI_CASES.keys())
def test_a_bad_command_says_why_exits_nonzero_and_changes_nothing(
    deployed, environment, monkeypatch, capsys, case: CliCase
):
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    before = registry_state(deployed.client, MODEL)

    status, stderr = _run(case.argv, capsys)

    assert status == case.exit_code, stderr
    for fragment in case.says:
        assert fragment in stderr, stderr
    assert "Traceback" not in stderr
    assert registry_state(deployed.client, MODEL) == before
    assert _dagster_home_untouched(environment)


def test_an_unknown_data_set_is_named_without_a_traceback(deployed, environment, capsys):
    status, stderr = _run(UNKNOWN_DATA_SET.argv, capsys)
    assert status == UNKNOWN_DATA_SET.exit_code
    for fragment in UNKNOWN_DATA_SET.says:
        assert fragment in stderr, stderr


@dataclass(frozen=True)
class ConfigRun:
    outcome: RunOutcome
    registry_before: dict
    registry_after: dict
    counts_before: dict[str, int]
    counts_after: dict[str, int]


@pytest.fixture(scope="module")
def config_runs(deployed) -> dict[str, ConfigRun]:
    """retrain_job once per bad setting, with what the registry and the instance held around it."""
    runs = {}
    for name, case in CONFIG_CASES.items():
        with pytest.MonkeyPatch.context() as patch:
            for key, value in {**deployed.platform.env, **case.env}.items():
                patch.setenv(key, value)
            registry_before = registry_state(deployed.client, MODEL)
            counts_before = {a: materialized_count(deployed.instance, a) for a in DOWNSTREAM}
            outcome = run_job("retrain_job", run_config=QUICK_RETRAIN, instance=deployed.instance)
            runs[name] = ConfigRun(
                outcome,
                registry_before,
                registry_state(deployed.client, MODEL),
                counts_before,
                {a: materialized_count(deployed.instance, a) for a in DOWNSTREAM},
            )
    return runs


@pytest.mark.parametrize("name", CONFIG_CASES, ids=CONFIG_CASES.keys())
def test_a_bad_gate_threshold_fails_the_run_naming_the_setting_and_deploys_nothing(
    config_runs, name
):
    case: ConfigCase = CONFIG_CASES[name]
    run = config_runs[name]

    assert not run.outcome.success
    # Refused before training: no compute spent on a model no gate could judge.
    assert run.outcome.failure.startswith("challenger_model: ValueError: ")
    for fragment in case.says:
        assert fragment in run.outcome.failure, run.outcome.failure
    # Nothing was judged or deployed: the champion is where it was.
    for asset in ("challenger_model", "evaluation", "deployed_model"):
        assert run.counts_after[asset] == run.counts_before[asset], asset
    before, after = run.registry_before["aliases"], run.registry_after["aliases"]
    assert (after.get(CHAMPION), after.get(PREVIOUS)) == (before[CHAMPION], before.get(PREVIOUS))


@pytest.mark.parametrize("name", CONFIG_CASES, ids=CONFIG_CASES.keys())
def test_a_bad_gate_threshold_registers_no_model_version(config_runs, name):
    run = config_runs[name]
    assert run.registry_after == run.registry_before
    assert run.counts_after["challenger_model"] == run.counts_before["challenger_model"]
