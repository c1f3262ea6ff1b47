"""Stage 12's language model without the engine: corpus, tokenizer, training, artifact, client parsing.

The model tests need the LLM extra's ``tokenizers`` and ``transformers`` (``make test`` installs them);
without them they fail naming what is missing.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from kit.errors import KitError
from kit.llm import client, corpus
from kit.llm.server import EngineOptions, cpu_supports_bf16
from kit.train.artifact import ArtifactError


def test_corpus_is_deterministic_and_seeded():
    assert corpus.generate(50, seed=1) == corpus.generate(50, seed=1)
    assert corpus.generate(50, seed=1) != corpus.generate(50, seed=2)
    assert all(line.endswith(" .") for line in corpus.generate(20))
    with pytest.raises(ValueError):
        corpus.generate(0)


def test_sse_events_become_token_timings():
    lines = [(0.5, 'data: {"choices": [{"text": "the", "finish_reason": null}]}'), (0.6, ""),
             (0.7, 'data: {"choices": [{"text": " job", "finish_reason": null}]}'),
             (0.9, 'data: {"choices": [{"text": " .", "finish_reason": "length"}]}'), (1.0, "data: [DONE]"),
             (2.0, 'data: {"choices": [{"text": "after done"}]}')]
    timing = client.timing_from_events(lines)
    assert timing.text == "the job ." and timing.tokens == 3 and timing.finish_reason == "length"
    assert timing.ttft == 0.5 and timing.tpot == pytest.approx(0.2)
    usage = (0.95, 'data: {"choices": [], "usage": {"completion_tokens": 5}}')
    with_usage = client.timing_from_events([*lines[:4], usage])
    assert with_usage.tokens == 5 and with_usage.tpot == pytest.approx(0.1)  # two tokens carried no text
    chat = client.timing_from_events([(0.1, 'data: {"choices": [{"delta": {"content": "hi"}}]}')])
    assert chat.text == "hi" and chat.tpot is None
    with pytest.raises(ValueError, match="no tokens"):
        client.timing_from_events([(0.1, "data: [DONE]")])
    with pytest.raises(ValueError, match="error"):
        client.timing_from_events([(0.1, 'data: {"error": {"message": "boom"}}')])


def test_load_summary_medians_and_rate():
    timings = [client.StreamTiming((0.1, 0.2, 0.3), "x", "length"), client.StreamTiming((0.3, 0.5, 0.7), "y", None)]
    result = client.summarise(2, timings, 2.0)
    assert result.tokens == 6 and result.tokens_per_s == 3.0
    assert result.ttft_median == pytest.approx(0.2) and result.tpot_median == pytest.approx(0.15)


def test_engine_options_reject_what_vllm_would_misread():
    for bad in (0, 1.5, "1", True):
        with pytest.raises(KitError, match="whole number of GiB"):
            EngineOptions(kv_cache_gib=bad)
    with pytest.raises(KitError):
        EngineOptions(max_num_seqs=0)
    with pytest.raises(KitError):
        EngineOptions(dtype="float16")
    options = EngineOptions(max_num_seqs=4, kv_cache_gib=2, prefix_caching=False)
    args = options.args("/m", 8123)
    assert args[args.index("--max-num-seqs") + 1] == "4" and "--no-enable-prefix-caching" in args
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert options.env()["VLLM_CPU_KVCACHE_SPACE"] == "2"
    small = EngineOptions(kv_cache_bytes=2**20)
    assert small.args("/m", 1)[-2:] == ["--kv-cache-memory-bytes", str(2**20)]
    assert "VLLM_CPU_KVCACHE_SPACE" not in small.env()  # else vLLM's CPU platform overrides the flag
    with pytest.raises(KitError, match="one block"):
        EngineOptions(kv_cache_bytes=1024)


def test_bf16_needs_a_native_cpu_flag():
    assert cpu_supports_bf16({"avx2", "avx512_bf16"}) and cpu_supports_bf16({"amx_bf16"})
    assert not cpu_supports_bf16({"avx2", "fma", "avx512f"})


def test_model_config_rejects_small_heads():
    from kit.llm.model import LMConfig

    assert LMConfig().heads == 2
    with pytest.raises(ValueError, match="head"):
        LMConfig(hidden_size=128, head_dim=16)
    with pytest.raises(ValueError):
        LMConfig(block=512, context=256)


def test_training_lowers_the_loss_and_writes_a_loadable_artifact(tiny_lm):
    from kit.llm import artifact

    path, result = tiny_lm
    losses = [entry["train_loss"] for entry in result["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0] < result["initial_loss_uniform"] + 0.5
    assert result["test_loss"] < result["initial_loss_uniform"] - 1.0  # learned something beyond uniform
    model, tokenizer, metadata = artifact.load(path)
    assert metadata["parameters"] == sum(p.numel() for p in model.parameters())
    assert model.config.head_dim == 64 and model.config.num_attention_heads == 2 and len(tokenizer) == 512
    ids = tokenizer.encode("the ray head schedules two small workers")
    assert tokenizer.decode(ids) == "the ray head schedules two small workers"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt == "user: hi\nassistant:"


def test_a_damaged_artifact_is_refused_naming_the_file(tiny_lm, tmp_path):
    from kit.llm import artifact

    copy = tmp_path / "copy"
    shutil.copytree(tiny_lm[0], copy)
    weights = copy / artifact.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ArtifactError, match=r"model\.safetensors has SHA-256"):
        artifact.verify(copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match=r"tokenizer\.json is missing"):
        artifact.load(copy)
    (copy / artifact.METADATA).write_text(json.dumps({"format_version": 99}))
    (copy / "tokenizer.json").write_text("{}")
    with pytest.raises(ArtifactError, match="format_version"):
        artifact.verify(copy)
    with pytest.raises(ArtifactError, match="does not exist"):
        artifact.verify(tmp_path / "nowhere")


def test_the_llm_extra_is_pinned_in_one_place_and_leaves_the_cuda_builds_out():
    from kit import versions

    root = Path(__file__).resolve().parent.parent
    lines = [line.strip() for line in (root / versions.LLM_REQUIREMENTS_FILE).read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    pins = dict(line.split("==") for line in lines)
    assert len(pins) == len(lines), "every line of requirements-llm.txt is an exact pin"
    for name, version in {**versions.LLM_PINS, **versions.LLM_MOVES}.items():
        if name != versions.LLM_ENGINE:
            assert pins.get(name) == version, (name, pins.get(name), version)
    assert versions.LLM_ENGINE not in pins  # installed with --no-deps, after the file
    assert not {"torch", *versions.LLM_LEFT_OUT} & set(pins)
    moved = {name for name in pins if name in versions.PYTHON_PINS and pins[name] != versions.PYTHON_PINS[name]}
    assert not moved, f"the LLM extra would move the kit's own pins {moved}"
    engine = f"{versions.LLM_ENGINE}=={versions.LLM_PINS[versions.LLM_ENGINE]}"
    makefile = (root / "Makefile").read_text()
    assert f"--no-deps {engine}" in makefile and f"--no-deps -r {versions.LLM_REQUIREMENTS_FILE}" in makefile


def test_the_doctor_says_whether_the_llm_extra_is_there_and_how_to_install_it():
    from kit import versions
    from kit.machine import doctor

    absent = doctor.check_llm_extra(lambda name: None)
    assert absent.status == doctor.INFO and "make lab LLM=1" in absent.fix
    present = doctor.check_llm_extra(lambda name: versions.LLM_PINS[name] + ("+cpu" if name == "vllm-cpu" else ""))
    assert present.status == doctor.OK and "vllm-cpu 0.32.0" in present.detail
    old = doctor.check_llm_extra(lambda name: "0.1.0" if name == "transformers" else versions.LLM_PINS.get(name))
    assert old.status == doctor.WARN and "transformers 0.1.0 (pinned 5.19.0)" in old.detail


def test_the_small_path_streams_greedy_tokens_and_refuses_what_does_not_fit(tiny_lm):
    from kit.llm import artifact
    from kit.llm.generate import stream_tokens, timed

    model, tokenizer, _ = artifact.load(tiny_lm[0])
    chunks = timed(stream_tokens(model, tokenizer, "the scheduler", max_tokens=8, ignore_eos=True))
    assert len(chunks) > 3 and all(b[0] >= a[0] for a, b in itertools.pairwise(chunks))
    again = "".join(stream_tokens(model, tokenizer, "the scheduler", max_tokens=8, ignore_eos=True))
    assert again == "".join(text for _, text in chunks)  # greedy is deterministic
    with pytest.raises(ValueError, match="context"):
        list(stream_tokens(model, tokenizer, "the job " * 200, max_tokens=8))
    for bad in ({"max_tokens": 0}, {"temperature": -1.0}):
        with pytest.raises(ValueError):
            list(stream_tokens(model, tokenizer, "x", **bad))


def test_bench_helpers_read_the_engine_and_do_the_kv_arithmetic():
    from kit.llm import metrics
    from kit.llm import sizing as bench

    per_token = bench.kv_bytes_per_token(layers=2, kv_heads=2, head_dim=64)
    assert per_token == 2048  # key + value, 2 layers, 2 heads of 64 floats (4 bytes)
    assert bench.admitted(1, per_token, 256) == 2048 and bench.admitted(2, per_token, 256) == 4096
    log = "INFO ... Maximum concurrency for 256 tokens per request: 2.00x\nother line"
    assert bench.engine_reported_concurrency(log) == 2.0 and bench.engine_reported_concurrency("none") is None
    text = ('vllm:num_requests_running{model_name="m",engine="0"} 3.0\n'
            'vllm:num_requests_running{model_name="m",engine="1"} 1.0\n'
            "# HELP vllm:num_preemptions_total x\nvllm:num_preemptions_total 7.0\n")
    assert metrics.metric(text, "vllm:num_requests_running") == 4.0
    assert metrics.metric(text, "vllm:num_preemptions_total") == 7.0 and metrics.metric(text, "nope") is None


def test_bench_llm_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    from kit.cli import main
    from kit.llm import server

    assert main(["bench", "llm", "--tokens", "many"]) == 2
    monkeypatch.setattr(server, "missing_packages", lambda modules=(): ["vllm"])
    assert main(["bench", "llm"]) == 1
    err = capsys.readouterr().err
    assert "the LLM extra is not installed: missing vllm" in err and "make lab LLM=1" in err
    assert "Traceback" not in err


def test_bench_llm_plots_its_sweep(tmp_path):
    from kit.bench import llm as bench

    rows = [{"concurrency": n, "tokens_per_s": 100.0 * n**0.7, "ttft_median": 0.02 * n, "tpot_median": 0.004 + n / 1e3}
            for n in (1, 2, 4, 8, 16)]
    data = {"machine": {"cpus": 2.0}, "tokens_per_stream": 32, "concurrency": rows,
            "ratios": {"tokens_per_s_16_vs_1": round(rows[-1]["tokens_per_s"] / rows[0]["tokens_per_s"], 2)}}
    bench.plot_llm(data, tmp_path / "llm.png")
    assert (tmp_path / "llm.png").stat().st_size > 10_000
