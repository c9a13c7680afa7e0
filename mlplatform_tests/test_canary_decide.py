"""Canary decisions from scraped metrics: steps, holds, rollbacks, resume, counter resets."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mlplatform.deployment.canary import CanaryState, decide, initial_state
from mlplatform.deployment.canary_plan import CanaryPlan
from mlplatform.deployment.metrics import (
    ArmCounts,
    accumulate,
    add,
    latency_quantile,
    parse_metrics,
)

PLAN = CanaryPlan()
VERSIONS = {"canary": "7", "champion": "6"}
T0 = 1_780_000_000.0


class FakeServer:
    """The serving process's metrics, exported by prometheus_client as the real one does."""

    def __init__(self, start_time: float = T0 - 3600):
        self.registry = CollectorRegistry()
        labels = ["arm", "model_version"]
        self.requests = Counter(
            "mlplatform_requests", "r", [*labels, "status"], registry=self.registry
        )
        self.errors = Counter("mlplatform_errors", "e", [*labels, "kind"], registry=self.registry)
        self.latency = Histogram(
            "mlplatform_request_latency_seconds", "l", labels, registry=self.registry
        )
        started = Gauge("process_start_time_seconds", "s", registry=self.registry)
        started.set(start_time)

    def serve(self, arm: str, requests: int, errors: int = 0, latency: float = 0.02):
        version, errors = VERSIONS[arm], min(errors, requests)
        self.requests.labels(arm, version, "200").inc(requests - errors)
        if errors:
            self.requests.labels(arm, version, "500").inc(errors)
            self.errors.labels(arm, version, "exception").inc(errors)
        for _ in range(requests):
            self.latency.labels(arm, version).observe(latency)

    def traffic(self, weight: float, total: int, canary_errors=0, champion_errors=0, **kw):
        """``total`` requests split by weight (exactly, to keep the tests deterministic)."""
        canary = round(total * weight)
        self.serve("canary", canary, canary_errors, kw.get("canary_latency", 0.02))
        self.serve("champion", total - canary, champion_errors)

    def scrape(self) -> dict[str, ArmCounts]:
        return parse_metrics(generate_latest(self.registry).decode(), VERSIONS)


def start() -> CanaryState:
    return initial_state(PLAN, "churn", "7", "6", T0)


def run(state, server, ticks, now, step_seconds=30.0, total=400, **traffic):
    """Ticks of the controller; returns decisions and the time after the last tick."""
    decisions = []
    for _ in range(ticks):
        server.traffic(state.weight, total, **traffic)
        now += step_seconds
        decision = decide(PLAN, state, server.scrape(), now)
        decisions.append(decision)
        state = decision.new_state
        if decision.action in ("promote", "rollback"):
            break
    return decisions, now


def test_parse_metrics_per_arm_and_version():
    server = FakeServer()
    server.serve("canary", 10, errors=2, latency=0.3)
    server.serve("champion", 90, errors=1)
    server.requests.labels("canary", "5", "200").inc(1000)  # an older canary: ignored
    counts = server.scrape()
    assert counts["canary"].requests == 10 and counts["canary"].errors == 2
    assert counts["champion"].requests == 90 and counts["champion"].errors == 1
    assert counts["canary"].latency_count == 10 and latency_quantile(counts["canary"]) == 0.5
    assert counts["canary"].process_start_time == T0 - 3600
    assert (
        ArmCounts.from_dict(json.loads(json.dumps(counts["canary"].to_dict()))) == counts["canary"]
    )


def test_p99_is_the_upper_bound_of_its_bucket():
    buckets = ((0.1, 98.0), (0.25, 99.0), (1.0, 100.0), (float("inf"), 100.0))
    assert latency_quantile(ArmCounts(latency_buckets=buckets)) == 0.25
    assert latency_quantile(ArmCounts()) is None
    tail = ((0.1, 50.0), (float("inf"), 100.0))
    assert latency_quantile(ArmCounts(latency_buckets=tail)) == float("inf")


def test_accumulate_handles_counter_resets():
    before = ArmCounts(requests=500, errors=5, process_start_time=1.0)
    grown = ArmCounts(requests=520, errors=5, process_start_time=1.0)
    assert accumulate(before, grown) == (ArmCounts(requests=20, errors=0), False)
    restarted = ArmCounts(requests=30, errors=1, process_start_time=2.0)
    assert accumulate(before, restarted) == (ArmCounts(requests=30, errors=1), True)
    # Without a start time, a counter that went down still reveals the restart.
    assert accumulate(ArmCounts(requests=500), ArmCounts(requests=30))[1]
    # A restart that already served more than before is caught by the start time.
    assert accumulate(before, ArmCounts(requests=900, errors=9, process_start_time=2.0))[1]
    assert add(ArmCounts(requests=1), ArmCounts(requests=2)).requests == 3


