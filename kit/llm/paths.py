"""Stage 12's two ways to serve the model, and which one this machine can take.

- ``engine``: vLLM's OpenAI server (:func:`kit.llm.server.vllm_server`): continuous batching, a paged KV
  cache, metrics. Its process tree needs about 3 GiB here, so it runs only where the LLM extra is installed
  and this process may use :data:`ENGINE_BUDGET_BYTES` (4 GiB, the stage's declared budget; tests/harness.py
  runs the stage in a cgroup of that size);
- ``small``: the model in this process behind a streaming HTTP endpoint (:func:`kit.llm.small.small_server`):
  one request at a time, the same stream format, about half a GiB — Binder's 2 GiB is enough.

:func:`choose` picks one and says why; a learner can force either (``ENGINE = "engine"`` or ``"small"``),
and forcing the engine where it does not fit fails with the figure, before anything is started.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.machine import resources

#: The engine path's declared memory budget: the stage's whole process tree (kernel, API server, engine
#: core) stays under it; measured ~3 GiB PSS with the tiny model and a 1 GiB KV cache.
ENGINE_BUDGET_BYTES = 4 * 2**30
CHOICES = ("auto", "engine", "small")


@dataclass(frozen=True)
class Choice:
    """The path this notebook takes, and why."""

    path: str  # engine | small
    reason: str
    memory_bytes: int

    def __str__(self) -> str:
        return f"{self.path} path: {self.reason}"


def choose(engine: str = "auto", found: resources.Resources | None = None,
           missing: list[str] | None = None) -> Choice:
    """``engine`` is auto | engine | small; auto takes the engine where the extra and the memory allow."""
    from kit.llm.server import INSTALL_FIX, missing_packages

    if engine not in CHOICES:
        raise KitError(f"ENGINE={engine!r} is not a path of this stage", fix=f"use one of {', '.join(CHOICES)}")
    found = found or resources.detect()
    memory = found.memory_bytes
    missing = missing_packages() if missing is None else missing
    budget = f"{ENGINE_BUDGET_BYTES / 2**30:.0f} GiB"
    if engine == "small":
        return Choice("small", "chosen (ENGINE='small')", memory)
    if missing:
        if engine == "engine":
            raise KitError(f"ENGINE='engine' needs the LLM extra; missing {', '.join(missing)}", fix=INSTALL_FIX)
        return Choice("small", f"the LLM extra is not installed (missing {', '.join(missing)}; {INSTALL_FIX})",
                      memory)
    if memory < ENGINE_BUDGET_BYTES:
        have = f"{memory / 2**30:.1f} GiB ({found.memory_source})"
        if engine == "engine":
            raise KitError(f"ENGINE='engine' needs {budget} of memory; this process may use {have}",
                           fix="use ENGINE='small' here, or a machine with more memory (make lab on a laptop)")
        return Choice("small", f"this process may use {have}, under the engine's {budget}: the engine "
                               "would be OOM-killed", memory)
    return Choice("engine", f"the LLM extra is installed and {memory / 2**30:.1f} GiB fits the {budget} budget",
                  memory)


def train(model_dir: str | Path, steps: int, sentences: int = 4000, log_every: int = 10) -> dict[str, Any]:
    """Train stage 12's model with the kit's launcher in a child process (``python -m kit.llm.train``), showing
    its progress; returns the artifact's metadata (config, loss history, held-out loss)."""
    import os

    from kit.llm.artifact import verify
    from kit.serve.loadgen import PROGRESS_ENV
    from kit.train.loop import METRICS_PREFIX

    command = [sys.executable, "-m", "kit.llm.train", "--model-dir", str(model_dir), "--steps", str(steps),
               "--sentences", str(sentences), "--log-every", str(log_every)]
    bar = None
    if os.environ.get(PROGRESS_ENV) != "0":
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="training", unit="step", leave=False)
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if bar is not None and line.startswith(METRICS_PREFIX):
                import json

                bar.n = json.loads(line[len(METRICS_PREFIX):])["step"]
                bar.refresh()
    if bar is not None:
        bar.close()
    if process.returncode != 0:
        tail = "\n".join(lines[-15:])
        raise KitError(f"training stage 12's model failed (exit {process.returncode}):\n{tail}",
                       fix="read the last lines above; `python -m kit doctor` checks the environment")
    return verify(model_dir)


def start_server(choice: Choice, model_dir: str | Path, options: Any = None):
    """The chosen path's server for the model, started: the engine (``options``: an
    :class:`kit.llm.server.EngineOptions`) or the small in-process server. Stop it with ``.stop()``."""
    if choice.path == "engine":
        from kit.llm.server import vllm_server

        return vllm_server(model_dir, options).start(timeout=300)
    from kit.llm.small import small_server

    return small_server(model_dir).start()
