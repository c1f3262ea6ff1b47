"""``python -m kit bench serve``: the rows, ratios and batching explanation from fake figures; one real smoke run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from kit.bench import serve as bench
from kit.serve import loadgen
from kit.train import models

RPS = {bench.BASELINE: 200.0, bench.TWO_HOP: 60.0, bench.ONE_HOP: 80.0, bench.ONE_HOP_BATCHED: 82.0,
       bench.HANDLE: 400.0, bench.KSERVE_V1: 180.0, bench.KSERVE_V2: 170.0, bench.HEAVY: 18.0,
       bench.HEAVY_BATCHED: 60.0}
FORWARD = {"digits": {1: 0.05, 16: 0.08}, "heavy": {1: 50.0, 16: 60.0}}


def fake_rows() -> dict[str, dict]:
    return {label: {"throughput_rps": rps, "p50_ms": 16e3 / rps, "p95_ms": 20e3 / rps, "p99_ms": 25e3 / rps,
                    "errors": 0, "runs_rps": [rps]} for label, rps in RPS.items()}


def test_a_cheap_model_behind_http_cannot_gain_from_batching():
    e = bench.explain(0.05, 0.08, 16, http_ms=12.0, measured=1.02, p50_ms=190.0)
    assert not e["batching_helps"]
    assert e["gain_bound"][1] < bench.HELPS
    assert e["model_share"] < 0.01
    assert "cannot help" in e["verdict"] and "HTTP path" in e["verdict"]


def test_a_model_with_a_large_per_call_cost_gains_and_the_bounds_are_serial_and_overlapped():
    e = bench.explain(50.0, 60.0, 16, http_ms=12.0, measured=3.3, p50_ms=880.0)
    assert e["batching_helps"] and "batching pays" in e["verdict"]
    assert e["model_ms_per_row_batched"] == 3.75
    assert e["gain_bound"] == [round((12 + 50) / (12 + 3.75), 2), round(50 / 12, 2)]
    assert e["model_share"] == round(50 / 62, 3)


def test_no_http_cost_at_all_leaves_the_model_gain():
    e = bench.explain(10.0, 20.0, 16, http_ms=0.0, measured=7.0, p50_ms=1.0)
    assert e["gain_bound"] == [8.0, 8.0] and e["model_share"] == 1.0


def test_summary_has_every_goal_the_http_cost_and_both_explanations():
    summary = bench.summarize(fake_rows(), FORWARD)
    goals = summary["goals"]
    assert goals["Ray Serve two-hop / baseline (goal >= 0.5)"] == 0.3
    assert goals["Ray Serve one-hop / baseline (goal >= 0.5)"] == 0.4
    assert goals["Ray Serve handle, no HTTP / baseline"] == 2.0
    assert goals["batched / unbatched, heavy model (goal >= 2)"] == round(60 / 18, 2)
    assert goals["batched / unbatched, digits model"] == round(82 / 80, 2)
    heavy, digits = summary["explanations"]["heavy"], summary["explanations"]["digits"]
    assert digits["http_path_ms"] == round(1e3 / 80 - 0.05, 2) == heavy["http_path_ms"]
    assert heavy["batching_helps"] and not digits["batching_helps"]
    assert heavy["measured"] == goals["batched / unbatched, heavy model (goal >= 2)"]
    assert summary["ms_per_request"][bench.TWO_HOP] > summary["ms_per_request"][bench.ONE_HOP]


def test_a_server_that_answered_nothing_gives_nan_ratios_and_no_crash():
    rows = fake_rows()
    rows[bench.BASELINE]["throughput_rps"] = 0.0
    summary = bench.summarize(rows, FORWARD)
    assert str(summary["goals"]["Ray Serve one-hop / baseline (goal >= 0.5)"]) == "nan"
    assert summary["ms_per_request"][bench.BASELINE] == float("inf")


def test_the_printout_shows_every_row_the_ratios_and_a_verdict_per_model():
    data = {"machine": {"cpus": 2}, "concurrency": 16, "seconds_per_run": 2.0, "repeat": 1, "batch": 16,
            "wall_seconds": 1.0, **bench.summarize(fake_rows(), FORWARD)}
    text = bench.format_serve(data)
    for label in RPS:
        assert f"| {label} |" in text
    assert "batching cannot help" in text and "batching pays" in text
    assert "second hop" in text and "(goal >= 2)" in text
    json.dumps(data)  # what the command saves under build/bench/


def test_run_calls_counts_answers_and_failures_by_type():
    calls = 0

    async def call():
        nonlocal calls
        calls += 1
        mine = calls
        await asyncio.sleep(0)
        if mine % 3 == 0:
            raise TimeoutError("slow replica")

    result = loadgen.run_calls(call, concurrency=4, duration_s=0.2, label="fake handle")
    assert result.ok + result.statuses["TimeoutError"] == sum(result.statuses.values()) == calls
    assert result.statuses["TimeoutError"] == calls // 3 and result.ok > 0
    assert len(result.latencies) == result.ok


def test_the_heavy_model_is_a_trainable_kit_model():
    network = models.build_model("recurrent", hidden=16)
    assert network.steps == 1024
    assert network(torch.zeros(3, 64)).shape == (3, 10)


def test_one_short_real_run_has_every_row_positive_and_leaves_nothing_running(tmp_path):
    """The whole bench, 1 s per server, in its own process (it starts and stops its own Ray)."""
    from kit.machine import local_ray
    from kit.serve.process import kit_pythonpath, port_is_free

    ray_tmp = tempfile.mkdtemp(prefix="kb-")  # short: Ray's sockets live here
    env = dict(os.environ, PYTHONPATH=kit_pythonpath(), **{local_ray.TEMP_ENV: ray_tmp,
               local_ray.TOKEN_ENV: str(tmp_path / "auth_token")})
    code = "import json; from kit.bench import serve; print(json.dumps(serve.bench_serve(repeat=1, seconds=1.0)))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(data["rows"]) == set(RPS)
    for label, row in data["rows"].items():
        assert row["throughput_rps"] > 0 and row["p50_ms"] > 0, (label, row)
    assert set(data["explanations"]) == {"digits", "heavy"}
    assert all(value > 0 for value in data["goals"].values())
    assert not local_ray.ray_processes(Path(ray_tmp)), "the bench left Ray running"
    assert port_is_free(8000), "the bench left Serve's port in use"
