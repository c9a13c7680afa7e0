"""The load generator without a server: its report maths, its client loop (httpx.MockTransport)
and the rows of `mlplatform load`."""

from __future__ import annotations

import asyncio
import json
import math
import time

import httpx
import pytest

from mlplatform.load_command import read_rows, single_row_bodies
from mlplatform.load_report import LoadReport, Sample, failure_kind, percentile
from mlplatform.loadtest import load, run_load


@pytest.mark.parametrize(
    "status, body, kind",
    [
        (200, b'{"predictions": [0.25]}', None),
        (200, b'{"predictions": [0, 1, 0.5]}', None),
        (500, b'{"error_code": "INTERNAL_ERROR"}', "http_500"),
        (422, b'{"predictions": [0.25]}', "http_422"),
        (200, b"<html>oops</html>", "malformed"),
        (200, b"[0.25]", "malformed"),
        (200, b'{"result": [0.25]}', "malformed"),
        (200, b'{"predictions": []}', "malformed"),
        (200, b'{"predictions": 0.25}', "malformed"),
        (200, b'{"predictions": [1.5]}', "malformed"),
        (200, b'{"predictions": [-0.1]}', "malformed"),
        (200, b'{"predictions": [NaN]}', "malformed"),
        (200, b'{"predictions": [true]}', "malformed"),
        (200, b'{"predictions": ["0.25"]}', "malformed"),
        (200, b'{"predictions": [[0.75, 0.25]]}', "malformed"),
    ],
)
def test_only_a_200_with_probabilities_is_a_success(status, body, kind):
    assert failure_kind(status, body) == kind


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.991) == 100.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.001) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.99))
    with pytest.raises(ValueError, match="fraction"):
        percentile(values, 0.0)
    with pytest.raises(ValueError, match="fraction"):
        percentile(values, 99)


def _sample(ms: float, arm="champion", version="2", status=200, failure=None, detail=""):
    return Sample(0.0, ms / 1000, status, arm, version, failure, detail)


def test_report_counts_latency_arms_versions_and_failures():
    samples = [_sample(float(ms)) for ms in range(1, 91)]  # 1..90 ms, champion v2
    samples += [_sample(float(ms), arm="canary", version="3") for ms in range(91, 100)]
    samples.append(_sample(1000.0, status=500, failure="http_500", detail='{"error_code": "X"}'))
    report = LoadReport(tuple(reversed(samples)), elapsed=4.0, concurrency=8)
    assert report.requests == 100
    assert report.requests_per_second == 25.0
    # Failed requests count in the latency too: the client waited for them.
    assert (report.p50_ms, report.p99_ms, report.max_ms) == pytest.approx((50.0, 99.0, 1000.0))
    assert report.arms == {"champion": 91, "canary": 9}
    assert report.versions == {"2": 91, "3": 9}
    assert report.share("canary") == 0.09
    assert report.failures == {"http_500": 1}
    example = report.first_failures["http_500"]
    assert (example.status, example.detail) == (500, '{"error_code": "X"}')
    summary = report.summary()
    for figure in ("100 requests", "25.0 req/s", "p99 99.0", "canary 9 (9.00%)", "http_500 x1"):
        assert figure in summary
    assert '{"error_code": "X"}' in summary


def test_the_first_failure_of_each_kind_is_kept_and_an_empty_report_is_nan():
    samples = [
        _sample(1.0, status=0, failure="transport_ReadTimeout", detail=str(i)) for i in range(3)
    ]
    samples.append(_sample(1.0, status=500, failure="http_500", detail="boom"))
    first = LoadReport(tuple(samples), 1.0, 1).first_failures
    assert {k: s.detail for k, s in first.items()} == {
        "transport_ReadTimeout": "0",
        "http_500": "boom",
    }
    empty = LoadReport((), 0.0, 1)
    assert empty.requests == 0 and empty.requests_per_second == 0.0
    assert math.isnan(empty.p99_ms) and math.isnan(empty.share("canary"))
    assert "failures: none" in empty.summary()


