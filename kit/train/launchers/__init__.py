"""Launchers: the same :func:`kit.train.loop.train_func`, run four ways.

* :func:`run_in_process` - one worker in this process: the baseline.
* :func:`run_torchrun` - ``torchrun --standalone`` with N processes, output streamed line by line.
* :func:`run_ray_train` - Ray Train ``TorchTrainer`` on the local Ray, with checkpoints and retries.
* :func:`run_kubeflow_local` - a Kubeflow ``TrainerClient`` job on the local process backend.

Every launcher starts ``TrainConfig.workers`` processes: the configuration is the one place
that decides the worker count (no launcher takes a count of its own, so the two cannot
disagree; :func:`run_in_process` refuses a config asking for more than one). Each checks
the configuration against this machine before it starts anything
(:func:`kit.train.loop.check_machine`), materialises the data once so workers only
load a file, and returns a :class:`LaunchResult` with the same epoch history.
No launcher leaves a process behind: on an error or an interrupt the whole process
group (torchrun) or process tree (Kubeflow job) is terminated.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from kit import paths, versions
from kit.config.train import ConfigError, TrainConfig, as_config, check_machine, one_worker
from kit.errors import KitError
from kit.machine import resources
from kit.machine.processes import kill_process_group
from kit.train import data
from kit.train.loop import RESULT_PREFIX, parse_output, train_func

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

    @property
    def final(self) -> dict | None:
        return self.history[-1] if self.history else None

    def steady_epoch_s(self) -> float | None:
        """Median epoch time without the first epoch (warm-up)."""
        times = [h["epoch_s"] for h in self.history[1:]] or [h["epoch_s"] for h in self.history]
        return median(times) if times else None


def prepare(config: TrainConfig | dict | None, local: bool = True) -> TrainConfig:
    """Validate (for this machine when ``local``) and materialise the data so workers only load a file.

    Not ``local`` (Ray Train inside a RayJob): the workers are on other pods, so neither this
    machine's CPUs nor a file on its disk mean anything to them.
    """
    cfg = as_config(config)
    if not local:
        return cfg
    check_machine(cfg)
    # Resolved here, so that every worker (a Ray actor, a Kubeflow job venv) writes to the same place.
    cfg = cfg.replace(model_dir=str(cfg.artifact_dir().resolve()))
    if not cfg.data_path:
        path = data.materialize(cfg.dataset, cfg.samples, cfg.test_fraction, cfg.seed)
        cfg = cfg.replace(data_path=str(path))
    return cfg


def child_env(workers: int, **extra: str) -> dict[str, str]:
    """Environment for worker processes: this kit first on the path, one BLAS thread set per worker."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.source_root()), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = str(max(1, resources.detect().cpu_slots // workers))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --------------------------------------------------------------------------- in process


def run_in_process(config: TrainConfig | dict | None = None) -> LaunchResult:
    """One worker in this process (the notebook's kernel): the baseline for the other launchers.

    A config with ``workers`` > 1 is a :class:`ConfigError`: this launcher cannot start more processes.
    """
    cfg = prepare(one_worker(config, "run_in_process"))
    if cfg.crash_at_epoch:
        raise ConfigError(
            "crash_at_epoch", "the drill would kill this process; use run_torchrun or run_ray_train"
        )
    began = time.time()
    result = train_func(cfg.to_dict())
    return LaunchResult(
        launcher="in-process",
        history=result["history"],
        wall_s=time.time() - began,
        startup_s=result["train_started_unix"] - began,
        checkpoint=result["checkpoint"],
        artifact=result["artifact"],
        result=result,
    )


# --------------------------------------------------------------------------- torchrun


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
        kill_process_group(process.pid)

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
        kill_process_group(process.pid)  # workers that outlived torchrun, or everything on an interrupt
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


