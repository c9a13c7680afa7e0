"""Bounded load on a real ``mlplatform serve`` (uvicorn, loopback) with the canary split on and
an alias flip in the middle: no request fails, the canary gets its share, the flip is served.

The registry holds three versions of the platform's real pipeline (fitted once, logged three
times with ``log_and_register`` as the training asset does; the Dagster lifecycle is tested
elsewhere and would only add a minute): ``previous`` = v1, ``champion`` = v2, and a canary of
v3 started with ``start_canary`` at the default plan's first weight (5%).

The flip is a rollback's alias move: halfway through the load, the recorded move ``roll_back``
makes (``champion`` to v1, then ``previous`` to v2, through ``move_aliases``). ``roll_back``
itself would first abort the canary, which would end the split half way; making its alias move
with the canary left running keeps the share measurable over the whole run and still swaps the
served champion under load (the server holds ``previous`` loaded: the swap is a pointer change).

Canary share: each request carries its own customer id (``load-0``, ``load-1``, ... up to
``DISTINCT_IDS`` = 50,000), and the sticky router puts an id on the canary iff its hash falls
below the weight, so over ``n`` distinct ids the share is binomial: sd = sqrt(0.05 x 0.95 / n)
= 0.22 pp at n = 10,000, and the tolerance of +/-1 pp is 4.6 sd (a uniform hash misses it with
probability ~4e-6). The ids are fixed, so the expected share is too: with the default salt, the
share of the first n ids is within 0.31 pp of 5% for every n from 10,000 to 50,000.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from conftest import REPO_ROOT
from registry_faults import restored_mlflow_globals

from mlplatform.datasets.spec import load_spec
from mlplatform.datasets.synthetic import generate_batch
from mlplatform.demo_release import running_server
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.canary_state import start_canary
from mlplatform.load_command import DISTINCT_IDS, single_row_bodies, synthetic_rows
from mlplatform.load_report import LoadReport
from mlplatform.loadtest import LoadProgress, run_load
from mlplatform.ml.alias_moves import ROLLBACK, AliasMove, move_aliases
from mlplatform.ml.registry import CHAMPION, PREVIOUS, log_and_register, promote_to_champion
from mlplatform.ml.training import TrainingParams, churn_scores, model_input, train_pipeline

pytestmark = pytest.mark.e2e

LOAD_SECONDS = 60.0  # issue 7: 60 s at the highest rate the machine sustains
# Clients in flight, measured on the 2-core machine (10 s each, same background load): 8 gave
# 75 req/s at 8.4 ms of server CPU per request, 16 gave 123 req/s at 5.1 ms (the server's
# micro-batches grow with the queue; one predict call costs about the same for 1 or 16 rows),
# 24 gave 124 req/s at 5.4 ms with more client CPU. So 16.
CONCURRENCY = 16
MIN_REQUESTS = 10_000
# 60 s at this machine's rate gives 8,800 to 11,100 requests depending on what else runs
# (146-185 req/s measured in CI runs): the load goes on past 60 s until the share has its
# 10,000 requests, bounded here. The figures reported are the whole run's.
MAX_LOAD_SECONDS = 150.0
CANARY_WEIGHT = CanaryPlan().steps[0]
SHARE_TOLERANCE = 0.01
# The server polls the registry every 0.5 s; under full load one poll may take a while.
SWITCH_SECONDS = 1.5
OLD_CHAMPION, NEW_CHAMPION, CANARY_VERSION = "2", "1", "3"


@pytest.fixture
def registry(platform, monkeypatch):
    """The platform's registry with v1 previous, v2 champion and a running canary of v3;
    yields an MLflow client, the registered model name and the data-set spec."""
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflowResource.client() sets MLflow's global URIs and their env vars: undone at teardown.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    spec = load_spec(platform.env["MLPLATFORM_DATASET"])
    train = generate_batch(date(2026, 3, 1), 2000, seed=1)
    pipeline = train_pipeline(train, spec, TrainingParams())
    example = model_input(train, spec).head(5)
    tracking = platform.resources()["mlflow_tracking"]
    name = tracking.model_name(spec.name)
    with restored_mlflow_globals():
        for version in ("1", "2", "3"):
            with tracking.start_run(run_name=f"load-test-v{version}"):
                scores = churn_scores(pipeline, example)
                assert log_and_register(pipeline, example, scores, name).version == version
        client = tracking.client()
        promote_to_champion(client, name, "1")
        promote_to_champion(client, name, OLD_CHAMPION)
        start_canary(client, name, CANARY_VERSION)
        yield client, name, spec


class AliasFlip:
    """Flips champion and previous once the load is half done, in a thread of its own (a
    registry write on the event loop would stall the clients)."""

    def __init__(self, client, name: str):
        self.client, self.name = client, name
        self.go = threading.Event()
        self.load_over = False
        self.started_at = self.done_at = math.nan

    def on_progress(self, progress: LoadProgress) -> None:
        if progress.elapsed >= LOAD_SECONDS / 2:
            self.go.set()

    def stop(self) -> None:
        """Ends a flip still waiting (the load ended early): it does not happen then."""
        self.load_over = True
        self.go.set()

    def run(self) -> None:
        self.go.wait()
        if self.load_over:
            return
        move = AliasMove(
            ROLLBACK,
            ((CHAMPION, OLD_CHAMPION, NEW_CHAMPION), (PREVIOUS, NEW_CHAMPION, OLD_CHAMPION)),
        )
        self.started_at = time.perf_counter()
        move_aliases(self.client, self.name, move)
        self.done_at = time.perf_counter()


def _problems(report: LoadReport, flip: AliasFlip) -> tuple[list[str], float]:
    """Every requirement the run missed, and how long after the flip started the old champion
    was last sent a request."""
    problems = []
    if math.isnan(flip.done_at):
        problems.append("the alias flip did not happen during the load")
    if report.failures:
        problems.append(f"{sum(report.failures.values())} failed requests")
    if report.requests < MIN_REQUESTS:
        problems.append(
            f"{report.requests:,} requests ({report.requests_per_second:.0f} req/s), "
            f"need {MIN_REQUESTS:,} within {MAX_LOAD_SECONDS:.0f} s"
        )
    share = report.share("canary")
    if not abs(share - CANARY_WEIGHT) <= SHARE_TOLERANCE:
        problems.append(f"canary share {share:.2%}, weight {CANARY_WEIGHT:.0%} +/- 1 pp")
    if set(report.arms) != {"canary", "champion"}:
        problems.append(f"arms {dict(report.arms)}, expected canary and champion")
    canary_versions = {s.version for s in report.samples if s.arm == "canary"}
    if canary_versions != {CANARY_VERSION}:
        problems.append(f"the canary arm served {sorted(canary_versions)}, not v{CANARY_VERSION}")
    champion = [s for s in report.samples if s.arm == "champion"]
    old = [s.started_at for s in champion if s.version == OLD_CHAMPION]
    switch = max(old, default=math.nan) - flip.started_at
    before = {s.version for s in champion if s.started_at + s.seconds < flip.started_at}
    after = {s.version for s in champion if s.started_at > flip.done_at + SWITCH_SECONDS}
    if before != {OLD_CHAMPION}:
        problems.append(f"champion versions before the flip {sorted(before)}")
    if after != {NEW_CHAMPION}:
        problems.append(f"champion versions {SWITCH_SECONDS} s after the flip {sorted(after)}")
    return problems, switch


def _summary(report: LoadReport, flip: AliasFlip, switch: float) -> str:
    first_sent = min((s.started_at for s in report.samples), default=math.nan)
    return (
        f"{report.summary()}\ncanary share {report.share('canary'):.2%} over "
        f"{min(report.requests, DISTINCT_IDS):,} distinct ids (weight {CANARY_WEIGHT:.0%})\n"
        f"alias flip {flip.started_at - first_sent:.1f} s into the load took "
        f"{flip.done_at - flip.started_at:.2f} s; the last request to the old champion was sent "
        f"{switch:.2f} s after it started"
    )


@pytest.mark.load
def test_a_minute_of_full_load_with_a_canary_and_an_alias_flip_loses_no_request(platform, registry):
    client, name, spec = registry
    bodies = single_row_bodies(synthetic_rows(spec), spec.id_column, DISTINCT_IDS, "load")
    flip = AliasFlip(client, name)
    with (
        running_server(platform.root / "serve") as url,
        ThreadPoolExecutor(1, thread_name_prefix="alias-flip") as pool,
    ):
        health = httpx.get(f"{url}/health", timeout=5.0).json()
        served = (health["champion_version"], health["previous_version"], health["canary_version"])
        assert served == (OLD_CHAMPION, NEW_CHAMPION, CANARY_VERSION), health
        assert health["canary_weight"] == CANARY_WEIGHT
        flipped = pool.submit(flip.run)
        try:
            report = run_load(
                url,
                bodies,
                LOAD_SECONDS,
                CONCURRENCY,
                flip.on_progress,
                min_requests=MIN_REQUESTS,
                max_seconds=MAX_LOAD_SECONDS,
            )
        finally:
            flip.stop()
        flipped.result()
    problems, switch = _problems(report, flip)
    summary = _summary(report, flip, switch)
    print(summary)
    # Kept where CI collects artefacts: the figures of every run, passing or not.
    (REPO_ROOT / "test-artifacts").mkdir(exist_ok=True)
    (REPO_ROOT / "test-artifacts" / "load_report.txt").write_text(summary + "\n")
    assert not problems, "; ".join(problems) + "\n" + summary
