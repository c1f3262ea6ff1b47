"""Small Ray programs that stage 02 measures and draws: timelines, concurrency, retries.

They are real Ray tasks and actors; the kit keeps them here so the notebook shows
the idea in a few lines and the exercise checks can run a learner's answer.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import ray

#: How long a demo waits for its tasks: generous for a busy 2-core machine, finite on a cluster.
GET_TIMEOUT_S = 120.0


def busy(seconds: float) -> None:
    """Keep one CPU busy for ``seconds`` (pure-Python work, so the GIL is really held)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


@ray.remote
def timed_work(seconds: float) -> dict:
    """A task that burns CPU and says which node and worker process ran it, and when."""
    start = time.time()
    busy(seconds)
    return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "start": start, "end": time.time()}


@ray.remote(num_cpus=0, max_concurrency=8)  # type: ignore[call-overload]  # ray's stubs omit actor options
class Sleeper:
    """An actor that runs its calls side by side in threads: no worker start-up skews which call ends first."""

    def sleep(self, index: int, seconds: float) -> dict:
        """Sleep ``seconds`` (no CPU used), then say which call this was and when it finished."""
        time.sleep(seconds)
        return {"index": index, "end": time.time()}


@dataclass(frozen=True)
class Timeline:
    records: list[dict]
    serial_seconds: float
    parallel_seconds: float

    @property
    def speedup(self) -> float:
        return self.serial_seconds / self.parallel_seconds

    @property
    def workers(self) -> int:
        return len({r["pid"] for r in self.records})


def run_timeline(n_tasks: int = 8, seconds: float = 0.25) -> Timeline:
    """Run ``n_tasks`` CPU-bound tasks one after another in this process, then in parallel on Ray."""
    began = time.perf_counter()
    for _ in range(n_tasks):
        busy(seconds)
    serial = time.perf_counter() - began
    ray.get(timed_work.remote(0.0), timeout=GET_TIMEOUT_S)  # warm a worker so start-up is not counted as work
    began = time.perf_counter()
    records = ray.get([timed_work.remote(seconds) for _ in range(n_tasks)], timeout=GET_TIMEOUT_S)
    return Timeline(records, serial, time.perf_counter() - began)


def explain_speedup(timeline: Timeline, cpus: float) -> str:
    """One sentence on the measured speed-up, its wording chosen from the outcome (never a fixed expectation)."""
    ideal = max(1, min(len(timeline.records), int(cpus)))
    measured = (f"{len(timeline.records)} tasks on {cpus:g} CPU(s) and {timeline.workers} worker process(es): "
                f"serial {timeline.serial_seconds:.2f} s, Ray {timeline.parallel_seconds:.2f} s, "
                f"×{timeline.speedup:.2f} (the ceiling here is ×{ideal}).")
    if ideal == 1:
        why = ("With one CPU Ray can only run one task at a time: no speed-up is possible, only the cost of "
               "sending tasks.")
    elif timeline.speedup >= 0.85 * ideal:
        why = "Close to the ceiling: one task per CPU, and the work is long enough that sending it costs little."
    elif timeline.speedup > 1.1:
        why = ("Below the ceiling: the CPUs are shared (this kernel, Ray's own processes, other notebooks or "
               "a CI job on the same machine), so a worker often waits for a core; each task also pays a fixed "
               "cost to be scheduled and to return its result.")
    else:
        why = ("No real speed-up: the CPUs were busy with other work while this ran (check `top`), so the Ray "
               "workers queued behind it. Re-run the cell on a quieter machine.")
    return f"{measured} {why}"


def max_concurrency(records: list[dict]) -> int:
    """The largest number of tasks whose [start, end) intervals overlap."""
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def max_concurrency_per_node(records: list[dict]) -> int:
    """The largest number of tasks that overlapped on any one node."""
    nodes = {r.get("node") for r in records}
    return max((max_concurrency([r for r in records if r.get("node") == node]) for node in nodes), default=0)


def run_with_options(options: dict, n_tasks: int = 4, seconds: float = 0.3) -> list[dict]:
    """Run ``n_tasks`` timed tasks with ``.options(**options)``."""
    return ray.get([timed_work.options(**options).remote(seconds) for _ in range(n_tasks)], timeout=GET_TIMEOUT_S)


def plot_timeline(timeline: Timeline, title: str = "Ray tasks on local workers"):
    """A Gantt chart: one row per worker process, one bar per task."""
    import matplotlib.pyplot as plt

    t0 = min(r["start"] for r in timeline.records)
    pids = sorted({r["pid"] for r in timeline.records})
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(pids) + 1.4))
    for row, pid in enumerate(pids):
        bars = [(r["start"] - t0, r["end"] - r["start"]) for r in timeline.records if r["pid"] == pid]
        ax.broken_barh(bars, (row - 0.35, 0.7), edgecolor="white")
    ax.set_yticks(range(len(pids)), [f"worker pid {p}" for p in pids])  # (a pid may repeat on two nodes)
    ax.set_xlabel("seconds since the first task started")
    ax.set_title(
        f"{title}: serial {timeline.serial_seconds:.2f} s → Ray {timeline.parallel_seconds:.2f} s "
        f"(×{timeline.speedup:.1f})"
    )
    fig.tight_layout()
    return fig


@ray.remote
class AttemptCounter:
    """Counts attempts across retries: an actor's state outlives the tasks that call it."""

    def __init__(self) -> None:
        self.attempts = 0

    def bump(self) -> int:
        self.attempts += 1
        return self.attempts

    def count(self) -> int:
        return self.attempts


@ray.remote(max_retries=0)
def flaky_divide(counter, a: float, b: float, failures: int = 2) -> float:
    """Fails with a (simulated) network error on its first ``failures`` attempts, then divides."""
    attempt = ray.get(counter.bump.remote(), timeout=GET_TIMEOUT_S)
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt}: simulated network blip")
    return a / b


def run_flaky(options: dict, failures: int = 2) -> tuple[float, int]:
    """Run :func:`flaky_divide` with ``options``; return (result, attempts it took)."""
    counter = AttemptCounter.remote()  # type: ignore[attr-defined]  # @ray.remote adds .remote
    try:
        result = ray.get(flaky_divide.options(**options).remote(counter, 1.0, 4.0, failures), timeout=GET_TIMEOUT_S)
        return result, ray.get(counter.count.remote(), timeout=GET_TIMEOUT_S)
    finally:
        ray.kill(counter)