def torchrun_command(config: TrainConfig, max_restarts: int = 0) -> list[str]:
    """The torchrun command line that runs :func:`train_func` in ``config.workers`` processes on this machine."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={config.workers}",
        f"--max-restarts={max_restarts}", "-m", "kit.train.entry", json.dumps(config.to_dict()),
    ]


def run_torchrun(config: TrainConfig | dict | None = None, max_restarts: int = 0,
                 on_line: LineCallback | None = print_line, timeout_s: float | None = 600) -> LaunchResult:
    """``torchrun --standalone --nproc-per-node N``, N = ``config.workers``: one process per worker,
    gloo (CPU) or nccl (GPU).

    With ``max_restarts`` > 0 and a ``checkpoint_dir``, torchrun restarts all workers after
    a failure and training resumes from the last checkpoint.
    """
    cfg = prepare(config)
    command = torchrun_command(cfg, max_restarts)
    began = time.time()
    with private_tmpdir(child_env(cfg.workers)) as env:
        lines = stream_command(command, env, on_line, timeout_s)
    live_history, _ = parse_output(lines)
    return result_from_output("torchrun", lines, began, {"live_history": live_history, "command": command})


def result_from_output(launcher: str, lines: list[str], began: float, details: dict) -> LaunchResult:
    """The :class:`LaunchResult` of a run whose rank 0 printed its ``KIT_RESULT`` line in ``lines``."""
    _, result = parse_output(lines)
    if result is None:
        raise LaunchError(f"{launcher} finished but rank 0 printed no KIT_RESULT line", lines[-TAIL_LINES:])
    return LaunchResult(
        launcher=launcher,
        history=result["history"],
        wall_s=time.time() - began,
        startup_s=result["train_started_unix"] - began,
        checkpoint=result["checkpoint"],
        artifact=result["artifact"],
        result=result,
        output=lines[-TAIL_LINES:],
        details=details,
    )


# --------------------------------------------------------------------------- Ray Train


#: Ray Train V2 settings for a laptop or a 2-CPU notebook server (applied unless already set):
#: no preemption-watcher actor (there is no spot instance here) and prints passed through once
#: instead of twice (Ray's print patch logs each line and prints it).
RAY_TRAIN_SMALL_MACHINE_ENV = {
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
}


def ray_train_loop(config: dict) -> Any:
    """What each Ray Train worker runs. Ray passes ``train_loop_config`` only to a function with a
    *required* parameter, and :func:`train_func`'s is optional, hence this one-line adapter."""
    return train_func(config)


def run_ray_train(config: TrainConfig | dict | None = None, max_failures: int = 0,
                  storage_path: str | Path | None = None, name: str | None = None,
                  num_to_keep: int = 2) -> LaunchResult:
    """Ray Train ``TorchTrainer`` with ``config.workers`` workers on the local Ray (started with
    :func:`kit.machine.local_ray.start` if needed), or on the RayJob's cluster when ``RAY_ADDRESS`` is set.

    Checkpoints go to ``storage_path`` (default: the kit's work dir, ``ray_results/``),
    keeping the newest ``num_to_keep``; after a worker failure Ray restarts the worker group
    up to ``max_failures`` times and ``train_func`` resumes from the last checkpoint.
    """
    local = "RAY_ADDRESS" not in os.environ  # inside a RayJob, Ray Train joins the job's cluster instead
    cfg = prepare(config, local=local)
    from kit.machine import local_ray as raylocal

    if local:
        for key, value in RAY_TRAIN_SMALL_MACHINE_ENV.items():
            os.environ.setdefault(key, value)
        raylocal.start()
    import ray.train
    from ray.train.torch import TorchTrainer

    name = name or f"kit-train-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    storage = Path(storage_path) if storage_path else paths.work_dir("ray_results")
    use_gpu = cfg.device == "cuda" or (cfg.device == "auto" and resources.detect().gpus >= cfg.workers)
    trainer = TorchTrainer(
        ray_train_loop,
        train_loop_config=cfg.to_dict(),
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.workers, use_gpu=use_gpu,
                                               resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(storage),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=num_to_keep),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
        ),
    )
    began = time.time()
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as error:
        raise LaunchError(
            f"Ray Train run {name!r} failed and max_failures={max_failures} allowed no (further) retry: "
            f"{type(error).__name__}. With max_failures >= 1 Ray restarts the workers and training "
            f"resumes from the last checkpoint under {storage / name}.",
            str(error).splitlines()[-TAIL_LINES:],
        ) from error
    returned: dict = result.return_value or {}  # type: ignore[attr-defined]  # Ray Train V2's Result
    return LaunchResult(
        launcher="ray-train",
        history=returned.get("history", []),
        wall_s=time.time() - began,
        startup_s=returned["train_started_unix"] - began if returned else None,
        checkpoint=result.checkpoint.path if result.checkpoint else None,
        artifact=returned.get("artifact"),
        result=returned,
        metrics_dataframe=result.metrics_dataframe,
        details={"storage_path": str(storage), "name": name, "result_path": result.path},
    )


