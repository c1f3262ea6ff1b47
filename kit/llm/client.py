"""A streaming client for an OpenAI-compatible completions endpoint that measures what users feel.

- time to first token (TTFT): from sending the request to the first streamed token — queueing plus the
  prompt's prefill;
- time per output token (TPOT): the mean gap between the following tokens — one decode step of the
  running batch each;
- tokens/s across concurrent streams: what continuous batching raises.

The stream is server-sent events: ``data: {json}`` lines, ending with ``data: [DONE]``. Plain ``httpx``
(no ``openai`` import), so the same client reads vLLM, a Ray Serve proxy or the in-process generator's app.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class StreamTiming:
    """One streamed completion: when its tokens arrived, relative to sending the request (seconds)."""

    arrivals: tuple[float, ...]
    text: str
    finish_reason: str | None
    #: the server's count of generated tokens (``usage``), when it sent one: special tokens such as
    #: ``</s>`` count there but arrive with no text
    completion_tokens: int | None = None

    @property
    def tokens(self) -> int:
        return self.completion_tokens or len(self.arrivals)

    @property
    def ttft(self) -> float:
        return self.arrivals[0]

    @property
    def tpot(self) -> float | None:
        """Mean seconds between output tokens after the first; None for a single token."""
        if len(self.arrivals) < 2 or self.tokens < 2:
            return None
        return (self.arrivals[-1] - self.arrivals[0]) / (self.tokens - 1)


def timing_from_events(events: Iterable[tuple[float, str]]) -> StreamTiming:
    """A :class:`StreamTiming` from ``(seconds since the request, SSE line)`` pairs.

    Each ``data:`` event with a non-empty choice text counts as one token (vLLM sends one event per
    decoded token); ``data: [DONE]`` ends the stream; an ``error`` event is raised as a ValueError.
    """
    arrivals: list[float] = []
    parts: list[str] = []
    finish = None
    usage = None
    for seconds, line in events:
        if not line.startswith("data:"):
            continue
        payload = line[len("data:"):].strip()
        if payload == "[DONE]":
            break
        event = json.loads(payload)
        if "error" in event:
            raise ValueError(f"the stream ended with an error: {event['error']}")
        usage = (event.get("usage") or {}).get("completion_tokens") or usage
        for choice in event.get("choices", []):
            text = choice.get("text") or (choice.get("delta") or {}).get("content") or ""
            if text:
                arrivals.append(seconds)
                parts.append(text)
            finish = choice.get("finish_reason") or finish
    if not arrivals:
        raise ValueError("the stream carried no tokens")
    return StreamTiming(tuple(arrivals), "".join(parts), finish, usage)


def completion_body(model: str, prompt: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    # ignore_eos: every stream produces exactly max_tokens, so runs compare like with like
    return {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}, **extra}


def stream_completion(base_url: str, model: str, prompt: str, max_tokens: int = 32, **extra: Any) -> StreamTiming:
    """One streamed completion from ``{base_url}/v1/completions``, timed."""
    events: list[tuple[float, str]] = []
    body = completion_body(model, prompt, max_tokens, **extra)
    with httpx.Client(timeout=120.0) as http:  # made before the clock starts: its set-up is not the server's time
        started = time.perf_counter()
        with http.stream("POST", f"{base_url}/v1/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                raise ValueError(f"HTTP {response.status_code}: {response.text[:300]}")
            for line in response.iter_lines():
                events.append((time.perf_counter() - started, line))
    return timing_from_events(events)


async def _one(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> StreamTiming:
    started = time.perf_counter()
    events: list[tuple[float, str]] = []
    async with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            raise ValueError(f"HTTP {response.status_code}: {response.text[:300]}")
        async for line in response.aiter_lines():
            events.append((time.perf_counter() - started, line))
    return timing_from_events(events)


@dataclass(frozen=True)
class LoadResult:
    """``concurrency`` streams started together; medians over the streams and the aggregate rate."""

    concurrency: int
    streams: int
    tokens: int
    seconds: float
    tokens_per_s: float
    ttft_median: float
    tpot_median: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(concurrency: int, timings: list[StreamTiming], seconds: float) -> LoadResult:
    tokens = sum(t.tokens for t in timings)
    tpots = [t.tpot for t in timings if t.tpot is not None]
    return LoadResult(concurrency, len(timings), tokens, round(seconds, 4), round(tokens / seconds, 2),
                      round(statistics.median(t.ttft for t in timings), 5),
                      round(statistics.median(tpots), 5) if tpots else None)


async def _load(base_url: str, bodies: list[dict[str, Any]]) -> tuple[list[StreamTiming], float]:
    limits = httpx.Limits(max_connections=len(bodies) + 1)
    async with httpx.AsyncClient(timeout=300.0, limits=limits) as client:
        started = time.perf_counter()
        timings = await asyncio.gather(*(_one(client, f"{base_url}/v1/completions", body) for body in bodies))
        return list(timings), time.perf_counter() - started


def concurrent_streams(base_url: str, model: str, prompts: list[str], max_tokens: int = 32,
                       **extra: Any) -> LoadResult:
    """One stream per prompt, all started at once; returns the aggregate tokens/s and median TTFT/TPOT."""
    bodies = [completion_body(model, prompt, max_tokens, **extra) for prompt in prompts]
    from kit.serve.loadgen import run_sync

    timings, seconds = run_sync(_load(base_url, bodies))  # a thread of its own where a loop runs (Jupyter)
    return summarise(len(prompts), timings, seconds)


def sweep(base_url: str, model: str, prompts: list[str], levels: tuple[int, ...] = (1, 2, 4, 8, 16),
          max_tokens: int = 32, repeat: int = 1, progress: bool = True, warm_up: bool = False
          ) -> list[dict[str, Any]]:
    """:func:`concurrent_streams` at each number of streams in ``levels`` (prompts reused in turn); with
    ``repeat`` > 1 the median run by tokens/s; with ``warm_up`` one unmeasured run first at each level (the
    engine's first batch of a new size can pay for compiling it). One row (:meth:`LoadResult.to_dict`) per level."""
    import os

    from kit.serve.loadgen import PROGRESS_ENV

    bar = None
    if progress and os.environ.get(PROGRESS_ENV) != "0":
        from tqdm.auto import tqdm

        bar = tqdm(total=len(levels) * repeat, desc="streams", unit="run", leave=False)
    rows = []
    for n in levels:
        runs = []
        if warm_up:
            concurrent_streams(base_url, model, [prompts[i % len(prompts)] for i in range(n)], max_tokens)
        for _ in range(repeat):
            runs.append(concurrent_streams(base_url, model, [prompts[i % len(prompts)] for i in range(n)], max_tokens))
            if bar is not None:
                bar.update(1)
        rows.append(sorted(runs, key=lambda r: r.tokens_per_s)[len(runs) // 2].to_dict())
    if bar is not None:
        bar.close()
    return rows


def refusal(base_url: str, body: dict[str, Any] | bytes, path: str = "/v1/completions") -> tuple[int, str]:
    """Send a request the server should refuse; return its HTTP status and the error message it gave."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = httpx.post(base_url + path, content=content, headers={"content-type": "application/json"}, timeout=30)
    try:
        data = answer.json()
        error = (data.get("error") or data) if isinstance(data, dict) else data  # {"error": {...}} or flat
        message = str(error.get("message") or error.get("detail") or error) if isinstance(error, dict) else str(error)
    except ValueError:
        message = answer.text
    return answer.status_code, " ".join(message.split())[:160]
