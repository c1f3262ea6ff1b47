"""Exercises of stage 12 (serving a language model): a streaming client that measures TTFT and TPOT, engine
settings for a latency target, and reading the engine's "KV cache full" stats line.

12.stream runs the learner's client against a *paced* stream on loopback — a real HTTP server sending OpenAI-style
server-sent events at known times (first token after :data:`FIRST_S`, then one every :data:`GAP_S`) — so the
check knows the right figures; the notebook then points the same client at the real server. 12.size and 12.kvfull
run the learner's function on tables and log lines in vLLM's own formats, each case built to expose one mistake.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from typing import Any

from kit.course.exercises import NotYetRight, exercise
from kit.llm import client, sizing
from kit.serve.threaded import ThreadedServer

PACED_MODEL = "paced-stream"
FIRST_S, GAP_S, PACED_TOKENS = 0.3, 0.1, 5
#: How far a measured TPOT may be from the paced stream's gap before the check calls it wrong (seconds); a TTFT may
#: be late by up to TTFT_LATE (a loaded machine, a client made inside the timing), never early.
TPOT_TOLERANCE, TTFT_LATE = 0.015, 0.3
#: A KV cache this full (vLLM's ``KV cache usage``) with requests waiting and seats free is "the cache is full".
KV_FULL = 0.9
DIAGNOSES = ("kv-cache", "max_num_seqs", "ok")


def paced_app(first_s: float = FIRST_S, gap_s: float = GAP_S):
    """An OpenAI-style ``/v1/completions`` whose tokens leave at known times: ``first_s`` after the request,
    then one every ``gap_s``; a request without ``stream: true`` gets the whole answer at the end."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def chunk(index: int, finish: str | None) -> dict[str, Any]:
        return {"id": "cmpl-paced", "object": "text_completion", "created": int(time.time()), "model": PACED_MODEL,
                "choices": [{"index": 0, "text": f" tok{index}" if finish is None else "", "logprobs": None,
                             "finish_reason": finish}]}

    async def completions(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return JSONResponse({"error": {"message": "the body is not a JSON object", "code": 400}}, 400)
        if body.get("model") != PACED_MODEL:
            return JSONResponse({"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                           "type": "NotFoundError", "code": 404}}, 404)
        tokens = body.get("max_tokens") or 16
        if not isinstance(tokens, int) or not 1 <= tokens <= 64:
            return JSONResponse({"error": {"message": "max_tokens must be an integer from 1 to 64", "code": 400}}, 400)

        async def events():
            for index in range(tokens):
                await asyncio.sleep(first_s if index == 0 else gap_s)
                yield f"data: {json.dumps(chunk(index, None))}\n\n"
            yield f"data: {json.dumps(chunk(tokens, 'length'))}\n\ndata: [DONE]\n\n"

        if body.get("stream") is True:
            return StreamingResponse(events(), media_type="text/event-stream")
        await asyncio.sleep(first_s + gap_s * (tokens - 1))
        text = "".join(f" tok{i}" for i in range(tokens))
        return JSONResponse({**chunk(0, "length"), "choices": [{"index": 0, "text": text, "logprobs": None,
                                                                "finish_reason": "length"}]})

    return Starlette(routes=[Route("/v1/completions", completions, methods=["POST"])])


def reference_measure(base_url: str, model: str, prompt: str, max_tokens: int) -> tuple[float, float | None]:
    """Stream one completion; TTFT = first token's arrival, TPOT = the later tokens' mean gap."""
    timing = client.stream_completion(base_url, model, prompt, max_tokens)
    return timing.ttft, timing.tpot


def _reference_measure():
    return reference_measure


@exercise(
    "12.stream",
    "A streaming client that measures TTFT and TPOT",
    "POST {base_url}/v1/completions with stream=True and read the lines as they arrive "
    "(httpx.stream(...).iter_lines(), or the openai client's stream); note time.perf_counter() before sending and "
    "at each 'data:' line that carries text (not [DONE]). TTFT = first arrival - start; TPOT = (last - first) / "
    "(tokens - 1): n tokens have n - 1 gaps.",
    reference=_reference_measure,
)
def check_measure(measure) -> None:
    if not callable(measure):
        raise NotYetRight(f"measure_stream must be a function (base_url, model, prompt, max_tokens), not "
                          f"{type(measure).__name__}")
    with ThreadedServer(paced_app(), name="paced stream") as server:
        client.stream_completion(server.url, PACED_MODEL, "warm-up", 1)  # the server's first request is slower
        try:
            _judge_measure(measure, server.url)
        except NotYetRight:  # a loaded machine can delay one stream: judge a second run before saying it is wrong
            _judge_measure(measure, server.url)


def _judge_measure(measure, url: str) -> None:
    total = FIRST_S + GAP_S * (PACED_TOKENS - 1)
    try:
        answer = measure(url, PACED_MODEL, "the ray head", PACED_TOKENS)
    except Exception as error:  # the learner's code: say what it raised
        raise NotYetRight(f"measure_stream(...) against a test stream raised {type(error).__name__}: "
                          f"{str(error)[:300]}") from None
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in answer)):
        raise NotYetRight(f"measure_stream returned {answer!r}; return two numbers of seconds: (ttft, tpot)")
    ttft, tpot = (float(x) for x in answer)
    if ttft > 100 or tpot > 100:
        raise NotYetRight(f"measure_stream returned ({ttft:g}, {tpot:g}): seconds, not milliseconds, please")
    if ttft >= total - 0.05:
        raise NotYetRight(f"TTFT {ttft:.3f} s is the whole response's time ({total:.2f} s): the client waited for "
                          "the end. Stream it (stream=True) and time the first 'data:' line that carries text")
    if not FIRST_S - 0.02 <= ttft <= FIRST_S + TTFT_LATE:
        raise NotYetRight(f"TTFT {ttft:.3f} s, but this test stream sent its first token {FIRST_S} s after the "
                          "request: start the clock just before sending, stop it at the first token")
    wrong = {
        "divides by all the tokens: n tokens have n - 1 gaps between them": GAP_S * (PACED_TOKENS - 1) / PACED_TOKENS,
        "counts the wait for the first token: TPOT is the time between tokens after the first":
            total / PACED_TOKENS,
        "uses the whole time after the first token over n - 1, counting the first wait": total / (PACED_TOKENS - 1),
    }
    if abs(tpot - GAP_S) > TPOT_TOLERANCE:
        for mistake, value in wrong.items():
            if abs(tpot - value) <= TPOT_TOLERANCE / 2:
                raise NotYetRight(f"TPOT {tpot * 1000:.0f} ms, but the tokens came {GAP_S * 1000:.0f} ms apart: "
                                  f"your client {mistake}")
        raise NotYetRight(f"TPOT {tpot * 1000:.0f} ms, but this test stream sent a token every {GAP_S * 1000:.0f} ms "
                          "after the first: TPOT = (last arrival - first arrival) / (tokens - 1)")


def reference_size(rows: list[dict[str, Any]], tpot_target_s: float, tokens_per_request: int,
                   bytes_per_token: int, block_size: int) -> dict[str, int]:
    """The most concurrent streams whose median TPOT meets the target, and a KV cache that holds that many
    requests in whole blocks."""
    meeting = [r["concurrency"] for r in rows if r.get("tpot_median") is not None
               and r["tpot_median"] <= tpot_target_s]
    seqs = max(meeting, default=1)
    blocks = sizing.blocks_for(tokens_per_request, block_size)
    return {"max_num_seqs": seqs, "kv_cache_bytes": seqs * blocks * block_size * bytes_per_token}


def _reference_size():
    return reference_size


def _rows(tpots_ms: dict[int, float], rates: dict[int, float]) -> list[dict[str, Any]]:
    return [{"concurrency": n, "tpot_median": tpots_ms[n] / 1000, "tokens_per_s": rates[n], "ttft_median": 0.02}
            for n in sorted(tpots_ms)]


#: (rows, TPOT target s, tokens per request, bytes per token, block size); each exposes one mistake.
SIZE_CASES = (
    # the most tokens/s (8 streams) misses the target: the answer is the latency's, not the throughput's
    (_rows({1: 4, 2: 5, 4: 7, 8: 12, 16: 30}, {1: 230, 2: 400, 4: 560, 8: 650, 16: 530}), 0.010, 200, 2048, 128),
    # 200 tokens take two blocks of 128, not 200/128 of one
    (_rows({1: 4, 2: 5, 4: 6, 8: 9, 16: 14}, {1: 230, 2: 410, 4: 700, 8: 880, 16: 1100}), 0.010, 200, 2048, 128),
    # every row meets a loose target; a larger model's tokens (bytes per token) and another block size
    (_rows({1: 20, 2: 22, 4: 25, 8: 31, 16: 45}, {1: 50, 2: 90, 4: 160, 8: 260, 16: 350}), 0.050, 256, 8192, 16),
)


@exercise(
    "12.size",
    "Engine settings for a latency target",
    "max_num_seqs: the largest 'concurrency' whose 'tpot_median' is at most the target (not the row with the most "
    "tokens/s). KV cache: max_num_seqs requests, each holding math.ceil(tokens_per_request / block_size) whole "
    "blocks of block_size tokens, each token bytes_per_token bytes.",
    reference=_reference_size,
)
def check_size(size_engine) -> None:
    if not callable(size_engine):
        raise NotYetRight(f"size_engine must be a function, not {type(size_engine).__name__}")
    for rows, target, tokens, per_token, block in SIZE_CASES:
        case = f"(target {target * 1000:.0f} ms, {tokens} tokens per request, {per_token} bytes per token, blocks " \
               f"of {block})"
        try:
            answer = size_engine([dict(r) for r in rows], target, tokens, per_token, block)
        except Exception as error:
            raise NotYetRight(f"size_engine raised {type(error).__name__}: {error} {case}") from None
        want = reference_size(rows, target, tokens, per_token, block)
        if not isinstance(answer, dict) or set(answer) != set(want):
            raise NotYetRight(f"size_engine returned {answer!r}; return a dict with the keys max_num_seqs and "
                              "kv_cache_bytes")
        seqs = answer["max_num_seqs"]
        if seqs != want["max_num_seqs"]:
            best = max(rows, key=lambda r: r["tokens_per_s"])["concurrency"]
            row = next((r for r in rows if r["concurrency"] == seqs), None)
            why = (f"{seqs} streams give the most tokens/s, but their TPOT {row['tpot_median'] * 1000:.0f} ms misses "
                   f"the target" if seqs == best and row else
                   f"the largest concurrency whose TPOT meets the target is {want['max_num_seqs']}")
            raise NotYetRight(f"max_num_seqs={seqs} {case}: {why}")
        kv = answer["kv_cache_bytes"]
        if kv != want["kv_cache_bytes"]:
            unblocked = seqs * tokens * per_token
            why = ("the cache is allocated in whole blocks: round each request up to "
                   f"{math.ceil(tokens / block)} blocks of {block} tokens" if kv == unblocked else
                   f"{seqs} requests x {math.ceil(tokens / block)} blocks x {block} tokens x {per_token} bytes "
                   f"= {want['kv_cache_bytes']:,} bytes")
            raise NotYetRight(f"kv_cache_bytes={kv!r} {case}: {why}")


def stats_line(running: int, waiting: int, usage: float, preemptions: int = 0) -> str:
    """A stats line as vLLM 0.32's ``LoggingStatLogger.log`` writes it (vllm/v1/metrics/loggers.py)."""
    extra = f"Preemptions: {preemptions}, " if preemptions else ""
    return (f"Avg prompt throughput: 12.4 tokens/s, Avg generation throughput: 151.0 tokens/s, Running: {running} "
            f"reqs, Waiting: {waiting} reqs, {extra}CPU KV cache usage: {usage * 100:.1f}%, Prefix cache hit "
            "rate: 0.0%")


def reference_diagnose(line: str, max_num_seqs: int) -> str:
    """kv-cache when requests wait with seats free and the cache (nearly) full; max_num_seqs when every seat is
    taken; ok when nothing waits (or only arrivals between two steps)."""
    running = int(re.search(r"Running: (\d+) reqs", line).group(1))  # type: ignore[union-attr]
    waiting = int(re.search(r"Waiting: (\d+) reqs", line).group(1))  # type: ignore[union-attr]
    usage = float(re.search(r"KV cache usage: ([\d.]+)%", line).group(1)) / 100  # type: ignore[union-attr]
    if waiting == 0:
        return "ok"
    if running >= max_num_seqs:
        return "max_num_seqs"
    return "kv-cache" if usage >= KV_FULL else "ok"


def _reference_diagnose():
    return reference_diagnose


#: (line, max_num_seqs, why this case is here)
DIAGNOSE_CASES = (
    (stats_line(3, 13, 0.992), 16, "3 running, 13 waiting with 13 seats free, the cache 99 % used"),
    (stats_line(16, 8, 0.125), 16, "every one of the 16 seats taken while the cache is 12 % used"),
    (stats_line(4, 0, 0.40), 16, "nothing waiting"),
    (stats_line(5, 11, 1.0, preemptions=2), 16, "a line with a Preemptions field too"),
    (stats_line(2, 1, 0.15), 16, "one request that arrived between two engine steps, with room for it"),
    (stats_line(8, 4, 0.97), 8, "all 8 seats taken, and the cache full too: raising the cache alone would not help"),
)


@exercise(
    "12.kvfull",
    "Read the engine's KV-cache-full event",
    "Pull Running, Waiting and the KV cache usage out of the line (re.search(r'Running: (\\d+) reqs', line) ...). "
    f"Nothing waiting: 'ok'. Every seat taken (running >= max_num_seqs): 'max_num_seqs'. Waiting with seats free "
    f"and the cache at least {KV_FULL:.0%} used: 'kv-cache'; with room in the cache it is only a request arriving "
    "between two steps: 'ok'.",
    reference=_reference_diagnose,
)
def check_diagnose(diagnose) -> None:
    if not callable(diagnose):
        raise NotYetRight(f"diagnose must be a function (line, max_num_seqs), not {type(diagnose).__name__}")
    for line, seats, why in DIAGNOSE_CASES:
        try:
            answer = diagnose(line, seats)
        except Exception as error:
            raise NotYetRight(f"diagnose raised {type(error).__name__}: {error} on the line:\n  {line}") from None
        want = reference_diagnose(line, seats)
        if answer not in DIAGNOSES:
            raise NotYetRight(f"diagnose returned {answer!r}; return one of {', '.join(map(repr, DIAGNOSES))}")
        if answer != want:
            raise NotYetRight(f"diagnose said {answer!r} for max_num_seqs={seats} and the line:\n  {line}\n"
                              f"({why}): that is {want!r}")
