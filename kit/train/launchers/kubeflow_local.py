"""A Kubeflow Trainer job on the SDK's local process backend (torchrun in a fresh venv), and its helpers."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kit import versions
from kit.config.train import TrainConfig
from kit.machine import resources
from kit.train.launchers.base import (
    TAIL_LINES,
    LaunchError,
    LaunchResult,
    LineCallback,
    child_env,
    prepare,
    print_line,
    result_from_output,
)


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


def run_kubeflow_local(config: TrainConfig | dict | None = None, /, *,
                       on_line: LineCallback | None = print_line, timeout_s: float = 900,
                       poll_s: float = 0.5) -> LaunchResult:
    """A Kubeflow Trainer job on the SDK's local process backend (torchrun in a fresh venv).

    The backend creates a venv per job and pip-installs ``torch`` (pinned to the kit's
    version) before torchrun starts: that is most of the start-up time (``details``
    reports it). ``config.workers`` reaches torchrun as ``PET_NPROC_PER_NODE``. The job is
    deleted afterwards, its processes and venv are removed also when it fails.
    """
    cfg = prepare(config, processes=True)
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