def fault_drill_config(config: TrainConfig | dict | None = None, crash_at_epoch: int = 2,
                       marker_dir: str | Path | None = None) -> TrainConfig:
    """A configuration whose last worker crashes once, in the middle of ``crash_at_epoch``.

    The marker file makes the crash happen on the first attempt only: the retried
    workers find it and train on, so the drill shows a resume, not a crash loop.
    """
    directory = Path(marker_dir) if marker_dir else paths.work_dir("fault-drill", uuid.uuid4().hex[:8])
    return as_config(config, crash_at_epoch=crash_at_epoch, crash_marker=str(directory / "crashed"))


# --------------------------------------------------------------------------- Kubeflow Trainer


def kubeflow_train(config=None, /, **kwargs):
    """Entry shipped to a Kubeflow TrainJob: its source is copied into the job, so it only imports the kit.

    The local process backend calls it with one dict, Kubernetes with keyword arguments;
    :func:`kit.train.loop.train_func` accepts both. The job needs ``kit`` importable: locally
    :func:`run_kubeflow_local` puts this checkout on ``PYTHONPATH``; on a cluster the image must have it.
    """
    from kit.train.loop import train_func

    return train_func(config, **kwargs)


def kubeflow_backend(profile: str = "local", namespace: str | None = None):
    """The Kubeflow SDK backend config for a kit profile: local processes, or a Kubernetes cluster."""
    from kubeflow.trainer import KubernetesBackendConfig, LocalProcessBackendConfig

    if profile == "local":
        return LocalProcessBackendConfig(cleanup_venv=True)
    if profile in ("kind", "cluster"):
        return KubernetesBackendConfig(namespace=namespace)
    raise ValueError(f"profile must be one of local, kind, cluster; got {profile!r}")


def job_pip_index_urls() -> list[str]:
    """Where a Kubeflow job's venv installs torch from: ``$KIT_PIP_INDEX_URLS`` (comma-separated), else
    PyTorch's CPU index first on a machine without a GPU (PyPI's Linux torch wheel pulls GBs of CUDA)."""
    override = os.environ.get("KIT_PIP_INDEX_URLS")
    if override:
        return [url.strip() for url in override.split(",") if url.strip()]
    if resources.detect().gpus or os.environ.get("PIP_FIND_LINKS"):
        # With a GPU PyPI's CUDA build is wanted; with a local wheelhouse (PIP_FIND_LINKS, as on
        # the kit's CI machines) the pinned wheel is found on disk and only PyPI is reachable.
        return ["https://pypi.org/simple"]
    return ["https://download.pytorch.org/whl/cpu", "https://pypi.org/simple"]


