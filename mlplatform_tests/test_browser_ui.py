"""The Dagster UI as a person and a script meet it: dagster-webserver on loopback over a
materialised instance, the evaluation page in headless Chromium, a run launched through the
GraphQL API."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import pytest
from dagster_graphql import DagsterGraphQLClient
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from mlplatform.lifecycle import ensure_dagster_home
from mlplatform_tests.conftest import (
    REPO_ROOT,
    TEST_DAYS,
    isolated_platform,
    load_days,
    materialized_count,
    retrain,
    write_spec,
)
from mlplatform_tests.dagster_ui import (
    Daemon,
    Webserver,
    daemon,
    log_tail,
    stop_groups,
    webserver,
)

pytestmark = pytest.mark.e2e
# Debian's chromium (installed by .ci/run): Playwright's own browser download is not reachable
# here. MLPLATFORM_CHROMIUM="" uses Playwright's own (GitHub's e2e job installs it).
CHROMIUM = os.environ.get("MLPLATFORM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = REPO_ROOT / "test-artifacts" / "evaluation_asset_page.png"
# Two days are the cheapest window that trains and evaluates; a third arrives through GraphQL.
TRAINING_DAYS = TEST_DAYS[:2]
NEW_DAY = TEST_DAYS[2]
UI_TIMEOUT_MS = 90_000


@dataclass(frozen=True)
class RunningUI:
    """The processes of `make dev` over a materialised platform (its env applied)."""

    webserver: Webserver
    daemon: Daemon


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> RunningUI:
    """An isolated platform with two days and one retrain in the instance under DAGSTER_HOME
    (not a temporary one), served by dagster-webserver and dagster-daemon on loopback."""
    root = tmp_path_factory.mktemp("browser_ui")
    spec = write_spec(root, top={"training_window_days": len(TRAINING_DAYS)})
    platform = isolated_platform(root, spec)
    env = {**os.environ, **platform.env}
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as running:
        for key, value in platform.env.items():
            patch.setenv(key, value)
        ensure_dagster_home(Path(platform.env["DAGSTER_HOME"]))
        with dg.DagsterInstance.get() as instance:
            # The webserver loads the code location while the instance fills (the storage
            # exists first: two processes must not race to create it).
            server = running.enter_context(webserver(root, env))
            assert all(run.success for run in load_days(platform, instance, TRAINING_DAYS))
            # Logistic regression trains fastest; on two days' holdout the AUC's lower bound
            # sits near 0.80, so the threshold is lowered for a promoted, all-green page.
            trained = retrain(platform, instance, estimator="logistic_regression", min_auc="0.75")
            assert trained.success
        # The embedded instance queues submitted runs (ensure_dagster_home's run_queue) and the
        # daemon that `make dev` runs beside the webserver launches them: the test runs both, as
        # a user does, rather than an instance that launches from the webserver. It starts
        # after the retrain, so its sensors tick on a settled instance.
        scheduler = running.enter_context(daemon(root, env))
        server.wait_until_ready()
        try:
            yield RunningUI(server, scheduler)
        finally:
            # Together: each takes seconds to stop its code server.
            stop_groups(server.process, scheduler.process)


def test_the_evaluation_page_shows_the_decision_table_and_the_roc_curve(ui):
    url, log = ui.webserver.url, ui.webserver.log
    # A first visit to a local UI opens a community sign-up dialog over the page; this is the
    # request its Skip button sends.
    seen = httpx.post(f"{url}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=30)
    assert seen.status_code == 200, seen.text
    assert not CHROMIUM or Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: apt-get install chromium"
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM or None)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page.goto(f"{url}/assets/evaluation")
            # The decision is long markdown (a table and an image): the metadata table shows a
            # button that opens it in a dialog.
            decision = page.locator("tr").filter(has=page.get_by_text("decision", exact=True))
            decision.get_by_text("[Show Markdown]").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_role("columnheader", name="holdout AUC")).to_be_visible()
            expect(dialog.get_by_role("cell", name="challenger", exact=True)).to_be_visible()
            expect(dialog.get_by_text("Decision: PROMOTE")).to_be_visible()
            roc = dialog.get_by_role("img", name="ROC curves")
            expect(roc).to_be_visible()
            # naturalWidth is 0 until the data: URI decoded into a picture.
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=roc.element_handle()
            )
            width, height = roc.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            page.screenshot(path=SCREENSHOT)
        except (AssertionError, PlaywrightError) as error:
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=SCREENSHOT)
            raise AssertionError(f"{error}\nscreenshot: {SCREENSHOT}\n{log_tail(log)}") from None
        finally:
            browser.close()
    assert width > 100 and height > 100, (width, height)


# dagster-graphql's client still calls gql's execute() with keyword arguments gql deprecates.
@pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")
def test_a_run_launched_through_graphql_materialises_a_new_day(ui):
    with dg.DagsterInstance.get() as instance:
        assert materialized_count(instance, "validated_data", NEW_DAY) == 0
    client = DagsterGraphQLClient("127.0.0.1", port_number=ui.webserver.port, timeout=60)
    run_id = client.submit_job_execution("daily_data_job", tags={"dagster/partition": NEW_DAY})
    _wait_until_succeeded(client, run_id, logs=[ui.webserver.log, ui.daemon.log])
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run.job_name == "daily_data_job" and run.tags["dagster/partition"] == NEW_DAY
        for asset in ("raw_data", "validated_data"):
            assert materialized_count(instance, asset, NEW_DAY) == 1, asset


def _wait_until_succeeded(
    client: DagsterGraphQLClient, run_id: str, logs: list[Path], timeout: float = 300.0
) -> None:
    """Polls the run's status through GraphQL; fails on FAILURE, CANCELED or the timeout."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status == dg.DagsterRunStatus.SUCCESS:
            return
        if status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            break
        time.sleep(1.0)
    raise AssertionError(
        f"run {run_id}: {status} after up to {timeout:.0f}s\n{_failures(run_id)}\n"
        + "\n".join(map(log_tail, logs))
    )


def _failures(run_id: str) -> str:
    with dg.DagsterInstance.get() as instance:
        events = [e for e in instance.all_logs(run_id) if e.is_dagster_event]
    failed = [e.dagster_event for e in events if e.dagster_event.is_failure]
    return "\n".join(f"{event.step_key}: {event.message}" for event in failed) or "no failure event"
