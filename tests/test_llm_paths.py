"""Stage 12's two paths: which one a machine gets (the engine only with the LLM extra and its 4 GiB budget, never
an OOM-killed kernel), and the small path's server streaming the model from this process with OpenAI-style errors."""

from __future__ import annotations

import pytest

from kit.errors import KitError
from kit.llm import client, paths
from kit.machine import resources
from kit.machine.processes import port_is_free


def _machine(gib: float) -> resources.Resources:
    return resources.Resources(2.0, int(gib * resources.GiB), 2, 24 * resources.GiB, 0, (), "affinity", "cgroup limit")


def test_auto_takes_the_engine_only_where_it_fits_and_is_installed():
    assert paths.choose("auto", _machine(8), missing=[]).path == "engine"
    assert paths.choose("auto", _machine(paths.ENGINE_BUDGET_BYTES / resources.GiB), missing=[]).path == "engine"
    binder = paths.choose("auto", _machine(2), missing=[])
    assert binder.path == "small" and "2.0 GiB" in binder.reason and "OOM" in binder.reason
    lean = paths.choose("auto", _machine(8), missing=["vllm"])
    assert lean.path == "small" and "make lab LLM=1" in lean.reason
    assert paths.choose("small", _machine(8), missing=[]).path == "small"


@pytest.mark.parametrize(("engine", "gib", "missing", "says"), [
    ("engine", 2, [], "needs 4 GiB of memory; this process may use 2.0 GiB"),
    ("engine", 8, ["vllm"], "needs the LLM extra; missing vllm"),
    ("vllm", 8, [], "is not a path of this stage"),
])
def test_a_path_that_cannot_run_is_refused_before_anything_starts(engine, gib, missing, says):
    with pytest.raises(KitError, match=says) as raised:
        paths.choose(engine, _machine(gib), missing=missing)
    assert raised.value.fix


def test_the_small_path_streams_and_refuses_bad_requests(tiny_lm):
    from kit.llm.small import small_server

    with small_server(tiny_lm[0]) as server:
        timing = client.stream_completion(server.url, "kit-tiny-llama", "the ray head", 6)
        assert timing.tokens >= 1 and timing.finish_reason == "length" and timing.text.strip()
        assert client.refusal(server.url, b'{"model": ')[0] == 400
        status, message = client.refusal(server.url, {"model": "gpt-99", "prompt": "x", "max_tokens": 2})
        assert status == 404 and "does not exist" in message
        status, message = client.refusal(server.url, {"model": "kit-tiny-llama", "prompt": "x", "max_tokens": 999})
        assert status == 400 and "context" in message
        rows = client.sweep(server.url, "kit-tiny-llama", ["the ray head", "a replica"], (1, 2), 4, progress=False)
        assert [r["concurrency"] for r in rows] == [1, 2] and all(r["tokens"] == 4 * r["streams"] for r in rows)
        port = server.port
    assert port_is_free(port)
