"""A deploy, rollback or canary promotion interrupted between two registry writes (issue 7).

The process is "killed" at each write in turn (a BaseException, which no handler of ours
catches) on a real SQLite registry. Invariants:

1. One champion, at every moment: after every write, ``champion`` names a version, and only
   the old or the new one. (An MLflow alias names one version, so "two champions" can only
   mean records that disagree, which is what 2 and 3 rule out.)
2. At rest, ``previous`` differs from ``champion``, unless a recorded alias move
   (``mlplatform.alias_move``) says that the move is still to be finished.
3. Canary and champion agree at rest: a canary state "promoted" means its version is the
   champion and the ``canary`` alias is gone; "running" means the ``canary`` alias names its
   version (serving routes the weight there).

After the interruption, the next canary tick (repair_registry), deploy step or rollback
brings the registry to exactly one of two states: untouched, or the operation done; and
re-running the interrupted operation ends done, without rolling anything back twice.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import pytest
from mlflow import MlflowClient

from mlplatform.defs.data.resources import DatasetResource
from mlplatform.defs.deployment.assets import PROMOTED, deployed_model
from mlplatform.defs.deployment.resources import DeploymentPolicy
from mlplatform.defs.deployment.sensors import canary_sensor
from mlplatform.defs.training.resources import MLflowResource
from mlplatform.deployment.canary import decide
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import (
    CANARY,
    OUTCOME_TAG,
    STATE_TAG,
    apply,
    load_state,
    start_canary,
)
from mlplatform.deployment.metrics import ArmCounts
from mlplatform.deployment.repair import repair_registry
from mlplatform.deployment.rollback import ROLLED_BACK_TAG, roll_back
from mlplatform.ml.alias_moves import MOVE_TAG
from mlplatform.ml.evaluation import Evaluation
from mlplatform.ml.metrics import AucDifference, AucEstimate
from mlplatform.ml.registry import CHAMPION, PREVIOUS, promote_to_champion, version_for_alias
from mlplatform_tests.registry_faults import (
    CrashingClient,
    Killed,
    build_registry,
)

pytestmark = pytest.mark.fault

NAME = "mlplatform-synthetic_churn"  # what the sensor and deploy step derive from the data set
T0 = 1_780_000_000.0
ONE_STEP = CanaryPlan(steps=(1.0,), min_requests=100, min_dwell_seconds=0)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """A registry with versions 1, 2 and 3 of a tiny model, built once per module."""
    return build_registry(tmp_path_factory.mktemp("registry"), NAME, versions=3)[0]


@pytest.fixture
def new_registry(template_db, tmp_path):
    """Makes fresh private copies of the registry: ``new_registry(label)`` -> (uri, client)."""

    def make(label: str):
        path = tmp_path / f"{label}.db"
        shutil.copy(template_db, path)
        uri = f"sqlite:///{path}"
        return uri, MlflowClient(tracking_uri=uri, registry_uri=uri)

    return make


def scrape(canary: float, champion: float) -> dict[str, ArmCounts]:
    return {"canary": ArmCounts(requests=canary), "champion": ArmCounts(requests=champion)}


def snapshot(client) -> dict:
    """Aliases, the recorded move and the canary state's routing keys and outcome."""
    tags = client.get_registered_model(NAME).tags
    state = json.loads(tags[STATE_TAG]) if STATE_TAG in tags else None
    out = {a: version_for_alias(client, NAME, a) for a in (CHAMPION, PREVIOUS, CANARY)}
    out["move"] = MOVE_TAG in tags
    if state is not None:
        out["state"] = (state["version"], state["status"], state["weight"])
        out["outcome"] = client.get_model_version(NAME, state["version"]).tags.get(OUTCOME_TAG)
    return out


def check_moment(client, champions: set[str]) -> None:
    """Invariant 1: a champion at every moment, and only the old or the new one."""
    assert version_for_alias(client, NAME, CHAMPION) in champions


