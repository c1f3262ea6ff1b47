"""Launchers: the same :func:`kit.train.loop.train_func`, run four ways, behind one protocol.

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

Each is a :class:`Launcher` (``launcher(config, /, *, options...) -> LaunchResult``), one module
each; :data:`LAUNCHERS` maps the name a :class:`LaunchResult` carries to its function and
:func:`launch` runs one by name. ``python -m kit.train.launchers`` is the RayJob entrypoint.
"""

from __future__ import annotations

from typing import Any

from kit.config.train import TrainConfig
from kit.errors import KitError
from kit.train.launchers.base import (
    Launcher,
    LaunchError,
    LaunchResult,
    child_env,
    prepare,
    private_tmpdir,
    result_from_output,
    stream_command,
)
from kit.train.launchers.in_process import run_in_process
from kit.train.launchers.kubeflow_local import (
    delete_local_job,
    job_pip_index_urls,
    kubeflow_backend,
    kubeflow_train,
    run_kubeflow_local,
    this_python_first,
)
from kit.train.launchers.ray_train import (
    WorkerPlan,
    fault_drill_config,
    local_workers,
    ray_train_workers,
    run_ray_train,
)
from kit.train.launchers.torchrun import run_torchrun, torchrun_command

#: Every launcher by the name its :class:`LaunchResult` carries.
LAUNCHERS: dict[str, Launcher] = {
    "in-process": run_in_process,
    "torchrun": run_torchrun,
    "ray-train": run_ray_train,
    "kubeflow-local": run_kubeflow_local,
}


def launch(name: str, config: TrainConfig | dict[str, Any] | None = None) -> LaunchResult:
    """Run ``config`` with the launcher called ``name`` (a key of :data:`LAUNCHERS`), its options at their
    defaults; call the launcher's function to set them."""
    if name not in LAUNCHERS:
        raise KitError(f"no launcher {name!r}", fix=f"use one of {', '.join(LAUNCHERS)}")
    return LAUNCHERS[name](config)


__all__ = [
    "LAUNCHERS", "LaunchError", "LaunchResult", "Launcher", "WorkerPlan", "child_env", "delete_local_job",
    "fault_drill_config", "job_pip_index_urls", "kubeflow_backend", "kubeflow_train", "launch", "local_workers",
    "prepare", "private_tmpdir", "ray_train_workers", "result_from_output", "run_in_process", "run_kubeflow_local",
    "run_ray_train", "run_torchrun", "stream_command", "this_python_first", "torchrun_command",
]
