"""Serving a language model with vLLM on this CPU (``python -m kit bench llm``), measured in one run.

1. Continuous batching: N = 1, 2, 4, 8, 16 streams started together against one engine
   (``max_num_seqs=16``), each generating the same number of tokens (``ignore_eos``); tokens/s across
   the streams, median time to first token (TTFT) and per output token (TPOT). The goal of issue 15:
   16 streams give at least 4x the tokens/s of one (reported, never asserted).
2. KV cache vs admitted concurrency: the engine's own report (``Maximum concurrency for N tokens per
   request``) next to the arithmetic (2 x layers x KV heads x head size x bytes per value per token), and a
   third engine with a 1 MiB cache (512 tokens) given 16 streams: how many ran at once, how many waited,
   how many were preempted (``/metrics``).
3. Prefix caching: TTFT of a long prompt sent again, with prefix caching on and on a second engine
   with it off.
4. bf16 vs fp32: only where the CPU computes bf16 natively (``avx512_bf16``/``amx_bf16``); else said.

The peak PSS of the engine's whole process tree is sampled throughout.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.bench import machine
from kit.llm import client
from kit.llm.metrics import PREEMPTIONS, MetricsSampler, metric
from kit.llm.server import EngineOptions, cpu_supports_bf16, vllm_server
from kit.llm.sizing import admitted, engine_reported_concurrency, kv_bytes_per_token

CONCURRENCY = (1, 2, 4, 8, 16)
GOAL_RATIO = 4.0
#: The small engine's KV cache: 1 MiB holds 512 tokens of the tiny model (2 KiB each in fp32), two requests
#: of the full 256-token context, so the cache and not max_num_seqs (16) decides how many run at once.
SMALL_KV_BYTES = 2**20
PROMPTS = ("the ray head", "a training worker", "the model server", "the scheduler", "kueue admits",
           "the gateway routes", "a replica", "the kubelet restarts")


class PeakPSS:
    """Samples the summed PSS of a server's process and its descendants in a thread; ``peak`` in bytes.

    ``server()`` returns the server being watched (it may change, or not have a process yet)."""

    def __init__(self, server: Callable[[], Any], every_s: float = 0.25) -> None:
        self.server, self.every_s, self.peak = server, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        process = getattr(self.server(), "process", None)
        if process is None:
            return 0
        try:
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for proc in tree:
            try:
                total += proc.memory_full_info().pss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakPSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def small_cache_run(model_dir: str | Path, kv_cache_bytes: int, streams: int, tokens: int,
                    watched: list | None = None) -> dict[str, Any]:
    """``streams`` streams against an engine whose KV cache holds only a few sequences: what it admits.
    ``watched``: the list a :class:`PeakPSS` reads its server from (this engine is appended)."""
    import httpx

    options = EngineOptions(max_num_seqs=16, kv_cache_bytes=kv_cache_bytes)
    server = vllm_server(model_dir, options)
    if watched is not None:
        watched.append(server)
    try:
        server.start(timeout=300)
        with MetricsSampler(server.url) as peak:
            result = client.concurrent_streams(server.url, options.served_name,
                                               [PROMPTS[i % len(PROMPTS)] for i in range(streams)], tokens)
        text = httpx.get(server.url + "/metrics", timeout=10).text
        log = server.log_path.read_text(errors="replace") if server.log_path else ""
        return {"kv_cache_bytes": kv_cache_bytes, "streams": streams, "tokens_per_stream": tokens,
                "engine_reported_concurrency": engine_reported_concurrency(log),
                "peak_running": peak.peak("running"), "peak_waiting": peak.peak("waiting"),
                "preemptions": metric(text, PREEMPTIONS), "tokens_per_s": result.tokens_per_s,
                "ttft_median": result.ttft_median}
    finally:
        server.stop()


def _ttft_repeat(url: str, model: str, prompt: str, repeat: int) -> float:
    """Median TTFT of ``prompt`` sent ``repeat`` times after a first (cache-filling) send."""
    client.stream_completion(url, model, prompt, max_tokens=2)
    return statistics.median(client.stream_completion(url, model, prompt, max_tokens=2).ttft for _ in range(repeat))


def bench_llm(model_dir: str | Path, tokens: int = 32, repeat: int = 3) -> dict[str, Any]:
    """Every measurement above against engines started here; returns the figures and ratios."""
    import json

    metadata = json.loads((Path(model_dir) / "kit_llm.json").read_text())
    config = metadata["config"]
    options = EngineOptions(max_num_seqs=16, kv_cache_gib=1, prefix_caching=True)
    long_prompt = " ".join(PROMPTS * 6)  # ~170 tokens: prefill is most of its TTFT
    data: dict[str, Any] = {"machine": machine(), "model": {"parameters": metadata["parameters"], **config},
                            "tokens_per_stream": tokens}
    server = vllm_server(model_dir, options)
    watched = [server]
    with PeakPSS(lambda: watched[-1]) as pss:
        started = time.perf_counter()
        server.start(timeout=300)
        data["engine_start_s"] = round(time.perf_counter() - started, 1)
        try:
            rows = client.sweep(server.url, options.served_name, list(PROMPTS), CONCURRENCY, tokens, repeat,
                                progress=False, warm_up=True)
            data["concurrency"] = rows
            data["prefix_on_ttft_s"] = round(_ttft_repeat(server.url, options.served_name, long_prompt, repeat), 5)
            data["engine_reported_concurrency"] = engine_reported_concurrency(
                server.log_path.read_text(errors="replace") if server.log_path else "")
        finally:
            server.stop()
        off = vllm_server(model_dir, EngineOptions(max_num_seqs=16, kv_cache_gib=1, prefix_caching=False))
        watched.append(off)
        try:
            off.start(timeout=300)
            data["prefix_off_ttft_s"] = round(_ttft_repeat(off.url, options.served_name, long_prompt, repeat), 5)
        finally:
            off.stop()
        data["small_kv_cache"] = small_cache_run(model_dir, SMALL_KV_BYTES, 16, 64, watched)
    data["engine_peak_pss_gib"] = round(pss.peak / 2**30, 2)
    per_token = kv_bytes_per_token(config["layers"], config["hidden_size"] // config["head_dim"], config["head_dim"])
    data["kv_cache"] = {"bytes_per_token_fp32": per_token, "tokens_per_request": options.max_model_len,
                        "admitted_by_arithmetic": {f"{g} GiB": admitted(g, per_token, options.max_model_len)
                                                   for g in (1, 2, 4)}}
    data["bf16"] = ("measured" if cpu_supports_bf16() else
                    "not measured: this CPU has no avx512_bf16/amx_bf16, so bf16 would be emulated, not faster")
    one, sixteen = rows[0], rows[-1]
    data["ratios"] = {
        "tokens_per_s_16_vs_1": round(sixteen["tokens_per_s"] / one["tokens_per_s"], 2),
        "tpot_16_vs_1": round(sixteen["tpot_median"] / one["tpot_median"], 2),
        "prefix_ttft_off_vs_on": round(data["prefix_off_ttft_s"] / data["prefix_on_ttft_s"], 2),
    }
    data["goal"] = {"tokens_per_s_16_vs_1": GOAL_RATIO,
                    "met": data["ratios"]["tokens_per_s_16_vs_1"] >= GOAL_RATIO}
    return data


def format_llm(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [f"vLLM on {m['cpus']} CPU(s) ({m['cpu_model']}), model of {data['model']['parameters']:,} parameters, "
             f"{data['tokens_per_stream']} tokens per stream; engine ready in {data['engine_start_s']} s",
             "", f"{'streams':>8} {'tokens/s':>10} {'TTFT ms':>9} {'TPOT ms':>9}"]
    for row in data["concurrency"]:
        tpot = f"{row['tpot_median'] * 1000:9.1f}" if row["tpot_median"] is not None else f"{'-':>9}"
        lines.append(f"{row['concurrency']:>8} {row['tokens_per_s']:>10.1f} {row['ttft_median'] * 1000:>9.1f} {tpot}")
    ratios, kv, small = data["ratios"], data["kv_cache"], data["small_kv_cache"]
    lines += [
        "",
        f"tokens/s, 16 streams vs 1: {ratios['tokens_per_s_16_vs_1']}x (goal >= "
        f"{data['goal']['tokens_per_s_16_vs_1']}x: {'met' if data['goal']['met'] else 'not met'}); "
        f"TPOT 16 vs 1: {ratios['tpot_16_vs_1']}x",
        f"prefix caching: TTFT of a repeated long prompt {data['prefix_on_ttft_s'] * 1000:.1f} ms on, "
        f"{data['prefix_off_ttft_s'] * 1000:.1f} ms off ({ratios['prefix_ttft_off_vs_on']}x)",
        f"KV cache: {kv['bytes_per_token_fp32']} bytes per token (fp32); requests of {kv['tokens_per_request']} tokens "
        f"admitted: " + ", ".join(f"{k}: {v:,}" for k, v in kv["admitted_by_arithmetic"].items())
        + f"; the engine reports {data['engine_reported_concurrency']}x for 1 GiB",
        f"bf16: {data['bf16']}",
        f"small KV cache ({small['kv_cache_bytes'] // 1024} KiB, engine reports "
        f"{small['engine_reported_concurrency']}x): {small['streams']} streams of {small['tokens_per_stream']} "
        f"tokens, at most {small['peak_running']:.0f} running and {small['peak_waiting']:.0f} waiting at once, "
        f"{small['preemptions']} preemption(s), {small['tokens_per_s']} tokens/s",
        f"engine process tree peak PSS: {data['engine_peak_pss_gib']} GiB",
    ]
    return "\n".join(lines)


def plot_llm(data: dict[str, Any], path: str | Path) -> None:
    """Tokens/s and TTFT/TPOT against concurrent streams (:func:`kit.llm.plots.plot_sweep`), saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kit.llm.plots import plot_sweep

    m = data["machine"]
    fig = plot_sweep(data["concurrency"], f"vLLM {data['tokens_per_stream']} tokens per stream, {m['cpus']} CPU(s): "
                                          f"16 vs 1 stream {data['ratios']['tokens_per_s_16_vs_1']}x tokens/s")
    fig.savefig(path, dpi=100)
    plt.close(fig)