@contextlib.contextmanager
def _this_python_first() -> Iterator[None]:
    """The local backend builds the job venv with whichever ``python`` is first on PATH: make it ours."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old])
    try:
        yield
    finally:
        os.environ["PATH"] = old


#: Public name of :func:`_this_python_first`, for notebooks that drive ``TrainerClient`` themselves.
this_python_first = _this_python_first


def delete_local_job(client, job_name: str) -> None:
    """Delete a local Kubeflow job and leave nothing behind: its processes (when it still runs) and its venv."""
    try:
        status = client.get_job(job_name).status
    except ValueError:  # already deleted
        status = "Deleted"
    if status not in ("Complete", "Failed", "Deleted"):
        _kill_job_processes(job_name)
    if status != "Deleted":
        client.delete_job(job_name)
    for leftover in Path(tempfile.gettempdir()).glob(f"{job_name}*"):  # the venv, when the job failed
        shutil.rmtree(leftover, ignore_errors=True)


def _kill_job_processes(job_name: str) -> None:
    """Terminate the processes of a local Kubeflow job (its bash, pip, torchrun and workers)."""
    import psutil

    procs = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if job_name in " ".join(proc.cmdline()):
                procs.append(proc)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def run_kubeflow_local(config: TrainConfig | dict | None = None,
                       on_line: LineCallback | None = print_line, timeout_s: float = 900,
                       poll_s: float = 0.5) -> LaunchResult:
    """A Kubeflow Trainer job on the SDK's local process backend (torchrun in a fresh venv).

    The backend creates a venv per job and pip-installs ``torch`` (pinned to the kit's
    version) before torchrun starts: that is most of the start-up time (``details``
    reports it). ``config.workers`` reaches torchrun as ``PET_NPROC_PER_NODE``. The job is
    deleted afterwards, its processes and venv are removed also when it fails.
    """
    cfg = prepare(config)
    from kubeflow.trainer import CustomTrainer, TrainerClient

    client = TrainerClient(backend_config=kubeflow_backend("local"))
    trainer = CustomTrainer(
        func=kubeflow_train,
        func_args=cfg.to_dict(),
        packages_to_install=[versions.requirement("torch")],
        pip_index_urls=job_pip_index_urls(),
        env=child_env(cfg.workers, PET_NPROC_PER_NODE=str(cfg.workers), PET_STANDALONE="1"),
    )
    began = time.time()
    with _this_python_first():
        job = client.train(runtime=client.get_runtime("torch-distributed"), trainer=trainer)
    seen: list[str] = []
    first_seen: dict[str, float] = {}
    status = "Created"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            status = client.get_job(job).status
            lines = list(client.get_job_logs(job))
            for line in lines[len(seen):]:
                if "Successfully installed" in line and "torch-" in line:
                    first_seen.setdefault("installed", time.time() - began)
                if on_line:
                    on_line(line)
            seen = lines
            if status in ("Complete", "Failed"):
                break
            if time.monotonic() > deadline:
                message = f"Kubeflow local job {job} still {status} after {timeout_s:g} s"
                raise LaunchError(message, seen[-TAIL_LINES:])
            time.sleep(poll_s)
    finally:
        if status not in ("Complete", "Failed"):
            _kill_job_processes(job)
        client.delete_job(job)
        for leftover in Path(tempfile.gettempdir()).glob(f"{job}*"):  # the venv, when the job failed
            shutil.rmtree(leftover, ignore_errors=True)
    if status != "Complete":
        raise LaunchError(f"Kubeflow local job {job} ended {status}", seen[-TAIL_LINES:])
    return result_from_output(
        "kubeflow-local", seen, began, {"job": job, "venv_and_install_s": first_seen.get("installed")}
    )


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m kit.train.launchers {in-process,torchrun,ray} --config JSON`` (RayJob entrypoint).

    The worker count is the config's ``workers`` field, as everywhere.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kit.train.launchers", description=main.__doc__)
    parser.add_argument("launcher", choices=["in-process", "torchrun", "ray"])
    parser.add_argument("--max-failures", type=int, default=0, help="Ray Train retries")
    parser.add_argument("--storage-path", default=None, help="Ray Train storage (shared by all pods)")
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    args = parser.parse_args(argv)
    config = json.loads(args.config)
    if args.launcher == "in-process":
        result = run_in_process(config)
    elif args.launcher == "torchrun":
        result = run_torchrun(config)
    else:
        result = run_ray_train(config, max_failures=args.max_failures, storage_path=args.storage_path)
    print(RESULT_PREFIX + json.dumps({"history": result.history, "checkpoint": result.checkpoint,
                                      "artifact": result.artifact}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