def check_rest(client) -> None:
    """Invariants 2 and 3, which hold whenever no writer is half-way."""
    now = snapshot(client)
    if not now["move"]:
        assert now[PREVIOUS] != now[CHAMPION], now
    if "state" in now:
        version, status, weight = now["state"]
        if status == "promoted":
            assert now[CHAMPION] == version and now[CANARY] is None, now
        if status == "running":
            assert now[CANARY] == version and weight > 0, now


@dataclass(frozen=True)
class Scenario:
    """An operation, how to set the registry up for it, and the registry before and after."""

    setup: Callable[[MlflowClient], Callable[[object], object]]
    champions: set[str]


def _promotion(client):
    promote_to_champion(client, NAME, "1")
    return lambda registry: promote_to_champion(registry, NAME, "2")


def _rollback(client):
    promote_to_champion(client, NAME, "1")
    promote_to_champion(client, NAME, "2")
    return lambda registry: roll_back(registry, NAME, by="ops", reason="interrupted test")


def _canary_promotion(client):
    promote_to_champion(client, NAME, "1")
    start_canary(client, NAME, "2", ONE_STEP, now=T0)
    baseline = decide(ONE_STEP, load_state(client, NAME), scrape(0, 1000), T0)
    apply(client, NAME, baseline)
    decision = decide(ONE_STEP, load_state(client, NAME), scrape(100, 1000), T0 + 30)
    assert decision.action == "promote"
    return lambda registry: apply(registry, NAME, decision)


SCENARIOS = {
    "promotion": Scenario(_promotion, {"1", "2"}),
    "rollback": Scenario(_rollback, {"1", "2"}),
    "canary promotion": Scenario(_canary_promotion, {"1", "2"}),
}


def _run_once(client, scenario: Scenario) -> tuple[dict, dict, int]:
    """(registry before, registry after, writes) of the operation left to finish."""
    operation = scenario.setup(client)
    before = snapshot(client)
    counter = CrashingClient(client, NAME, crash_at=0, check=lambda: None)
    operation(counter)
    return before, snapshot(client), counter.writes


@pytest.mark.parametrize("label", sorted(SCENARIOS))
def test_killed_at_any_write_the_registry_stays_consistent_and_the_next_tick_repairs_it(
    new_registry, label
):
    scenario = SCENARIOS[label]
    _, reference = new_registry("reference")
    before, done, writes = _run_once(reference, scenario)
    assert writes >= 4 and done != before and not done["move"]
    for crash_at in range(1, writes + 1):
        _, client = new_registry(f"crash{crash_at}")
        operation = scenario.setup(client)
        dying = CrashingClient(
            client, NAME, crash_at, lambda c=client: check_moment(c, scenario.champions)
        )
        with pytest.raises(Killed):
            operation(dying)
        check_moment(client, scenario.champions)
        repaired = repair_registry(client, NAME)  # the next canary tick or deploy step
        check_rest(client)
        after = snapshot(client)
        # The first write records the move: killed there, nothing happened and nothing needs
        # repair; from the second on, the tick finishes the operation as intended.
        assert after == (before if crash_at == 1 else done), (crash_at, repaired)
        if crash_at == 1:
            assert repaired == []
        if label == "rollback" and crash_at > 1:
            assert (
                client.get_model_version(NAME, "2")
                .tags[ROLLED_BACK_TAG]
                .endswith("ops: interrupted test")
            )


def test_a_rollback_re_run_after_an_interruption_finishes_it_and_does_not_roll_forward(
    new_registry,
):
    _, client = new_registry("rollback")
    operation = _rollback(client)
    dying = CrashingClient(client, NAME, 3, lambda: check_moment(client, {"1", "2"}))
    with pytest.raises(Killed):
        operation(dying)  # killed after champion moved, before previous did
    assert snapshot(client)[CHAMPION] == snapshot(client)[PREVIOUS] == "1"
    result = roll_back(client, NAME, by="ops", reason="again")
    assert (result.restored, result.replaced) == ("1", "2")
    assert snapshot(client) == {CHAMPION: "1", PREVIOUS: "2", CANARY: None, "move": False}


