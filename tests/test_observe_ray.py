"""Ray's and Ray Serve's metrics in a real Prometheus, and a failed task in Ray's state and log APIs (issue 13).

One run of ``python -m kit bench observe-ray --json`` in its own process (module fixture): its own local Ray with
the dashboard (the state API needs it; the shared ``local_ray`` of the other tests runs without one), a Serve
application under load, a Prometheus on loopback scraping Ray's metrics port, one task that fails on purpose.
The tests read the figures it printed, then prove it left nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from kit.machine.processes import port_is_free
from kit.observe import logs, ray_metrics

SECONDS = 3.0


@pytest.fixture(scope="module")
def run(model_dir, local_ray, tmp_path_factory):
    """``local_ray``: the other tests' Ray runs meanwhile, so two local Rays are up, as with two Jupyter servers
    (the state API must ask the command's own Ray, not fail on "multiple active Ray instances")."""
    if shutil.which("prometheus") is None:
        pytest.fail("`prometheus` is not on PATH: this test runs a real Prometheus (apt-get install prometheus)")
    ray_root = Path(tempfile.mkdtemp(prefix="kto-"))  # short: Ray's unix sockets live below it
    env = {**os.environ, "KIT_RAY_TMPDIR": str(ray_root),
           "RAY_AUTH_TOKEN_PATH": str(tmp_path_factory.mktemp("ray-auth") / "auth_token")}
    env.pop("JPY_PARENT_PID", None)  # the command owns its Ray
    done = subprocess.run([sys.executable, "-m", "kit", "bench", "observe-ray", "--json", "--seconds", str(SECONDS),
                           "--model-dir", str(model_dir)], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    data = json.loads(done.stdout[done.stdout.rfind("\n{\n") + 1:])  # the JSON is printed last
    data["ray_root"] = str(ray_root)
    yield data
    shutil.rmtree(ray_root, ignore_errors=True)


def test_serve_request_rate_and_p95_come_from_prometheus(run):
    figures, load = run["figures"], run["load"]
    assert load["ok"] > 0 and load["sent"] == load["ok"], load
    # Prometheus counted exactly the requests the load generator sent (the command waited for the last one)
    assert figures["serve requests counted"] == load["sent"]
    rate = figures["serve requests/s"]
    assert rate is not None and 0 < rate <= 3 * load["throughput_rps"], (rate, load)
    p95 = figures["serve p95 (ms)"]
    # the proxy's latency is a part of the client's; a histogram bucket is at most 2.5x wider than its lower edge
    assert p95 is not None and math.isfinite(p95) and 0 < p95 <= 2.5 * load["p99_ms"], (p95, load)


def test_healthy_replicas_over_the_window(run):
    values = [value for _, value in run["replicas_over_time"]]
    assert len(values) >= SECONDS, run["replicas_over_time"]
    assert min(values) >= 1, run["replicas_over_time"]
    assert run["figures"]["healthy replicas"] >= 1


def test_ray_core_metrics_count_the_serve_actors_and_the_failed_task(run):
    names = set(run["metric_names"])
    expected = {ray_metrics.SERVE_REQUESTS, f"{ray_metrics.SERVE_LATENCY}_bucket", ray_metrics.SERVE_REPLICAS,
                ray_metrics.RAY_TASKS, ray_metrics.RAY_ACTORS}
    assert expected <= names, expected - names
    assert run["figures"]["actors alive"] >= 3  # Serve's controller, its HTTP proxy, one replica
    assert run["figures"]["failed tasks"] == 1  # this Ray's one task named so, counted once (by its owner)


def test_the_failed_task_is_in_the_state_api_and_its_output_in_the_log_api(run):
    task = run["failed_task"]
    assert task["name"] == logs.FAILING_TASK and task["state"] == "FAILED"
    assert task["error_type"] == "TASK_EXECUTION_EXCEPTION"
    assert task["error"].startswith("ValueError: ") and task["error"].endswith("(raised in the task)"), task
    marker = task["error"].removeprefix("ValueError: ").removesuffix(" (raised in the task)")
    assert any(marker in line for line in run["task_log"]), run["task_log"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_nothing_is_left_running(run):
    for name, port in run["ports"].items():
        assert port_is_free(port), f"{name}'s port {port} is still taken"
    markers = (run["ray_root"], run["prometheus_dir"])
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
            if any(m in " ".join(p.info["cmdline"] or []) for m in markers)]
    assert not left, f"processes outlived the command: {left}"
    assert len(run["ray_pids"]) >= 5  # GCS, raylet, agents, Serve's controller, proxy and replica, ...
    alive = [pid for pid in run["ray_pids"] if _alive(pid)]
    assert not alive, f"Ray processes outlived the command: {alive}"
    assert not Path(run["ray_temp_dir"]).exists(), "the Ray session's directory outlived local_ray.stop()"
    assert not Path(run["prometheus_dir"]).exists(), "Prometheus's data outlived stop()"


def test_queries_name_the_application_and_the_table_shows_the_figures(run):
    promql = ray_metrics.queries("shop")
    assert 'application="shop"' in promql["serve requests/s"] and "[W]" in promql["serve p95 (ms)"]
    assert f'Name="{logs.FAILING_TASK}"' in promql["failed tasks"]
    table = ray_metrics.format_observation(run)
    assert "healthy replicas" in table and logs.FAILING_TASK in table and run["targets"][0] in table


def test_without_prometheus_the_command_says_so_before_starting_anything(monkeypatch, capsys):
    import ray

    from kit.cli import main
    from kit.observe import prometheus

    monkeypatch.setattr(prometheus.shutil, "which", lambda name: None)
    connected = ray.is_initialized()  # the other tests' shared Ray may be up in this process
    assert main(["bench", "observe-ray", "--json"]) == 1
    err = capsys.readouterr().err
    assert "`prometheus` is not installed" in err and "apt-get install prometheus" in err, err
    assert ray.is_initialized() == connected  # no Ray started (or stopped) by a command that cannot run
