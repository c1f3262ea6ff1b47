"""Ray's and Ray Serve's own metrics in a real Prometheus, and Ray's logs of a failed task, in one run.

:func:`observe` starts (or attaches to) the local Ray the kit's way with its dashboard (the state and log APIs
need it), deploys the digits application (:func:`kit.serve.rayserve.deploy`, one hop, the NumPy backend: the
lightest replica), starts a :class:`~kit.observe.prometheus.PrometheusServer` on loopback that scrapes every
Ray node's metrics export port (:func:`~kit.observe.prometheus.ray_targets`), drives load with
:mod:`kit.serve.loadgen`, makes one task fail on purpose (:func:`kit.observe.logs.start_failing_task`), then asks
Prometheus with PromQL (:func:`queries`) and tears everything down. ``python -m kit bench observe-ray`` runs it.

Metric names, as Ray 2.60 exports them (its metrics agent prefixes every name with ``ray_``:
``ray/dashboard/modules/reporter/reporter_agent.py``, ``MetricsAgent(namespace="ray")``; counters gain
``_total``); the same names Ray's Grafana dashboards query (``ray/dashboard/modules/metrics/dashboards/``):

- :data:`SERVE_REQUESTS` and :data:`SERVE_LATENCY` (a histogram in ms, labels ``application``, ``route``,
  ``method``, ``status_code``): ``ray/serve/_private/request_ingress_metrics.py``, the HTTP proxy's
  ``serve_num_{protocol}_requests`` and ``serve_{protocol}_request_latency_ms``;
- :data:`SERVE_REPLICAS`: ``ray/serve/_private/deployment_state.py``, ``serve_deployment_replica_healthy``
  (one series per replica, 1 when its last health check passed; the controller re-sets it every
  ``RAY_SERVE_STATUS_GAUGE_REPORT_INTERVAL_S``, 10 s by default);
- :data:`RAY_TASKS` and :data:`RAY_ACTORS` (labels ``State``, ``Name``, ``Source``): Ray core's task and actor
  state gauges, what the dashboard's "Tasks"/"Actors" panels sum.

How fast the figures arrive: every Ray process exports its metrics to its node's agent every
``metrics_report_interval_ms`` (Ray's config, ``src/ray/common/ray_config_def.h``: 10000 by default, 1000 at
least), and a gauge not re-set for two intervals is dropped (``ray/_private/telemetry/
open_telemetry_metric_recorder.py``). The kit's :mod:`kit.machine.local_ray` does not expose Ray's config, but Ray
reads each entry from a ``RAY_<name>`` environment variable, which the Ray processes inherit: when :func:`observe`
starts the Ray itself, it sets :data:`FAST_REPORTING`, so the load is in Prometheus a second or two after it ends.
Serve's own ``RAY_SERVE_STATUS_GAUGE_REPORT_INTERVAL_S`` (``ray/serve/_private/constants.py``) goes to 1 s with it:
re-set every 10 s, the replica gauge would be dropped between two re-sets at a 1 s report interval (found by
scraping: it was missing). Attached to a Ray started without them, :func:`observe` waits longer (:data:`WAIT_S`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.machine.processes import environment
from kit.observe.logs import FAILING_TASK
from kit.observe.prometheus import PrometheusServer, ray_targets, require

SERVE_REQUESTS = "ray_serve_num_http_requests_total"
SERVE_LATENCY = "ray_serve_http_request_latency_ms"
SERVE_REPLICAS = "ray_serve_deployment_replica_healthy"
RAY_TASKS = "ray_tasks"
RAY_ACTORS = "ray_actors"
#: Ray config as environment variables (inherited by the Ray this process starts): report every second.
FAST_REPORTING = {"RAY_metrics_report_interval_ms": "1000", "RAY_SERVE_STATUS_GAUGE_REPORT_INTERVAL_S": "1"}
#: Longest wait for the load to show in Prometheus (Ray's default 10 s report interval, twice, plus scrapes).
WAIT_S = 30.0


def queries(app: str, task: str = FAILING_TASK) -> dict[str, str]:
    """The PromQL this module asks (``W``: the window, set per call) for Serve application ``app`` and task ``task``."""
    serve = f'application="{app}"'
    return {
        "serve requests/s": f"sum(rate({SERVE_REQUESTS}{{{serve}}}[W]))",
        "serve p95 (ms)": f"histogram_quantile(0.95, sum by (le) (rate({SERVE_LATENCY}_bucket{{{serve}}}[W])))",
        "serve requests counted": f"sum({SERVE_REQUESTS}{{{serve}}})",
        "healthy replicas": f"sum({SERVE_REPLICAS}{{{serve}}})",
        # as Ray's dashboard: GCS-side actor states; a finished/failed task count is the max over the window
        # (a failed task is counted once, by its owner: Source="owner")
        "actors alive": f'sum({RAY_ACTORS}{{Source="gcs",State="ALIVE"}})',
        "failed tasks": f'sum(max_over_time({RAY_TASKS}{{State="FAILED",IsRetry="0",Name="{task}"}}[W]))',
    }


@dataclass
class Observation:
    """What one :func:`observe` run measured (:meth:`summary`: the ``--json`` figures)."""

    figures: dict[str, float | None]
    replicas_over_time: list[tuple[float, float]]
    load: dict[str, Any]
    failed_task: dict[str, Any]
    task_log: list[str]
    metric_names: list[str]
    targets: list[str]
    ports: dict[str, int]
    ray_temp_dir: str
    prometheus_dir: str
    seconds: dict[str, float]
    memory_mib: float | None
    #: Ray's processes (head, agents, workers) while it ran: none may outlive :func:`observe` when it started Ray
    ray_pids: list[int]

    def summary(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def _wait_for(prometheus: PrometheusServer, promql: str, at_least: float, timeout: float) -> float:
    """Seconds until ``promql`` is at least ``at_least`` in Prometheus (KitError after ``timeout``)."""
    began = time.monotonic()
    seen: float | None = None
    while time.monotonic() - began < timeout:
        seen = prometheus.value(promql)
        if seen is not None and seen >= at_least:
            return time.monotonic() - began
        time.sleep(0.5)
    raise KitError(f"Prometheus has {promql} = {seen} after {timeout:.0f} s, expected at least {at_least:g}",
                   fix="are Ray's metrics exported? open the Ray node's metrics port (ray_targets()) "
                       "and look for the name; Ray reports every metrics_report_interval_ms")


def _tree(processes: list) -> dict[int, Any]:
    """``processes`` (Ray's) and all their children: Ray's workers rename themselves ``ray::...``, so only the
    process tree finds them."""
    import psutil

    tree: dict[int, Any] = {}
    for proc in processes:
        try:
            for member in [proc, *proc.children(recursive=True)]:
                tree[member.pid] = member
        except psutil.NoSuchProcess:
            continue
    return tree


def _tree_pss_mib(tree: dict[int, Any]) -> float | None:
    """PSS of this process and ``tree``, in MiB; None where PSS cannot be read."""
    import psutil

    total = 0
    for member in [psutil.Process(), *tree.values()]:
        try:
            total += member.memory_full_info().pss
        except psutil.NoSuchProcess:
            continue
        except (psutil.Error, AttributeError):
            return None
    return round(total / 2**20, 1)


def observe(model_dir: str | Path, seconds: float = 3.0, concurrency: int = 4, app: str = "observed",
            marker: str = "kit-observe-ray: this task fails on purpose") -> Observation:
    """The whole run (see the module's docstring); always stops Prometheus, Serve and this process's Ray."""
    import ray

    from kit.config.serve import ServeConfig
    from kit.machine import local_ray
    from kit.machine.processes import free_port
    from kit.observe import logs
    from kit.serve import loadgen, predictor, rayserve

    require("prometheus")
    times: dict[str, float] = {}
    began = time.perf_counter()
    # only the Ray started now reads them (a value the user set wins); the next one starts as it would
    fast = {} if ray.is_initialized() else {k: v for k, v in FAST_REPORTING.items() if k not in os.environ}
    with environment(fast):
        info = local_ray.start(dashboard=True)
    times["ray start"] = round(time.perf_counter() - began, 1)
    serve_port = free_port()
    prometheus: PrometheusServer | None = None
    try:
        failing = logs.start_failing_task(marker)  # its worker starts while Serve deploys
        mark = time.perf_counter()
        served = rayserve.deploy(ServeConfig(model_dir=str(model_dir), name=app, route_prefix=f"/{app}",
                                             max_batch_size=8, backend="auto"), port=serve_port, one_hop=True)
        times["serve deploy"] = round(time.perf_counter() - mark, 1)
        targets = ray_targets()
        prometheus = PrometheusServer({"ray": targets}, interval_s=1.0).start()
        prometheus.wait_for_scrape()
        watch_from = time.time()
        mark = time.perf_counter()
        load = loadgen.run_load(served.predict_url, {"instances": predictor.sample_instances(1)},
                                concurrency=concurrency, duration_s=seconds, label=f"Ray Serve {app}")
        ray_tree = _tree(local_ray.ray_processes(info.temp_dir))
        memory = _tree_pss_mib(ray_tree)
        sent = sum(load.statuses.values())
        q = queries(app)
        # Samples are stamped when Prometheus scrapes them, up to one report interval and one scrape after the
        # request: the window that ends when the last request is counted holds the load, shifted by that lag.
        times["metrics lag"] = round(_wait_for(prometheus, q["serve requests counted"], sent, WAIT_S), 1)
        at = time.time()
        window = f"{max(2, round(seconds))}s"
        serve_figures = {name: prometheus.value(promql.replace("W", window), at)
                         for name, promql in q.items() if name.startswith(("serve", "healthy"))}
        times["load and Serve queries"] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()
        failed = logs.confirm_failed(failing)
        rows = logs.failed_tasks(failed)
        lines = logs.task_log(rows[0]["task_id"])
        _wait_for(prometheus, q["failed tasks"].replace("W", "1m"), 1, WAIT_S)
        core = {name: prometheus.value(q[name].replace("W", "1m")) for name in ("actors alive", "failed tasks")}
        end = time.time()
        replicas = prometheus.query_range(q["healthy replicas"], watch_from, end, 1.0)
        samples = replicas[0]["values"] if replicas else []
        over_time = [(round(float(t) - watch_from, 1), float(v)) for t, v in samples]
        names = prometheus.names()
        times["failed task and its logs"] = round(time.perf_counter() - mark, 1)
        return Observation(
            figures={**serve_figures, **core}, replicas_over_time=over_time,
            load={**load.summary(), "sent": sent, "window": window},
            failed_task=rows[0], task_log=lines,
            metric_names=sorted(n for n in names if n.startswith(("ray_serve_", "ray_tasks", "ray_actors"))),
            targets=targets, ports={"prometheus": prometheus.port, "serve": serve_port},
            ray_temp_dir=str(info.temp_dir), prometheus_dir=str(prometheus.directory), seconds=times,
            memory_mib=memory, ray_pids=sorted(ray_tree))
    finally:
        if prometheus is not None:
            prometheus.stop()
        rayserve.shutdown(serve_port)
        local_ray.stop()
        times["total"] = round(time.perf_counter() - began, 1)


def format_observation(data: dict[str, Any]) -> str:
    """The ``bench observe-ray`` table: the PromQL figures, replicas over time, the failed task and its log."""
    lines = [f"Prometheus scraped Ray's metrics port(s) {', '.join(data['targets'])}"]
    lines.append(f"load: {data['load']['sent']} requests sent, {data['load']['throughput_rps']:.1f} req/s measured "
                 "by the load generator")
    lines.append(f"PromQL (Serve over the last {data['load']['window']} of the load, Ray core over 1m):")
    for name, value in data["figures"].items():
        lines.append(f"  {name:<24} {'-' if value is None else f'{value:.3g}'}")
    replicas = [v for _, v in data["replicas_over_time"]]
    if replicas:
        lines.append(f"healthy replicas over {len(replicas)} s: min {min(replicas):g}, max {max(replicas):g}")
    task = data["failed_task"]
    lines.append(f"failed task {task['name']} ({task['task_id']}): {task['error_type']}: {task['error']}")
    lines.extend(f"  log | {line}" for line in data["task_log"][-3:])
    lines.append("seconds: " + ", ".join(f"{k} {v}" for k, v in data["seconds"].items()))
    if data.get("memory_mib") is not None:
        lines.append(f"memory after the load (this process, Ray and its workers, PSS): {data['memory_mib']:.0f} MiB")
    return "\n".join(lines)
