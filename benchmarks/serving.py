"""Single-row scoring: ``mlplatform serve`` (champion + a 25% canary) against ``mlflow models serve``.

Both servers serve the same registered model of one real, isolated platform built in a temporary
directory the way the tests build it (``mlplatform_tests/conftest.py``): 4 synthetic days loaded
and validated, two retrains (v1, v2), ``champion`` = v1 and a canary of v2 started with
``start_canary`` at weight ``CANARY_WEIGHT`` (so ours routes every request: hashes the customer
id, picks an arm, and answers with v1 or v2; both are the same kind of pipeline). MLflow serves
``models:/<name>/1`` (the champion) with ``--env-manager local``. Each server runs as its own
subprocess with one worker (``mlplatform serve`` is one uvicorn process; ``mlflow models serve
-w 1``), alone on the machine while it is measured: the servers take turns, ``--rounds`` times
each, alternating, and each figure is the median over rounds (so a burst of load from other
work hits both alike). A third row, for information only, runs MLflow with
``OMP_NUM_THREADS=1``: ours caps native threads per scoring call (``ServingSettings.
model_threads``), which an MLflow user can also do by hand, so that row shows what is left of
the difference without it.

The client is the same for both: one asyncio loop with ``httpx.AsyncClient`` (keep-alive,
pre-encoded bodies), sending ``{"dataframe_records": [row]}`` for one of ``DISTINCT_ROWS``
synthetic customers, as clients send them (JSON-typed raw columns plus the customer id, which
both servers ignore as an extra column; ours routes by it). Per round, after ``--warmup``
requests:

* latency: ``--requests`` sequential requests (one in flight), client-side wall time; p50, p99;
* throughput: ``CLIENTS`` concurrent clients sending back to back for ``--seconds``; answered
  requests per second, and (information) the p99 latency of those requests ("p99@8"). Every
  answer must be 200 with one probability in [0, 1].

The latency goal is judged on the sequential p99 (one request in flight), the strict reading:
there both servers spend nearly all of each request in the same pipeline ``predict``.

Goals (exit 1 when one is missed), same number of workers (1 each), canary on for ours:
throughput >= ``MIN_THROUGHPUT_RATIO`` x MLflow's, p99 latency <= ``MAX_P99_RATIO`` x MLflow's;
and the canary must really get traffic (its share within ``CANARY_SHARE_TOLERANCE`` of its
weight). The load average is printed before every round: the machine is shared, so measure when
it is low (the machine line shows it).

Usage: ``python benchmarks/serving.py [--rounds 3] [--requests 2000] [--seconds 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from report import Figure, Recorder, format_machine, machine_info, ratio_figure
from serving_platform import CANARY_WEIGHT, build_platform, running

OURS = "mlplatform serve"
MLFLOW = "mlflow models serve"
MLFLOW_1T = "mlflow, OMP_NUM_THREADS=1"
CLIENTS = 8
MIN_THROUGHPUT_RATIO = 3.0
MAX_P99_RATIO = 0.5
CANARY_SHARE_TOLERANCE = 0.05
BIN = Path(sys.executable).parent


def _check(response: httpx.Response) -> str:
    """The arm that answered; raises unless the answer is one probability."""
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    predictions = body["predictions"] if isinstance(body, dict) else body
    value = predictions[0]
    if isinstance(value, list):  # MLflow answers predict_proba as [[p0, p1]]
        value = value[1]
    if isinstance(value, dict):
        value = list(value.values())[-1]
    if not (len(predictions) == 1 and 0.0 <= float(value) <= 1.0):
        raise RuntimeError(f"unexpected answer {body!r}")
    return response.headers.get("X-Model-Arm", "-")


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


async def _measure(url: str, bodies: list[bytes], args) -> dict:
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:

        async def post(i: int) -> httpx.Response:
            return await client.post(
                "/invocations", content=bodies[i % len(bodies)], headers=headers
            )

        for i in range(args.warmup):
            _check(await post(i))
        latencies = []
        for i in range(args.requests):
            started = time.perf_counter()
            response = await post(i)
            latencies.append(time.perf_counter() - started)
            _check(response)
        arms: dict[str, int] = {}
        loaded_latencies: list[float] = []
        stop_at = time.perf_counter() + args.seconds

        async def worker(offset: int) -> int:
            done, i = 0, offset
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                response = await post(i)
                loaded_latencies.append(time.perf_counter() - sent)
                arm = _check(response)
                arms[arm] = arms.get(arm, 0) + 1
                done, i = done + 1, i + CLIENTS
            return done

        started = time.perf_counter()
        counts = await asyncio.gather(*(worker(k) for k in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return {
        "p50": statistics.median(latencies) * 1000,
        "p99": _p99(latencies) * 1000,
        "loaded_p99": _p99(loaded_latencies) * 1000,
        "throughput": sum(counts) / elapsed,
        "arms": arms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns per server (median)")
    parser.add_argument("--requests", type=int, default=2000, help="sequential, for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="8 clients, for throughput")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--platform-dir",
        type=Path,
        help="build the platform here once and reuse it (default: temp)",
    )
    args = parser.parse_args()

    import fastapi
    import mlflow
    import sklearn
    import uvicorn

    versions = {"mlflow": mlflow.__version__, "fastapi": fastapi.__version__,
                "uvicorn": uvicorn.__version__, "httpx": httpx.__version__,
                "scikit-learn": sklearn.__version__}  # fmt: skip
    # The load before the servers start: their own work would raise it.
    recorder = Recorder("serving", machine_info(**versions))

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = args.platform_dir or Path(tmp)
        started = time.perf_counter()
        built = root / "benchmark-platform.json"
        if built.exists():
            env, name, rows = json.loads(built.read_text())
        else:
            root.mkdir(parents=True, exist_ok=True)
            env, name, rows = build_platform(root)
            built.write_text(json.dumps([env, name, rows]))
        print(
            f"platform: {name} champion v1, canary v2 at {CANARY_WEIGHT:.0%} "
            f"(built in {time.perf_counter() - started:.0f} s); {len(rows)} distinct rows, "
            f"{len(rows[0])} columns incl. the id"
        )
        env = {**os.environ, **env, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        # MLflow starts ``uvicorn`` by name: the venv's, as an activated venv would.
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        bodies = [json.dumps({"dataframe_records": [row]}).encode() for row in rows]
        mlflow_command = [
            str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{name}/1",
            "--env-manager", "local", "-p", "{port}", "-w", "1",
        ]  # fmt: skip
        servers = {
            OURS: ([str(BIN / "mlplatform"), "serve", "--port", "{port}"], "/health", env),
            MLFLOW: (mlflow_command, "/ping", env),
            MLFLOW_1T: (mlflow_command, "/ping", {**env, "OMP_NUM_THREADS": "1"}),
        }
        results: dict[str, list[dict]] = {server: [] for server in servers}
        for round_ in range(args.rounds):
            for number, (server, (command, ready, server_env)) in enumerate(servers.items()):
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                log = root / f"server{number}-round{round_}.log"
                with running(command, server_env, log, ready) as url:
                    result = asyncio.run(_measure(url, bodies, args))
                results[server].append(result)
                print(
                    f"  round {round_ + 1} {server:<20} p50 {result['p50']:6.2f} ms  "
                    f"p99 {result['p99']:6.2f} ms  {result['throughput']:7.1f} req/s  "
                    f"p99 under load {result['loaded_p99']:6.1f} ms  "
                    f"arms {result['arms']}  (load before: {load})"
                )

    summary = {
        server: {
            key: statistics.median(r[key] for r in runs)
            for key in ("p50", "p99", "throughput", "loaded_p99")
        }
        for server, runs in results.items()
    }
    ours, theirs = summary[OURS], summary[MLFLOW]
    print()
    print(f"{'server':<27}{'workers':>8}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'p99@8 ms':>10}")
    for server, s in summary.items():
        print(
            f"{server:<27}{1:>8}{s['p50']:>9.2f}{s['p99']:>9.2f}{s['throughput']:>9.1f}"
            f"{s['loaded_p99']:>10.1f}"
        )
    p50_ratio = ours["p50"] / theirs["p50"]
    p99_ratio = ours["p99"] / theirs["p99"]
    throughput_ratio = ours["throughput"] / theirs["throughput"]
    print(
        f"{'ours / mlflow':<35}{p50_ratio:>9.2f}{p99_ratio:>9.2f}{throughput_ratio:>9.2f}"
        f"{ours['loaded_p99'] / theirs['loaded_p99']:>10.2f}"
        f"   (goals: p99 <= {MAX_P99_RATIO}, throughput >= {MIN_THROUGHPUT_RATIO})"
    )
    tuned = summary[MLFLOW_1T]
    print(
        f"{'ours / mlflow OMP_NUM_THREADS=1':<35}{ours['p50'] / tuned['p50']:>9.2f}"
        f"{ours['p99'] / tuned['p99']:>9.2f}{ours['throughput'] / tuned['throughput']:>9.2f}"
        "   (information: MLflow given our one-thread-per-call setting by hand)"
    )
    arms: dict[str, int] = {}
    for run in results[OURS]:
        for arm, count in run["arms"].items():
            arms[arm] = arms.get(arm, 0) + count
    share = arms.get("canary", 0) / max(sum(arms.values()), 1)
    print(
        f"ours: canary share {share:.1%} of {sum(arms.values())} throughput requests "
        f"(weight {CANARY_WEIGHT:.0%}, routed by customer id)"
    )
    print(format_machine(machine_info(**versions)))

    problems = []
    if throughput_ratio < MIN_THROUGHPUT_RATIO:
        problems.append(
            f"throughput {throughput_ratio:.2f}x MLflow's, goal >= {MIN_THROUGHPUT_RATIO}x"
        )
    if p99_ratio > MAX_P99_RATIO:
        problems.append(f"p99 latency {p99_ratio:.2f}x MLflow's, goal <= {MAX_P99_RATIO}x")
    if abs(share - CANARY_WEIGHT) > CANARY_SHARE_TOLERANCE:
        problems.append(f"canary share {share:.1%}, expected {CANARY_WEIGHT:.0%}")
    recorder.add(*figures(summary, share, args))
    return recorder.finish(problems)


def figures(summary: dict, share: float, args) -> list[Figure]:
    """The goals (throughput, p99, canary share) and, for information, p50 and the tuned MLflow."""
    ours, theirs, tuned = summary[OURS], summary[MLFLOW], summary[MLFLOW_1T]
    setup = f"1 worker each, canary at {CANARY_WEIGHT:.0%}; median of {args.rounds} rounds"
    return [
        ratio_figure(f"{OURS} throughput, {CLIENTS} clients", ours["throughput"],
                     theirs["throughput"], MLFLOW, unit="req/s", at_least=MIN_THROUGHPUT_RATIO,
                     note=setup),
        ratio_figure(f"{OURS} p99 latency, 1 in flight", ours["p99"], theirs["p99"], MLFLOW,
                     unit="ms", at_most=MAX_P99_RATIO, note=f"{args.requests} sequential requests"),
        Figure("canary share of requests", share * 100, "%",
               goal=f"{CANARY_WEIGHT:.0%} +- {CANARY_SHARE_TOLERANCE:.0%}",
               met=abs(share - CANARY_WEIGHT) <= CANARY_SHARE_TOLERANCE,
               note="routed by customer id", plot=False),
        ratio_figure(f"{OURS} p50 latency, 1 in flight", ours["p50"], theirs["p50"], MLFLOW,
                     unit="ms", note="information"),
        ratio_figure(f"{OURS} throughput vs MLflow given 1 thread", ours["throughput"],
                     tuned["throughput"], MLFLOW_1T, unit="req/s",
                     note="information: OMP_NUM_THREADS=1 set by hand for MLflow"),
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
