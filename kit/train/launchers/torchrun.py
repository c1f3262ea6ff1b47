"""``torchrun --standalone``: one process per worker on this machine, output streamed line by line."""

from __future__ import annotations

import json
import sys
import time

from kit.config.train import TrainConfig
from kit.train.launchers.base import (
    LaunchResult,
    LineCallback,
    child_env,
    prepare,
    print_line,
    private_tmpdir,
    result_from_output,
    stream_command,
)
from kit.train.loop import parse_output


def torchrun_command(config: TrainConfig, max_restarts: int = 0) -> list[str]:
    """The torchrun command line that runs :func:`train_func` in ``config.workers`` processes on this machine."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={config.workers}",
        f"--max-restarts={max_restarts}", "-m", "kit.train.entry", json.dumps(config.to_dict()),
    ]


def run_torchrun(config: TrainConfig | dict | None = None, /, *, max_restarts: int = 0,
                 on_line: LineCallback | None = print_line, timeout_s: float | None = 600) -> LaunchResult:
    """``torchrun --standalone --nproc-per-node N``, N = ``config.workers``: one process per worker,
    gloo (CPU) or nccl (GPU).

    With ``max_restarts`` > 0 and a ``checkpoint_dir``, torchrun restarts all workers after
    a failure and training resumes from the last checkpoint.
    """
    cfg = prepare(config, processes=True)
    command = torchrun_command(cfg, max_restarts)
    began = time.time()
    with private_tmpdir(child_env(cfg.workers)) as env:
        lines = stream_command(command, env, on_line, timeout_s)
    live_history, _ = parse_output(lines)
    return result_from_output("torchrun", lines, began, {"live_history": live_history, "command": command})