def test_single_row_bodies_give_every_request_its_own_id():
    rows = [{"customer_id": "real-1", "x": 1}, {"customer_id": "real-2", "x": 2}]
    bodies = [json.loads(b) for b in single_row_bodies(rows, "customer_id", 5, "load")]
    assert [b["dataframe_records"][0]["customer_id"] for b in bodies] == [
        f"load-{i}" for i in range(5)
    ]
    assert [b["dataframe_records"][0]["x"] for b in bodies] == [1, 2, 1, 2, 1]
    assert rows[0]["customer_id"] == "real-1"  # the caller's rows are not changed
    with pytest.raises(ValueError, match="no rows"):
        single_row_bodies([], "customer_id", 5, "load")


def _fake_server(calls: list[bytes]):
    """Answers like the serving app; request 3 gets a 503 and request 5 a connection error."""

    async def handle(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let the other clients and the progress ticker run
        calls.append(request.content)
        if len(calls) == 3:
            return httpx.Response(503, json={"error_code": "TEMPORARILY_UNAVAILABLE"})
        if len(calls) == 5:
            raise httpx.ConnectError("connection refused", request=request)
        arm = "canary" if json.loads(request.content)["id"] % 4 == 0 else "champion"
        headers = {"X-Model-Arm": arm, "X-Model-Version": "3" if arm == "canary" else "2"}
        return httpx.Response(200, json={"predictions": [0.5]}, headers=headers)

    return httpx.MockTransport(handle)


def test_the_client_loop_sends_bodies_in_turn_and_keeps_every_answer():
    calls: list[bytes] = []
    progress = []
    bodies = [json.dumps({"id": i}).encode() for i in range(10)]
    report = asyncio.run(
        load(
            "http://test",
            bodies,
            seconds=0.3,
            concurrency=4,
            on_progress=progress.append,
            progress_seconds=0.05,
            transport=_fake_server(calls),
        )
    )
    assert report.requests == len(calls) > 20
    # Bodies in turn, over all clients: each one sent once before any is sent again.
    assert sorted(calls[:10]) == sorted(bodies)
    assert report.failures == {"http_503": 1, "transport_ConnectError": 1}
    assert report.arms["canary"] + report.arms["champion"] == report.requests - 2
    assert report.elapsed >= 0.3
    assert progress and all(p.requests <= report.requests for p in progress)
    assert progress[-1].failures == 2


@pytest.mark.parametrize(
    ("min_requests", "max_seconds", "at_least"),
    [(400, 30.0, 400), (10**9, 0.3, 1), (0, 30.0, 1)],
    ids=["until_the_minimum", "bounded_by_max_seconds", "no_minimum"],
)
def test_the_load_goes_past_its_seconds_until_the_minimum_within_the_bound(
    min_requests, max_seconds, at_least
):
    started = time.perf_counter()
    report = asyncio.run(
        load(
            "http://test",
            [json.dumps({"id": i}).encode() for i in range(10)],
            seconds=0.01,
            concurrency=4,
            transport=_fake_server([]),
            min_requests=min_requests,
            max_seconds=max_seconds,
        )
    )
    assert report.requests >= at_least
    assert time.perf_counter() - started < max_seconds + 5.0
    if min_requests == 10**9:
        assert report.elapsed >= max_seconds


def test_bad_arguments_are_refused_before_sending():
    with pytest.raises(ValueError, match="no request bodies"):
        run_load("http://127.0.0.1:9", [], seconds=1, concurrency=1)
    with pytest.raises(ValueError, match="positive"):
        run_load("http://127.0.0.1:9", [b"{}"], seconds=0, concurrency=1)
    with pytest.raises(ValueError, match="positive"):
        run_load("http://127.0.0.1:9", [b"{}"], seconds=1, concurrency=0)


def test_the_load_command_reads_json_lines_rows_and_names_a_bad_line(tmp_path):
    good = tmp_path / "rows.jsonl"
    good.write_text('{"customer_id": "a", "x": 1}\n\n{"customer_id": "b", "x": null}\n')
    assert read_rows(good) == [{"customer_id": "a", "x": 1}, {"customer_id": "b", "x": None}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n{"x": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not JSON"):
        read_rows(bad)
    bad.write_text('{"x": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: expected a JSON object"):
        read_rows(bad)
    bad.write_text("\n")
    with pytest.raises(ValueError, match="no rows"):
        read_rows(bad)


def test_the_load_command_refuses_a_zero_duration(capsys):
    from mlplatform.cli import main

    assert main(["load", "--url", "http://127.0.0.1:9", "--seconds", "0"]) == 2
    assert "--seconds and --concurrency must be positive" in capsys.readouterr().err
