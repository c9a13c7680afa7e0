"""Prometheus metrics of a serving process: requests, errors and latency per arm and version."""

from __future__ import annotations

import prometheus_client as prom

from mlplatform.serving.slots import ModelSlots

# 1 ms .. 5 s, dense where scoring latencies live, so p99 is read from a narrow bucket.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
)  # fmt: skip


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


class ServingMetrics:
    """Prometheus metrics of one app, in their own registry (apps in one process stay apart)."""

    def __init__(self, slots: ModelSlots):
        self.registry = prom.CollectorRegistry()
        # process_start_time_seconds tells a scraper that counters restarted from zero.
        prom.ProcessCollector(registry=self.registry)
        labels = ("arm", "model_version")
        self.requests = prom.Counter(
            "mlplatform_requests_total",
            "Scoring requests by arm, model version and HTTP status.",
            (*labels, "status"),
            registry=self.registry,
        )
        self.errors = prom.Counter(
            "mlplatform_errors_total",
            "Server-side scoring errors: exception, invalid_output or 5xx (other 5xx answers).",
            (*labels, "kind"),
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "mlplatform_request_latency_seconds",
            "Scoring request latency, from body read to response.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        weight = prom.Gauge(
            "mlplatform_canary_weight",
            "Canary traffic share now served: the registry's, capped by an admin override.",
            registry=self.registry,
        )
        weight.set_function(lambda: slots.snapshot().canary_weight)
        override = prom.Gauge(
            "mlplatform_canary_weight_override",
            "Admin cap on the canary traffic share in this process; NaN without one.",
            registry=self.registry,
        )
        override.set_function(lambda: _or_nan(slots.snapshot().canary_weight_override))

    def record(self, arm: str, version: str, status: int, seconds: float, kind: str | None):
        """Counts one finished request."""
        self.requests.labels(arm, version, str(status)).inc()
        self.latency.labels(arm, version).observe(seconds)
        if kind is not None:
            self.errors.labels(arm, version, kind).inc()