def test_steps_5_25_100_then_promote():
    server, state = FakeServer(), start()
    server.traffic(0.0, 5000)  # champion traffic before the canary: only a baseline
    decision = decide(PLAN, state, server.scrape(), T0)
    assert decision.action == "hold" and decision.new_state.total_counts["champion"].requests == 0
    decisions, _ = run(decision.new_state, server, 50, T0, champion_errors=2, canary_errors=0)
    actions = [d.action for d in decisions]
    assert [a for a in actions if a != "hold"] == ["advance", "advance", "promote"]
    weights = [d.new_state.weight for d in decisions if d.action == "advance"]
    assert weights == [0.25, 1.0]
    final = decisions[-1].new_state
    assert final.status == "promoted" and final.weight == 0.0
    assert [e["event"] for e in final.history] == ["started", "advance", "advance", "promote"]
    assert "promoted to champion" in decisions[-1].reason
    # Each step held for its dwell time and its minimum canary requests.
    for d in decisions:
        if d.action in ("advance", "promote"):
            assert d.evidence["step_seconds"] >= PLAN.min_dwell_seconds
            assert d.evidence["step_canary_requests"] >= PLAN.min_requests


def test_holds_with_too_few_requests_or_too_little_time():
    server, state = FakeServer(), start()
    state = decide(PLAN, state, server.scrape(), T0).new_state
    # Plenty of time, few requests: 20 canary requests a tick for 10 minutes is still < 200.
    decisions, _ = run(state, server, 9, T0, step_seconds=60, total=20)
    assert all(d.action == "hold" for d in decisions)
    assert re.search(r"9/200 canary requests", decisions[-1].reason)
    # Plenty of requests, too little time.
    decision = run(state, server, 1, T0, step_seconds=10, total=100_000)[0][0]
    assert decision.action == "hold" and "10/60 s" in decision.reason


def test_rollback_on_error_rate_breach():
    server, state = FakeServer(), start()
    state = decide(PLAN, state, server.scrape(), T0).new_state
    decisions, _ = run(state, server, 40, T0, total=400, canary_errors=4, champion_errors=2)
    decision = decisions[-1]
    assert decision.action == "rollback"
    assert decision.new_state.status == "rolled_back" and decision.new_state.weight == 0.0
    assert re.fullmatch(
        r"canary v7 error rate \d+\.\d% vs champion \d+\.\d% "
        r"\(SPRT log-LR \d+\.\d >= 4\.7 at \d+ canary requests\)",
        decision.reason,
    ), decision.reason
    assert decision.evidence["errors"]["breached"]
    json.dumps(decision.evidence)  # recorded as a tag


def test_rollback_on_p99_breach():
    server, state = FakeServer(), start()
    state = decide(PLAN, state, server.scrape(), T0).new_state
    decisions, _ = run(state, server, 60, T0, total=2000, canary_latency=0.4)
    decision = decisions[-1]
    assert decision.action == "rollback" and "p99 latency 0.5 s > limit" in decision.reason
    latency = decision.evidence["latency"]
    assert latency["breached"] and latency["canary_observations"] >= PLAN.min_latency_requests
    # Before enough latencies, the same slow canary only held.
    assert all(not d.evidence["latency"]["applies"] for d in decisions[:-1])


def test_rollback_when_the_canary_alone_exceeds_the_ceiling():
    server, state = FakeServer(), start()
    state = decide(PLAN, state, server.scrape(), T0).new_state
    decisions, _ = run(state, server, 40, T0, total=400, canary_errors=4, champion_errors=0)
    assert decisions[-1].action == "rollback"
    assert decisions[-1].evidence["errors"]["champion_errors"] == 0


def test_resume_from_json_mid_canary_gives_the_same_decisions():
    def controller(serialise: bool):
        server, state = FakeServer(), start()
        state = decide(PLAN, state, server.scrape(), T0).new_state
        now, actions = T0, []
        for tick in range(40):
            server.traffic(state.weight, 400, canary_errors=tick % 2, champion_errors=1)
            now += 30
            if serialise:  # a new controller process reads the state from the registry
                state = CanaryState.from_json(state.to_json())
            decision = decide(PLAN, state, server.scrape(), now)
            actions.append(decision.action)
            state = decision.new_state
            if decision.action == "promote":
                break
        return actions, state

    resumed_actions, resumed = controller(True)
    actions, uninterrupted = controller(False)
    assert resumed_actions == actions and resumed == uninterrupted
    assert resumed.status == "promoted"
    keys = json.loads(resumed.to_json())
    assert {"version", "weight", "status"} <= keys.keys()


def test_serving_restart_keeps_the_totals():
    server, state = FakeServer(start_time=T0 - 100), start()
    state = decide(PLAN, state, server.scrape(), T0).new_state
    decisions, now = run(state, server, 3, T0, total=1000)
    state = decisions[-1].new_state
    before = state.total_counts["canary"].requests
    server = FakeServer(start_time=now)  # counters back at zero
    decisions, _ = run(state, server, 1, now, total=1000)
    after = decisions[-1].new_state
    assert after.total_counts["canary"].requests == before + 50
    assert decisions[-1].evidence["counter_reset"]
    assert "counter_reset" in [e["event"] for e in after.history]


def test_finished_canary_only_holds():
    state = start()
    done = CanaryState.from_dict({**state.to_dict(), "status": "rolled_back", "weight": 0.0})
    decision = decide(PLAN, done, {}, T0 + 100)
    assert decision.action == "hold" and decision.new_state is done


def test_plan_validation():
    with pytest.raises(ValueError):
        CanaryPlan(steps=(0.25, 0.05))
    with pytest.raises(ValueError):
        CanaryPlan(alpha=1.5)
    assert CanaryPlan.from_dict(json.loads(json.dumps(PLAN.to_dict()))) == PLAN
