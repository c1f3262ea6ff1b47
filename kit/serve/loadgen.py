"""An async HTTP load generator (httpx): closed- and open-loop, with percentiles and a plot.

*Closed loop*: ``concurrency`` virtual users, each sends its next request when the
previous one is answered (what a benchmark of capacity needs). *Open loop*: requests
start at a fixed ``rate`` whatever the answers do (what real traffic does: a slow
server faces a growing backlog, and latency shows it). Both stop after ``duration_s``
or ``requests``. Every response is counted by status; transport errors by type.
:func:`run_calls` drives an async callable (a Ray Serve ``DeploymentHandle``: no HTTP) the same way.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np

T = TypeVar("T")


@dataclass
class LoadResult:
    """What one load run measured. Latencies are of successful (2xx) requests, in seconds."""

    label: str
    mode: str
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list, repr=False)
    statuses: Counter = field(default_factory=Counter)
    #: (seconds since start, ok) per finished request: the drill plots and counts from this
    timeline: list[tuple[float, bool]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if isinstance(s, int) and 200 <= s < 300)

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.ok

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def summary(self) -> dict:
        return {"label": self.label, "mode": self.mode, "concurrency": self.concurrency,
                "requests": sum(self.statuses.values()), "ok": self.ok, "errors": self.errors,
                "throughput_rps": round(self.throughput, 1), "p50_ms": round(self.p50 * 1e3, 2),
                "p95_ms": round(self.p95 * 1e3, 2), "p99_ms": round(self.p99 * 1e3, 2),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)}}

    def __str__(self) -> str:
        s = self.summary()
        return (f"{self.label}: {s['throughput_rps']:.0f} req/s, p50 {s['p50_ms']:.1f} ms, "
                f"p95 {s['p95_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, {s['errors']} errors of {s['requests']}")


async def _send(client: httpx.AsyncClient, url: str, body: dict, result: LoadResult, began: float) -> None:
    start = time.perf_counter()
    try:
        response = await client.post(url, json=body)
        status: int | str = response.status_code
    except httpx.HTTPError as error:
        status = type(error).__name__
    _record(result, status, start, began)


def _record(result: LoadResult, status: int | str, start: float, began: float) -> None:
    end = time.perf_counter()
    result.statuses[status] += 1
    ok = isinstance(status, int) and 200 <= status < 300
    if ok:
        result.latencies.append(end - start)
    result.timeline.append((end - began, ok))


async def run_load_async(
    url: str,
    body: dict,
    *,
    concurrency: int = 8,
    duration_s: float | None = 5.0,
    requests: int | None = None,
    mode: str = "closed",
    rate: float | None = None,
    timeout_s: float = 30.0,
    label: str = "",
    progress: bool = False,
    on_tick: Callable[[float], None] | None = None,
) -> LoadResult:
    """Drive load at ``url``; stop after ``duration_s`` seconds or ``requests`` requests (first reached)."""
    if mode not in ("closed", "open"):
        raise ValueError(f"mode must be 'closed' or 'open', got {mode!r}")
    if mode == "open" and not rate:
        raise ValueError("open-loop load needs a rate (requests per second)")
    if duration_s is None and requests is None:
        raise ValueError("give duration_s or requests (or both)")
    result = LoadResult(label or url, mode, concurrency, 0.0)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    bar = _progress_bar(progress, duration_s, requests, label)
    began = time.perf_counter()
    deadline = began + duration_s if duration_s is not None else float("inf")
    issued = 0

    def more() -> bool:
        return time.perf_counter() < deadline and (requests is None or issued < requests)

    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as client:
        if mode == "closed":
            async def user() -> None:
                nonlocal issued
                while more():
                    issued += 1
                    await _send(client, url, body, result, began)
                    _tick(bar, on_tick, began, duration_s)

            await asyncio.gather(*(user() for _ in range(concurrency)))
        else:
            pending: set[asyncio.Task[None]] = set()
            assert rate is not None  # checked above: open-loop load needs a rate
            gap = 1.0 / rate
            while more():
                issued += 1
                task = asyncio.create_task(_send(client, url, body, result, began))
                pending.add(task)
                task.add_done_callback(pending.discard)
                _tick(bar, on_tick, began, duration_s)
                await asyncio.sleep(max(0.0, began + issued * gap - time.perf_counter()))
            if pending:
                await asyncio.gather(*pending)
    result.seconds = time.perf_counter() - began
    if bar is not None:
        bar.set_postfix_str(f"{result.throughput:.0f} req/s, {result.errors} errors")
        bar.close()
    return result


#: ``0`` turns progress bars off: set when a notebook is recorded or tested, where a widget's saved view
#: would show it frozen at 0 % (``kit.course.notebooks.record``, tests/harness.py).
PROGRESS_ENV = "KIT_PROGRESS"


def _progress_bar(progress: bool, duration_s: float | None, requests: int | None, label: str):
    if not progress or os.environ.get(PROGRESS_ENV) == "0":
        return None
    from tqdm.auto import tqdm

    if duration_s is None:
        return tqdm(total=requests, desc=label or "load", unit="req", leave=False)
    return tqdm(total=round(duration_s, 1), desc=label or "load", unit="s", leave=False,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s{postfix}")


def _tick(bar, on_tick, began: float, duration_s: float | None) -> None:
    elapsed = time.perf_counter() - began
    if on_tick is not None:
        on_tick(elapsed)
    if bar is None:
        return
    if bar.unit == "req":
        bar.update(1)
    elif duration_s is not None and elapsed - bar.n >= 0.1:
        bar.update(min(elapsed, duration_s) - bar.n)


async def run_calls_async(call: Callable[[], Awaitable[Any]], *, concurrency: int = 8, duration_s: float = 5.0,
                          label: str = "calls") -> LoadResult:
    """Closed-loop load on an async callable instead of a URL (e.g. a Ray Serve ``DeploymentHandle``, no HTTP).

    A call that returns counts as status 200; one that raises counts under its exception's type name.
    """
    result = LoadResult(label, "closed", concurrency, 0.0)
    began = time.perf_counter()
    deadline = began + duration_s

    async def user() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                await call()
                status: int | str = 200
            except Exception as error:  # counted, like a transport error of the HTTP path
                status = type(error).__name__
            _record(result, status, start, began)

    await asyncio.gather(*(user() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - began
    return result


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also inside Jupyter (whose loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as error:  # re-raised in the caller's thread
            box["error"] = error

    thread = threading.Thread(target=target, name="kit-loadgen")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_load(url: str, body: dict, **options) -> LoadResult:
    """Synchronous :func:`run_load_async` (works in scripts and notebooks alike)."""
    return run_sync(run_load_async(url, body, **options))


def run_calls(call: Callable[[], Awaitable[Any]], **options) -> LoadResult:
    """Synchronous :func:`run_calls_async`."""
    return run_sync(run_calls_async(call, **options))


def sweep(url: str, body: dict, levels: list[int], duration_s: float = 3.0, label: str = "",
          progress: bool = True, **options) -> list[LoadResult]:
    """Closed-loop runs at each concurrency level in ``levels``."""
    return [run_load(url, body, concurrency=c, duration_s=duration_s, label=f"{label} c={c}".strip(),
                     progress=progress, **options) for c in levels]


def table(results: list[LoadResult]) -> str:
    """A fixed-width table of results (one row each)."""
    header = f"{'run':<32} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(f"{r.label[:32]:<32} {r.concurrency:>4} {r.throughput:>8.0f} {r.p50 * 1e3:>8.1f} "
                    f"{r.p95 * 1e3:>8.1f} {r.p99 * 1e3:>8.1f} {r.errors:>7}")
    return "\n".join(rows)


def plot_latency_vs_concurrency(series: dict[str, list[LoadResult]], ax=None):
    """p50 (solid) and p99 (dashed) latency against concurrency, one colour per series."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, results in series.items():
        levels = [r.concurrency for r in results]
        line, = ax.plot(levels, [r.p50 * 1e3 for r in results], marker="o", label=f"{name} p50")
        ax.plot(levels, [r.p99 * 1e3 for r in results], linestyle="--", color=line.get_color(),
                label=f"{name} p99")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("latency (ms)")
    ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("latency vs concurrency")
    return ax
