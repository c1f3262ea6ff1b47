"""Stage 12 exercises reject wrong answers, each with its own message, and accept right ones: the streaming client
(run against a paced stream on loopback whose timing is known), engine settings for a latency target, and the
diagnosis of vLLM's stats line."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage12
from kit.llm import client
from kit.machine.processes import port_is_free
from kit.serve.threaded import ThreadedServer


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


def _whole(url, model, prompt, n):
    began = time.perf_counter()
    httpx.post(f"{url}/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": n}, timeout=30)
    took = time.perf_counter() - began
    return took, took / n


def _by_n(url, model, prompt, n):
    t = client.stream_completion(url, model, prompt, n)
    return t.ttft, (t.arrivals[-1] - t.arrivals[0]) / n


def _with_first(url, model, prompt, n):
    t = client.stream_completion(url, model, prompt, n)
    return t.ttft, t.arrivals[-1] / n


def _milliseconds(url, model, prompt, n):
    ttft, tpot = stage12.reference_measure(url, model, prompt, n)
    return ttft * 1000, tpot * 1000


@pytest.mark.parametrize(("measure", "message"), [
    (3, "must be a function"),
    (lambda *a: 1 / 0, "raised ZeroDivisionError"),
    (lambda *a: {"ttft": 1}, "return two numbers"),
    (_whole, "waited for the end"),
    (_by_n, "divides by all the tokens"),
    (_with_first, "counts the wait for the first token"),
    (_milliseconds, "seconds, not milliseconds"),
])
def test_stream_rejects_wrong_clients(measure, message):
    _wrong("12.stream", measure, message)


def test_stream_accepts_the_reference_and_the_paced_stream_keeps_its_times():
    assert exercises.check("12.stream", stage12.reference_measure) is stage12.reference_measure
    with ThreadedServer(stage12.paced_app(), name="paced") as server:
        timing = client.stream_completion(server.url, stage12.PACED_MODEL, "x", 4)
        assert timing.text == " tok0 tok1 tok2 tok3" and timing.finish_reason == "length"
        assert timing.ttft > stage12.FIRST_S - 0.01 and abs(timing.tpot - stage12.GAP_S) < 0.03
        status, message = client.refusal(server.url, {"model": "other", "prompt": "x", "max_tokens": 2})
        assert status == 404 and "does not exist" in message
        port = server.port
    assert port_is_free(port), "ThreadedServer.stop() left the port taken"


def _top_throughput(rows, target, tokens, per_token, block):
    best = max(rows, key=lambda r: r["tokens_per_s"])["concurrency"]
    return {"max_num_seqs": best, "kv_cache_bytes": best * 2 * block * per_token}


def _no_blocks(rows, target, tokens, per_token, block):
    seqs = stage12.reference_size(rows, target, tokens, per_token, block)["max_num_seqs"]
    return {"max_num_seqs": seqs, "kv_cache_bytes": seqs * tokens * per_token}


def _one_request(rows, target, tokens, per_token, block):
    answer = stage12.reference_size(rows, target, tokens, per_token, block)
    return {**answer, "kv_cache_bytes": answer["kv_cache_bytes"] // answer["max_num_seqs"]}


@pytest.mark.parametrize(("size", "message"), [
    (lambda *a: (4, 2**20), "return a dict"),
    (_top_throughput, "give the most tokens/s, but their TPOT"),
    (lambda rows, *a: {"max_num_seqs": 1, "kv_cache_bytes": 0}, "largest concurrency whose TPOT meets"),
    (_no_blocks, "whole blocks"),
    (_one_request, re.escape("requests x 2 blocks x 128 tokens")),
])
def test_size_rejects_wrong_settings(size, message):
    _wrong("12.size", size, message)


def _usage_only(line, seats):
    return "kv-cache" if float(re.search(r"usage: ([\d.]+)%", line).group(1)) >= 90 else "ok"


def _waiting_only(line, seats):
    return "kv-cache" if int(re.search(r"Waiting: (\d+)", line).group(1)) else "ok"


def _first_numbers(line, seats):  # reads the throughput figures as if they were Running/Waiting
    running, waiting = (float(x) for x in re.findall(r"[\d.]+", line)[:2])
    return "ok" if waiting == 0 else ("max_num_seqs" if running >= seats else "kv-cache")


@pytest.mark.parametrize(("diagnose", "message"), [
    (lambda line, seats: "full", "return one of"),
    (_usage_only, "every one of the 16 seats taken"),
    (_waiting_only, "every one of the 16 seats taken"),
    (_first_numbers, "said"),
    (lambda line, seats: int(line), "raised ValueError"),
])
def test_kvfull_rejects_wrong_readings(diagnose, message):
    _wrong("12.kvfull", diagnose, message)


def test_kvfull_cases_are_vllms_format_and_the_reference_passes():
    from kit.llm import metrics

    lines = [line for line, _, _ in stage12.DIAGNOSE_CASES]
    assert metrics.stats_lines("\n".join(f"INFO 12-02 05:40:01 [loggers.py:285] {line}" for line in lines)) == lines
    assert exercises.check("12.kvfull", stage12.reference_diagnose) is stage12.reference_diagnose
    assert exercises.check("12.size", stage12.reference_size) is stage12.reference_size
