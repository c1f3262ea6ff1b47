"""Ray Train ``TorchTrainer`` on the local Ray (or a RayJob's cluster): checkpoints and retries."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit import paths
from kit.config.train import TrainConfig, as_config
from kit.machine import resources
from kit.train.launchers.base import TAIL_LINES, LaunchError, LaunchResult, prepare
from kit.train.loop import train_func

#: Ray Train V2 settings for a laptop or a 2-CPU notebook server (applied unless already set):
#: no preemption-watcher actor (there is no spot instance here), prints passed through once
#: instead of twice (Ray's print patch logs each line and prints it), and the controller polling
#: its workers every second instead of two: it notices a report, a crash or the end of training
#: by polling, and local workers answer in milliseconds.
RAY_TRAIN_SMALL_MACHINE_ENV = {
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "1",
}


#: Below this memory limit one Ray Train worker runs locally (Binder gives 2 GiB); at or above it, two.
#: Each worker is a Python process with torch (about 350 MiB), next to Ray, its controller and the kernel.
TWO_WORKER_MEMORY_BYTES = 3 * resources.GiB


@dataclass(frozen=True)
class WorkerPlan:
    """How many Ray Train workers to run here, and why."""

    workers: int
    reason: str

    def __str__(self) -> str:
        return f"{self.workers} Ray Train worker(s): {self.reason}"


def local_workers(limits: resources.Resources | None = None) -> WorkerPlan:
    """Workers for a run on this machine: two (DDP between them) when its memory and CPUs allow, else one."""
    limits = limits or resources.detect()
    memory = f"{limits.memory_gib:.1f} GiB memory ({limits.memory_source})"
    bigger = (f"a machine with {TWO_WORKER_MEMORY_BYTES / resources.GiB:g} GiB or more and 2 CPUs "
              "runs 2 workers, and DDP between them")
    if limits.memory_bytes < TWO_WORKER_MEMORY_BYTES:
        return WorkerPlan(1, f"{memory} leaves room for one worker process with torch; {bigger}")
    if limits.cpu_slots < 2:
        return WorkerPlan(1, f"{limits.cpus:g} CPU ({limits.cpu_source}), and each worker takes one; {bigger}")
    return WorkerPlan(2, f"{memory} and {limits.cpu_slots} CPUs; each rank is a worker process, DDP between them")


def ray_train_workers() -> WorkerPlan:
    """Workers for :func:`run_ray_train` where it will run: this machine (:func:`local_workers`), or the Ray
    cluster this process is connected to (two when it has the CPUs: each worker may take a node)."""
    import sys

    from kit.machine import ray_cluster

    if "RAY_ADDRESS" not in os.environ and not ray_cluster.is_remote():
        return local_workers()
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return WorkerPlan(2, f"RAY_ADDRESS={os.environ.get('RAY_ADDRESS')} names a Ray cluster; each worker may "
                             "run on its own node")
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return WorkerPlan(max(1, min(2, cpus)), f"the Ray cluster has {cpus} CPU(s) for workers; each worker may "
                                           "run on its own node")


def ray_train_loop(config: dict) -> Any:
    """What each Ray Train worker runs. Ray passes ``train_loop_config`` only to a function with a
    *required* parameter, and :func:`train_func`'s is optional, hence this one-line adapter."""
    return train_func(config)


def run_ray_train(config: TrainConfig | dict | None = None, /, *, max_failures: int = 0,
                  storage_path: str | Path | None = None, name: str | None = None,
                  num_to_keep: int = 2) -> LaunchResult:
    """Ray Train ``TorchTrainer`` with ``config.workers`` workers on the local Ray (started with
    :func:`kit.machine.local_ray.start` if needed), or on the RayJob's cluster when ``RAY_ADDRESS`` is set.
    Locally the trainer is :class:`kit.train.ray_local.LocalTorchTrainer`: torch only in the workers, and
    none of Ray's cluster-only helper actors; :func:`local_workers` says how many workers this machine allows.

    Checkpoints go to ``storage_path`` (default: the kit's work dir, ``ray_results/``),
    keeping the newest ``num_to_keep``; after a worker failure Ray restarts the worker group
    up to ``max_failures`` times and ``train_func`` resumes from the last checkpoint.
    """
    from kit.machine import local_ray as raylocal
    from kit.machine import ray_cluster

    # Inside a RayJob, or from a notebook connected to a remote cluster, the workers are on other nodes.
    local = "RAY_ADDRESS" not in os.environ and not ray_cluster.is_remote()
    cfg = prepare(config, local=local)

    if local:
        for key, value in RAY_TRAIN_SMALL_MACHINE_ENV.items():
            os.environ.setdefault(key, value)
        raylocal.start()
    import ray.train

    if local:
        from kit.train.ray_local import LocalTorchTrainer as TorchTrainer
    else:
        from ray.train.torch import TorchTrainer  # type: ignore[assignment]  # a cluster runs Ray's own

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
            f"resumes from the run's last checkpoint (in storage_path, directory {name}).",
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
