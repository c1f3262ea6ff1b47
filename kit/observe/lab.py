"""Stage 10's live setup in one object: the observed KServe server, a real Prometheus scraping it, load bursts.

:meth:`ObserveLab.start` starts :func:`kit.observe.model.observed_server` and, where ``prometheus`` is
installed, a :class:`~kit.observe.prometheus.PrometheusServer` loaded with the local (seconds-long) SLO
rules and the drift alert. Where it is not, ``prometheus`` is None and :meth:`ObserveLab.figures` computes the
same figures from two scrapes of ``/metrics`` (:mod:`kit.observe.textparse`). :meth:`burst` drives the
kit's load generator; :meth:`fault` injects a slow replica or an error burst. The lab registers itself as
the current one, so stage 10's exercise checks query the same Prometheus the notebook shows.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kit.observe import model, rules
from kit.observe.prometheus import PrometheusServer, binary
from kit.serve.loadgen import LoadResult, run_load
from kit.serve.process import ServerProcess

#: The PromQL the notebook shows (``W``: the window, set per call).
QUERIES = {
    "throughput (req/s)": f"sum(rate({rules.REQUESTS}[W]))",
    "error rate": f'sum(rate({rules.REQUESTS}{{code=~"5.."}}[W])) / sum(rate({rules.REQUESTS}[W]))',
    "p50 (s)": f"histogram_quantile(0.50, sum by (le) (rate({rules.DURATION}_bucket[W])))",
    "p95 (s)": f"histogram_quantile(0.95, sum by (le) (rate({rules.DURATION}_bucket[W])))",
    "p99 (s)": f"histogram_quantile(0.99, sum by (le) (rate({rules.DURATION}_bucket[W])))",
    "replicas up": 'count(up{job="kserve"} == 1)',
}

_current: ObserveLab | None = None


def current() -> ObserveLab | None:
    """The running lab of this kernel, if any."""
    return _current if _current is not None and _current.server.running() else None


@dataclass
class ObserveLab:
    server: ServerProcess
    control: Path
    prometheus: PrometheusServer | None
    body: dict
    drift_threshold: float = rules.DRIFT_THRESHOLD
    bursts: list[LoadResult] = field(default_factory=list, repr=False)

    @classmethod
    def start(cls, model_dir: str | Path, body: dict, drift_threshold: float = rules.DRIFT_THRESHOLD,
              use_prometheus: bool = True) -> ObserveLab:
        global _current
        if _current is not None:
            _current.stop()
        control = Path(tempfile.mkdtemp(prefix="kit-observe-"))
        server = model.observed_server(model_dir, control).start()
        prometheus = None
        if use_prometheus and binary("prometheus"):
            prometheus = PrometheusServer({"kserve": [f"127.0.0.1:{server.port}"]}, interval_s=1.0,
                                          rules=rules.rules_file(rules.LOCAL_WINDOWS, drift_threshold))
            try:
                prometheus.start()
                prometheus.wait_for_scrape()
            except BaseException:
                prometheus.stop()
                server.stop()
                raise
        _current = cls(server, control, prometheus, body, drift_threshold)
        return _current

    @property
    def url(self) -> str:
        return f"{self.server.url}/v1/models/digits:predict"

    @property
    def metrics_url(self) -> str:
        return f"{self.server.url}/metrics"

    def burst(self, seconds: float = 3.0, concurrency: int = 4, body: dict | None = None,
              label: str = "") -> LoadResult:
        """Closed-loop load for ``seconds`` with the kit's load generator (``body`` defaults to clean digits)."""
        result = run_load(self.url, body or self.body, concurrency=concurrency, duration_s=seconds,
                          label=label or f"burst {len(self.bursts) + 1}")
        self.bursts.append(result)
        return result

    def fault(self, delay_s: float = 0.0, error_rate: float = 0.0) -> None:
        """Make the server slow (``delay_s`` per request) or fail (``error_rate``); no arguments clears it."""
        model.set_fault(self.control, delay_s, error_rate)

    def settle(self, scrapes: int = 2) -> None:
        """Wait for ``scrapes`` more scrapes, so the last requests are in Prometheus."""
        time.sleep(scrapes * (self.prometheus.interval_s if self.prometheus else 1.0) + 0.2)

    def figures(self, window: str = "10s", at: float | None = None) -> dict[str, float | None]:
        """Every query of :data:`QUERIES` over the ``window`` before ``at`` (default: now)."""
        assert self.prometheus is not None, "no Prometheus here: use kit.observe.textparse.window(before, after)"
        return {name: self.prometheus.value(q.replace("W", window), at) for name, q in QUERIES.items()}

    def measure(self, seconds: float, body: dict | None = None, label: str = "",
                window: str | None = None) -> tuple[LoadResult, dict[str, float | None], str]:
        """A burst, then its figures: from Prometheus (PromQL over ``window``, default the burst's length, ending
        when the burst ended), or where there is none from two scrapes of ``/metrics`` around the burst. Returns
        the load generator's result, the figures and where they came from."""
        from kit.observe import textparse

        before = textparse.scrape(self.metrics_url)
        result = self.burst(seconds, body=body, label=label)
        ended = time.time()
        self.settle()
        if self.prometheus is not None:
            return result, self.figures(window or f"{max(2, round(seconds))}s", at=ended), "Prometheus (PromQL)"
        parsed = textparse.window(before, textparse.scrape(self.metrics_url))
        names = dict(zip(("throughput_rps", "error_rate", "p50_s", "p95_s", "p99_s"), QUERIES, strict=False))
        return result, {names[k]: v for k, v in parsed.items()}, "the exporter's text (no Prometheus installed)"

    def drift_score(self) -> float:
        """The server's ``digits_input_drift_score`` as Prometheus last scraped it (else read from /metrics)."""
        from kit.observe import textparse

        if self.prometheus is not None:
            return self.prometheus.value(rules.DRIFT) or 0.0
        return textparse.scrape(self.metrics_url).total(rules.DRIFT)

    def wait_for_alert(self, name: str, timeout: float = 30.0) -> float | None:
        """Seconds until alert ``name`` fires; None (said) where there is no Prometheus to evaluate rules."""
        if self.prometheus is None:
            print(f"no Prometheus here, so no rule evaluation: {name} cannot fire (install prometheus to see it)")
            return None
        return self.prometheus.wait_for_alert(name, timeout)

    def load_until_alert(self, name: str, timeout: float = 30.0, body: dict | None = None, label: str = "",
                         concurrency: int = 4) -> tuple[float | None, LoadResult]:
        """Keep the load on (one-second bursts, as a real fault persists until fixed) until alert ``name`` fires.

        Returns the seconds it took (None where there is no Prometheus: then one burst is sent) and the first
        burst's result. PrometheusError after ``timeout`` seconds without the alert."""
        began = time.monotonic()
        first = self.burst(1.0, body=body, label=label, concurrency=concurrency)
        if self.prometheus is None:
            return self.wait_for_alert(name), first
        while name not in self.prometheus.firing():
            if time.monotonic() - began > timeout:
                return self.prometheus.wait_for_alert(name, 0.1), first  # raises, listing the active alerts
            self.burst(1.0, body=body, label=label, concurrency=concurrency)
        return time.monotonic() - began, first

    def request_log(self, request_id: str | None = None) -> list[dict]:
        return model.request_log(self.control, request_id)

    def stop(self) -> None:
        """Stop Prometheus (port freed, data deleted) and the server; remove the control directory."""
        global _current
        if self.prometheus is not None:
            self.prometheus.stop()
        self.server.stop()
        import shutil

        shutil.rmtree(self.control, ignore_errors=True)
        if _current is self:
            _current = None


def plot(prometheus: PrometheusServer, queries: dict[str, str], start: float, end: float,
         marks: dict[str, float] | None = None, window: str = "5s"):
    """One panel per query over [start, end] (range queries, 1 s step); ``marks``: label -> time of a vertical line."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(queries), 1, figsize=(7, 1.9 * len(queries)), sharex=True)
    axes = [axes] if len(queries) == 1 else list(axes)
    for ax, (name, query) in zip(axes, queries.items(), strict=True):
        for series in prometheus.query_range(query.replace("W", window), start, end):
            xs = [float(t) - start for t, _ in series["values"]]
            ax.plot(xs, [float(v) for _, v in series["values"]], lw=1.5)
        for label, at in (marks or {}).items():
            ax.axvline(at - start, color="grey", ls="--", lw=1)
            ax.text(at - start, ax.get_ylim()[1], f" {label}", va="top", fontsize=8, color="grey")
        ax.set_ylim(bottom=0)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    return fig