def test_a_promotion_re_run_after_an_interruption_completes_it(new_registry):
    _, client = new_registry("promotion")
    operation = _promotion(client)
    with pytest.raises(Killed):
        operation(CrashingClient(client, NAME, 3, lambda: None))  # previous moved, champion not
    assert snapshot(client)[CHAMPION] == snapshot(client)[PREVIOUS] == "1"
    # The re-run finishes the recorded move first, after which v2 is the champion already.
    assert promote_to_champion(client, NAME, "2") is None
    assert snapshot(client) == {CHAMPION: "2", PREVIOUS: "1", CANARY: None, "move": False}


def test_a_recorded_move_is_not_forced_over_an_alias_someone_else_moved(new_registry):
    from mlplatform.ml.alias_moves import AliasMoveConflictError

    _, client = new_registry("conflict")
    operation = _promotion(client)
    with pytest.raises(Killed):
        operation(CrashingClient(client, NAME, 2, lambda: None))
    client.set_registered_model_alias(NAME, CHAMPION, "3")  # by hand, in the MLflow UI
    with pytest.raises(AliasMoveConflictError, match="champion is now v3: moved by someone"):
        repair_registry(client, NAME)
    # Nothing moved, and the record stays for a person to look at.
    assert snapshot(client) == {CHAMPION: "3", PREVIOUS: None, CANARY: None, "move": True}


def _evaluation(champion: str, challenger: str) -> Evaluation:
    return Evaluation(
        model_name=NAME,
        challenger_version=challenger,
        champion_version=champion,
        holdout_version="holdout",
        holdout_rows=1000,
        challenger=AucEstimate(0.90, 0.01, 0.88, 0.92, 300, 700),
        champion=AucEstimate(0.80, 0.01, 0.78, 0.82, 300, 700),
        difference=AucDifference(0.10, 0.01, 0.08, 0.12, 0.0),
        min_auc=0.80,
        min_delta=0.005,
    )


def test_the_deploy_step_re_run_after_an_interrupted_promotion_reports_it_promoted(
    new_registry, mlflow_globals
):
    uri, client = new_registry("deploy")
    operation = _promotion(client)
    with pytest.raises(Killed):
        # Killed after champion moved, before the record was cleared: a stale-decision check
        # alone would refuse the re-run (the champion is no longer the evaluated one).
        operation(CrashingClient(client, NAME, 4, lambda: None))
    assert snapshot(client)["move"] and snapshot(client)[CHAMPION] == "2"
    output = deployed_model(
        context=dg.build_asset_context(),
        evaluation=_evaluation(champion="1", challenger="2"),
        mlflow_tracking=MLflowResource(tracking_uri=uri),
        deployment=DeploymentPolicy(approvers="reviewer", require_approval="false"),
    )
    deployment = output.value
    assert (deployment.status, deployment.champion_version) == (PROMOTED, "2")
    assert deployment.previous_version == "1"
    assert not snapshot(client)["move"]


def test_the_canary_sensor_repairs_on_its_next_tick_even_without_a_serving_process(
    new_registry, mlflow_globals, tmp_path
):
    uri, client = new_registry("sensor")
    operation = _canary_promotion(client)
    with pytest.raises(Killed):
        operation(CrashingClient(client, NAME, 5, lambda: None))  # aliases moved, state not saved
    assert snapshot(client)["state"][1] == "running" and snapshot(client)[CHAMPION] == "2"
    context = dg.build_sensor_context(
        resources={
            "dataset": DatasetResource(name="synthetic_churn", home_dir=str(tmp_path)),
            "mlflow_tracking": MLflowResource(tracking_uri=uri),
            "deployment": DeploymentPolicy(serving_url=""),
        }
    )
    result = canary_sensor(context)
    assert "finishing its promotion" in result.skip_message
    assert snapshot(client) == {
        CHAMPION: "2",
        PREVIOUS: "1",
        CANARY: None,
        "move": False,
        "state": ("2", "promoted", 0.0),
        "outcome": "promoted",
    }
    # A consistent registry: the next tick changes nothing.
    assert "finishing" not in canary_sensor(context).skip_message
