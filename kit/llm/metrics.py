"""What the engine says about its own state: ``/metrics`` samples and its periodic stats line.

- :class:`MetricsSampler` polls vLLM's Prometheus endpoint in a thread while a load runs: requests
  running and waiting, the KV cache's usage (0-1) and preemptions, as a timeline (:class:`EngineSample`).
- :func:`stats_lines` finds the engine's log lines such as ``Running: 3 reqs, Waiting: 13 reqs, CPU KV cache
  usage: 98.4%`` (every ``VLLM_LOG_STATS_INTERVAL`` seconds while it works): the "KV cache full" event a
  learner reads when requests wait although ``max_num_seqs`` has room.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

RUNNING, WAITING = "vllm:num_requests_running", "vllm:num_requests_waiting"
KV_USAGE, PREEMPTIONS = "vllm:kv_cache_usage_perc", "vllm:num_preemptions_total"
STATS_LINE = re.compile(r"Running: \d+ reqs, Waiting: \d+ reqs.*KV cache usage: [\d.]+%")


def metric(text: str, name: str) -> float | None:
    """The sum of a Prometheus metric's samples (any labels) in ``/metrics`` text, or None when absent."""
    values = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.MULTILINE)
    return sum(float(v) for v in values) if values else None


@dataclass(frozen=True)
class EngineSample:
    """One reading of the engine's gauges, ``t`` seconds after sampling began."""

    t: float
    running: float
    waiting: float
    kv_usage: float  # 0-1: the share of the KV cache's blocks in use
    preemptions: float

    @classmethod
    def parse(cls, t: float, text: str) -> EngineSample:
        return cls(round(t, 3), metric(text, RUNNING) or 0.0, metric(text, WAITING) or 0.0,
                   metric(text, KV_USAGE) or 0.0, metric(text, PREEMPTIONS) or 0.0)


class MetricsSampler:
    """Polls ``{url}/metrics`` every ``every_s`` in a thread (``with``); ``samples`` is the timeline."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self.url, self.every_s = url.rstrip("/"), every_s
        self.samples: list[EngineSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kit-llm-metrics", daemon=True)

    def _run(self) -> None:
        import httpx

        began = time.perf_counter()
        with httpx.Client(timeout=2.0) as http:
            while not self._stop.is_set():
                try:
                    text = http.get(self.url + "/metrics").text
                except httpx.HTTPError:
                    continue
                self.samples.append(EngineSample.parse(time.perf_counter() - began, text))
                self._stop.wait(self.every_s)

    def peak(self, field: str) -> float:
        """The largest value of ``field`` (running, waiting, kv_usage, preemptions) sampled."""
        return max((getattr(s, field) for s in self.samples), default=0.0)

    def as_rows(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.samples]

    def __enter__(self) -> MetricsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def stats_lines(log_text: str) -> list[str]:
    """The engine's periodic stats lines in its log, oldest first, from ``Avg prompt throughput`` on."""
    found = []
    for line in log_text.splitlines():
        if STATS_LINE.search(line):
            found.append(line[line.find("Avg prompt throughput"):] if "Avg prompt" in line else line)
    return found
