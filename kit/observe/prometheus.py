"""A real Prometheus on loopback: the config the kit writes, start/stop, PromQL over the HTTP API.

:func:`scrape_config` writes a ``prometheus.yml`` that scrapes the exporters the kit runs: the KServe
model server's ``/metrics`` (KServe's latency histograms plus the kit's own metrics, :mod:`kit.observe.model`),
and, when a local Ray runs, every Ray node's metrics export port (:func:`ray_targets`: ``MetricsExportPort``
of ``ray.nodes()``, where Ray's and Ray Serve's metrics are exported). :class:`PrometheusServer` runs the
system ``prometheus`` binary on ``127.0.0.1`` at a free port with its TSDB in a temporary directory;
``stop()`` frees the port and deletes the data. :meth:`PrometheusServer.query` and
:meth:`~PrometheusServer.query_range` call ``/api/v1/query`` and ``/api/v1/query_range`` with httpx.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from kit.errors import KitError
from kit.machine.processes import LOOPBACK, free_port, kill_process_group, port_is_free

#: How to install the binaries where they are missing (Debian/Ubuntu, conda-forge, Homebrew).
INSTALL_FIX = ("install Prometheus (it ships promtool): `sudo apt-get install prometheus` (Debian/Ubuntu), "
               "`conda install -c conda-forge prometheus`, or `brew install prometheus`")


class PrometheusError(KitError, RuntimeError):
    """Prometheus is missing, did not start, or refused a query; the message says which."""

    def __init__(self, message: str, fix: str = INSTALL_FIX) -> None:
        super().__init__(message, fix=fix)


def binary(name: str = "prometheus") -> str | None:
    """Path of ``prometheus`` or ``promtool`` on PATH, or None."""
    return shutil.which(name)


def require(name: str = "prometheus") -> str:
    path = binary(name)
    if path is None:
        raise PrometheusError(f"`{name}` is not installed (not on PATH)")
    return path


def ray_targets(nodes: list[dict] | None = None) -> list[str]:
    """``host:port`` of every alive Ray node's metrics export port (Ray and Ray Serve metrics are served there).

    ``nodes`` defaults to ``ray.nodes()`` of the connected Ray (``ray.init(_metrics_export_port=...)`` sets the
    port; by default Ray picks one and reports it as ``MetricsExportPort``)."""
    if nodes is None:
        import ray

        nodes = ray.nodes()
    return [f"{node['NodeManagerAddress']}:{node['MetricsExportPort']}" for node in nodes
            if node.get("Alive") and node.get("MetricsExportPort")]


def scrape_config(targets: dict[str, list[str]], interval_s: float = 1.0,
                  rule_files: list[str] | None = None) -> dict[str, Any]:
    """A ``prometheus.yml``: one scrape job per entry of ``targets`` (job name -> ``host:port`` list)."""
    if not targets or not all(targets.values()):
        raise PrometheusError(f"nothing to scrape in {targets}", fix="give at least one host:port per job")
    interval = f"{round(interval_s * 1000)}ms" if interval_s % 1 else f"{int(interval_s)}s"  # no fractions
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(hosts)}]}
                           for job, hosts in targets.items()],
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    return config


@dataclass
class PrometheusServer:
    """``prometheus`` on 127.0.0.1 scraping ``targets`` every ``interval_s``, optionally loaded with ``rules``
    (a rules-file dict, :func:`kit.observe.rules.rules_file`). Not started: ``start()`` or ``with``."""

    targets: dict[str, list[str]]
    interval_s: float = 1.0
    rules: dict | None = None
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)
    directory: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_config(self) -> Path:
        """Write ``prometheus.yml`` (and ``rules.yml``) into this server's directory; return the config path."""
        assert self.directory is not None
        rule_files = None
        if self.rules:
            (self.directory / "rules.yml").write_text(yaml.safe_dump(self.rules, sort_keys=False))
            rule_files = [str(self.directory / "rules.yml")]
        path = self.directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(scrape_config(self.targets, self.interval_s, rule_files), sort_keys=False))
        return path

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        """Start (idempotent) and wait for ``/-/ready``."""
        if self.running():
            return self
        executable = require("prometheus")
        self.port = self.port if self.port and port_is_free(self.port) else free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="kit-prometheus-"))
        config = self.write_config()
        if self.rules:
            check_rules(self.directory / "rules.yml")
        log = (self.directory / "prometheus.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [executable, f"--config.file={config}", f"--web.listen-address={LOOPBACK}:{self.port}",
                 f"--storage.tsdb.path={self.directory / 'data'}", "--storage.tsdb.retention.time=1h",
                 "--web.enable-lifecycle", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise PrometheusError(f"prometheus exited with code {self.process.returncode}\n{self.log_tail()}",
                                      fix="read its log above (a bad config or rule is named there)")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise PrometheusError(f"prometheus at {self.url} was not ready after {timeout:.0f} s\n{tail}",
                              fix="read its log above")

    def reload(self, rules: dict | None = None) -> None:
        """Rewrite the config (with new ``rules``) and ask the running server to reload it."""
        self.rules = rules if rules is not None else self.rules
        self.write_config()
        response = httpx.post(f"{self.url}/-/reload", timeout=10)
        if response.status_code != 200:
            raise PrometheusError(f"reload refused: {response.text[:300]}", fix="check the rules with promtool")

    def log_tail(self, lines: int = 15) -> str:
        path = self.directory / "prometheus.log" if self.directory else None
        if path is None or not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server, wait until the port is free, delete its config and data."""
        if self.process is not None:
            if self.process.poll() is None:
                kill_process_group(self.process.pid, leader=self.process)
            self.process.wait(timeout=10)
            self.process = None
        deadline = time.monotonic() + 10
        while self.port and not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the HTTP API
    def _api(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        except httpx.HTTPError as error:
            raise PrometheusError(f"no answer from {self.url}: {type(error).__name__}",
                                  fix="start the server first (PrometheusServer.start())") from None
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus refused {params.get('query', path)!r}: {body.get('error')}",
                                  fix="check the PromQL (metric names: /api/v1/label/__name__/values)")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """An instant query (now, or at unix time ``at``): ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
        return self._api("query", {"query": promql, **({"time": at} if at is not None else {})})["result"]

    def value(self, promql: str, at: float | None = None) -> float | None:
        """The first series' value of an instant query as a float (None when it has no series)."""
        result = self.query(promql, at)
        return float(result[0]["value"][1]) if result else None

    def query_range(self, promql: str, start: float, end: float, step_s: float = 1.0) -> list[dict]:
        """A range query: ``[{"metric": {...}, "values": [[t, "v"], ...]}, ...]``."""
        return self._api("query_range", {"query": promql, "start": start, "end": end, "step": step_s})["result"]

    def names(self) -> list[str]:
        """Every metric name Prometheus has stored (``/api/v1/label/__name__/values``)."""
        return list(self._api("label/__name__/values", {}))

    def alerts(self) -> list[dict]:
        """Active alerts (pending and firing), as ``/api/v1/alerts`` lists them."""
        return self._api("alerts", {})["alerts"]

    def firing(self) -> list[str]:
        return sorted({a["labels"]["alertname"] for a in self.alerts() if a.get("state") == "firing"})

    def targets_up(self) -> dict[str, str]:
        """Scrape URL -> health ("up", "down", "unknown") of every active target."""
        return {t["scrapeUrl"]: t["health"] for t in self._api("targets", {})["activeTargets"]}

    def wait_for_scrape(self, timeout: float = 20.0) -> dict[str, str]:
        """Wait until every target has been scraped once and is up; say which is not."""
        deadline = time.monotonic() + timeout
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            health = self.targets_up()
            if health and all(h == "up" for h in health.values()):
                return health
            time.sleep(0.3)
        raise PrometheusError(f"targets not up after {timeout:.0f} s: {health}",
                              fix="is the exporter running? open its /metrics URL")

    def wait_for_alert(self, name: str, timeout: float = 30.0) -> float:
        """Seconds until alert ``name`` fires (PrometheusError after ``timeout``)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if name in self.firing():
                return time.monotonic() - began
            time.sleep(0.5)
        raise PrometheusError(f"alert {name} did not fire within {timeout:.0f} s (active: {self.alerts()})",
                              fix="query the rule's expression yourself: is the fault still on?")


def check_rules(path: Path) -> None:
    """``promtool check rules``: a malformed rule is refused before Prometheus loads it."""
    promtool = binary("promtool")
    if promtool is None:
        return  # prometheus refuses a bad rules file itself at start
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PrometheusError(f"promtool rejects {path.name}:\n{(done.stdout + done.stderr).strip()}",
                              fix="fix the rule it names")
