"""What every launcher shares: the result it returns, its error, preparing a config, running a command.

A launcher is a function ``launcher(config, /) -> LaunchResult`` (:class:`Launcher`; its own options,
all with defaults, are keyword-only):
it starts ``config.workers`` processes of :func:`kit.train.loop.train_func` and gives back the
same :class:`LaunchResult` whichever way it ran them.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Protocol

from kit import paths
from kit.config.train import TrainConfig, as_config, check_machine
from kit.errors import KitError
from kit.machine import resources
from kit.machine.processes import kill_process_group
from kit.train import data
from kit.train.loop import RESULT_PREFIX, parse_output

LineCallback = Callable[[str], None]
TAIL_LINES = 80  # torchrun alone prints ~40 lines of its own traceback after a rank fails


def print_line(line: str) -> None:
    """Default output callback: print each line, except the long final KIT_RESULT one."""
    if RESULT_PREFIX not in line:
        print(line, flush=True)


class LaunchError(KitError, RuntimeError):
    """A launch that failed; the message ends with the last lines of its output."""

    def __init__(self, message: str, tail: list[str] | None = None,
                 fix: str = "read the last lines of output above: the first error there is the cause") -> None:
        self.tail = list(tail or [])
        text = message
        if self.tail:
            text += "\n--- last lines of output ---\n" + "\n".join(line.rstrip() for line in self.tail)
        super().__init__(text, fix=fix)


@dataclass
class LaunchResult:
    """What a launcher gives back: the epoch history and how long things took."""

    launcher: str
    history: list[dict]
    wall_s: float  # from the call until the launcher returned
    startup_s: float | None  # from the call until the first training step (train_func's clock)
    checkpoint: str | None = None
    #: the serving artifact rank 0 wrote (kit.train.artifact): what `python -m kit serve` loads
    artifact: str | None = None
    result: dict = field(default_factory=dict)  # train_func's return value (rank 0)
    output: list[str] = field(default_factory=list)  # last lines of output (subprocess launchers)
    metrics_dataframe: Any = None  # Ray Train's result.metrics_dataframe
    details: dict = field(default_factory=dict)

    @classmethod
    def of_train_func(cls, launcher: str, result: dict, began: float, **extra: Any) -> LaunchResult:
        """The result of a run from what :func:`kit.train.loop.train_func` returned on rank 0."""
        return cls(launcher=launcher, history=result["history"], wall_s=time.time() - began,
                   startup_s=result["train_started_unix"] - began, checkpoint=result["checkpoint"],
                   artifact=result["artifact"], result=result, **extra)

    @property
    def final(self) -> dict | None:
        return self.history[-1] if self.history else None

    def steady_epoch_s(self) -> float | None:
        """Median epoch time without the first epoch (warm-up)."""
        times = [h["epoch_s"] for h in self.history[1:]] or [h["epoch_s"] for h in self.history]
        return median(times) if times else None


def prepare(config: TrainConfig | dict | None, local: bool = True, processes: bool = False) -> TrainConfig:
    """Validate (for this machine when ``local``) and materialise the data so workers only load a file.

    Not ``local`` (Ray Train inside a RayJob): the workers are on other pods, so neither this
    machine's CPUs nor a file on its disk mean anything to them. ``processes``: the workers are
    OS processes, which may share a CPU (:func:`kit.config.train.check_machine`); a note says so.
    """
    cfg = as_config(config)
    if not local:
        return cfg
    check_machine(cfg, shared_cpus=processes)
    slots = resources.detect().cpu_slots
    if cfg.workers > slots:
        print(f"note: {cfg.workers} workers share {slots} CPU: the OS takes turns between them, so this run is "
              "slower than on one CPU per worker; what it computes is the same")
    # Resolved here, so that every worker (a Ray actor, a Kubeflow job venv) writes to the same place.
    cfg = cfg.replace(model_dir=str(cfg.artifact_dir().resolve()))
    if not cfg.data_path:
        path = data.materialize_elsewhere(cfg.dataset, cfg.samples, cfg.test_fraction, cfg.seed)
        cfg = cfg.replace(data_path=str(path))
    return cfg


def child_env(workers: int, **extra: str) -> dict[str, str]:
    """Environment for worker processes: this kit first on the path, one BLAS thread set per worker.

    Also the environment of a Kubeflow local job's script, which pip-installs torch into a venv that
    lives for one run: byte-compiling all of torch's sources there (more than half of the install's time
    here) is never reused, so ``PIP_COMPILE=0`` (pip's ``--compile`` off) skips it; Python compiles
    what the job imports, as it goes.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.source_root()), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = str(max(1, resources.detect().cpu_slots // workers))
    env["PYTHONUNBUFFERED"] = "1"
    env["PIP_COMPILE"] = "0"
    env.update(extra)
    return env


class Launcher(Protocol):
    """One way to run :func:`kit.train.loop.train_func`: ``config.workers`` processes, one result."""

    def __call__(self, config: TrainConfig | dict[str, Any] | None = None, /) -> LaunchResult:
        ...


def stream_command(command: list[str], env: dict[str, str], on_line: LineCallback | None = print_line,
                   timeout_s: float | None = None) -> list[str]:
    """Run ``command`` in its own process group, pass each output line to ``on_line``, return all lines.

    Raises :class:`LaunchError` (with the last lines) on a non-zero exit or a timeout;
    the whole process group is gone when this returns or raises, also on KeyboardInterrupt.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               bufsize=1, env=env, start_new_session=True)
    lines: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        kill_process_group(process.pid, leader=process)

    timer = threading.Timer(timeout_s, on_timeout) if timeout_s else None
    try:
        if timer:
            timer.start()
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            tail.append(line)
            if on_line:
                on_line(line)
        returncode = process.wait()
    finally:
        if timer:
            timer.cancel()
        # workers that outlived torchrun, or everything on an interrupt
        kill_process_group(process.pid, leader=process)
        process.wait()
    if timed_out.is_set():
        raise LaunchError(f"timed out after {timeout_s:g} s: {' '.join(command[:6])} ...", list(tail))
    if returncode != 0:
        raise LaunchError(f"exit code {returncode} from {' '.join(command[:6])} ...", list(tail))
    return lines


@contextlib.contextmanager
def private_tmpdir(env: dict[str, str], prefix: str = "kit-torchrun-") -> Iterator[dict[str, str]]:
    """``env`` with its own ``TMPDIR``, removed afterwards: torchrun leaves ``torchelastic_*`` directories
    (and torch its ``torchinductor_<user>`` cache) in the temp dir, which would outlive the run."""
    directory = tempfile.mkdtemp(prefix=prefix)
    try:
        yield dict(env, TMPDIR=directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def result_from_output(launcher: str, lines: list[str], began: float, details: dict) -> LaunchResult:
    """The :class:`LaunchResult` of a run whose rank 0 printed its ``KIT_RESULT`` line in ``lines``."""
    _, result = parse_output(lines)
    if result is None:
        raise LaunchError(f"{launcher} finished but rank 0 printed no KIT_RESULT line", lines[-TAIL_LINES:])
    return LaunchResult.of_train_func(launcher, result, began, output=lines[-TAIL_LINES:], details=details)
