"""Exercises of stage 05 (Kubeflow Trainer): submit your own job with ``TrainerClient``, then queue it on a cluster.

05.1 runs the learner's ``submit(client, runtime)`` against the SDK's local process backend:
before the job starts, the check looks at the ``CustomTrainer`` it was given (what the
SDK ships and what the job's environment will lack); afterwards it reads the job's logs.
"""

from __future__ import annotations

import builtins
import dis
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from types import CodeType
from typing import Any

from kit.course.exercises import NotYetRight, exercise, expect_manifest, listed, validation_problems
from kit.versions import LOCAL_QUEUE, NAMESPACE, QUEUE_LABEL

#: Processes the job of exercise 05.1 must run, and the line each prints.
PROCESSES = 2
RANK_LINE = re.compile(r"rank (\d+) of (\d+)")
JOB_TIMEOUT_S = 900


def make_client():
    """The client the check gives the learner's ``submit``: the SDK's local process backend (tests replace it)."""
    from kubeflow.trainer import TrainerClient

    from kit.train.launchers import kubeflow_backend

    return TrainerClient(backend_config=kubeflow_backend("local"))


def _codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def notebook_globals(func: Callable) -> list[str]:
    """Names ``func`` reads from its module's globals: the SDK ships only its source, so they are missing in the job."""
    code = getattr(func, "__code__", None)
    if code is None:
        return []
    names = {ins.argval for c in _codes(code) for ins in dis.get_instructions(c)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    return sorted(name for name in names if isinstance(name, str) and not hasattr(builtins, name))


def _precheck(trainer: Any) -> None:
    """What the check can say about the CustomTrainer before the job runs."""
    from kubeflow.trainer import CustomTrainer

    if not isinstance(trainer, CustomTrainer):
        raise NotYetRight(f"client.train(trainer=...) got a {type(trainer).__name__}: the local backend runs a "
                          "CustomTrainer(func=...)")
    missing = notebook_globals(trainer.func)
    if missing:
        raise NotYetRight(f"{trainer.func.__name__} uses {', '.join(missing)} from the notebook: the SDK copies only "
                          "the function's source into the job, so import what it needs inside the function")
    if not trainer.packages_to_install:
        raise NotYetRight("packages_to_install is empty: the job's fresh venv then gets nothing, not even torch, "
                          "and torchrun (which the torch runtime starts) is part of torch")
    env = trainer.env or {}
    if "PATH" not in env or "HOME" not in env:
        raise NotYetRight("the job's environment is exactly `env` (PATH, HOME and the rest included): build it with "
                          "kit.train.launchers.child_env(...) and add to it")
    if env.get("PET_NPROC_PER_NODE") != str(PROCESSES):
        raise NotYetRight(f"PET_NPROC_PER_NODE is {env.get('PET_NPROC_PER_NODE')!r}: torchrun reads the number of "
                          f"processes from it; the job must start {PROCESSES}")


class _Spy:
    """The real client, except that ``train`` checks its trainer first and remembers the job."""

    def __init__(self, client: Any, tmpdir: str) -> None:
        self._client = client
        self.tmpdir = tmpdir  # the job's TMPDIR: torchrun leaves torchelastic_* directories there
        self.jobs: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def train(self, *args: Any, **kwargs: Any) -> str:
        trainer: Any = kwargs.get("trainer", args[2] if len(args) > 2 else None)
        _precheck(trainer)
        trainer.env = {**trainer.env, "TMPDIR": self.tmpdir}
        from kit.train.launchers import this_python_first

        with this_python_first():  # the local backend builds the venv with the first `python` on PATH
            name = self._client.train(*args, **kwargs)
        self.jobs.append(name)
        return name


def run_submit(submit: Callable, client: Any) -> list[str]:
    """Call ``submit(spy, runtime)``, wait for the job, return its log lines; the job is deleted afterwards."""
    from kit.train.launchers import delete_local_job

    spy = _Spy(client, tempfile.mkdtemp(prefix="kit-kfjob-"))
    runtime = client.get_runtime("torch-distributed")
    try:
        try:
            name = submit(spy, runtime)
        except NotYetRight:
            raise
        except Exception as error:  # the learner's code may raise anything
            raise NotYetRight(f"submit(client, runtime) raised {type(error).__name__}: {error}") from None
        if not spy.jobs:
            raise NotYetRight("submit(client, runtime) submitted no job: call client.train(runtime=..., trainer=...)")
        if name != spy.jobs[-1]:
            raise NotYetRight(f"submit returned {name!r}, not the job's name: return what client.train(...) returns")
        job = client.wait_for_job_status(name, status={"Complete", "Failed"}, timeout=JOB_TIMEOUT_S,
                                         polling_interval=1)
        logs = list(client.get_job_logs(name))
        if job.status != "Complete":
            tail = [line for line in logs if line.strip()][-3:]
            raise NotYetRight(f"the job ended {job.status}; its last lines:{listed(tail)}")
        return logs
    finally:
        for name in spy.jobs:
            delete_local_job(client, name)
        shutil.rmtree(spy.tmpdir, ignore_errors=True)


#: The log lines of the last job exercise 05.1 ran, for the notebook to show.
last_logs: list[str] = []


def rank_lines(logs: list[str] | None = None) -> list[str]:
    """The sorted "rank R of W" reports in ``logs`` (default: the last 05.1 job's), one per print.

    Two ranks print at the same moment to one stream, so two reports can share a log line.
    """
    lines = last_logs if logs is None else logs
    return sorted(match[0] for line in lines for match in RANK_LINE.finditer(line))


def _reference_submit():
    from kubeflow.trainer import CustomTrainer

    from kit import versions
    from kit.train import launchers

    def report_rank():
        import os

        print(f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}")

    def submit(client, runtime):
        trainer = CustomTrainer(
            func=report_rank,
            packages_to_install=[versions.requirement("torch")],
            pip_index_urls=launchers.job_pip_index_urls(),
            env=launchers.child_env(PROCESSES, PET_NPROC_PER_NODE=str(PROCESSES), PET_STANDALONE="1"),
        )
        return client.train(runtime=runtime, trainer=trainer)

    return submit


@exercise(
    "05.first_job",
    "TrainerClient: your own job on two processes",
    "Write a function that imports what it uses inside itself and prints f\"rank {RANK} of {WORLD_SIZE}\" from "
    "os.environ. In submit, build CustomTrainer(func=..., packages_to_install=[kit.versions.requirement('torch')], "
    "pip_index_urls=kit.train.launchers.job_pip_index_urls(), env=kit.train.launchers.child_env(2, "
    "PET_NPROC_PER_NODE='2', PET_STANDALONE='1')) and return client.train(runtime=runtime, trainer=trainer).",
    reference=_reference_submit,
)
def check_first_job(submit) -> None:
    if not callable(submit):
        raise NotYetRight(f"`submit` is a {type(submit).__name__}; write a function submit(client, runtime)")
    logs = run_submit(submit, make_client())
    last_logs[:] = logs
    ranks = {(int(m[1]), int(m[2])) for m in map(RANK_LINE.fullmatch, rank_lines(logs)) if m}
    if not ranks:
        raise NotYetRight("the job completed but printed no 'rank R of W' line: print it from the function")
    worlds = {world for _, world in ranks}
    if worlds != {PROCESSES}:
        raise NotYetRight(f"the job reported world size {sorted(worlds)}, expected {PROCESSES}")
    if {rank for rank, _ in ranks} != set(range(PROCESSES)):
        raise NotYetRight(f"only rank(s) {sorted(r for r, _ in ranks)} printed; every process runs the function")


# --------------------------------------------------------------------------- 05.2, stretch: the cluster side


def queued_two_node_reference() -> dict:
    from kit.k8s.builders import runtime, training

    job = training.trainjob({"epochs": 2, "workers": 2}, name="two-nodes", namespace=NAMESPACE, runtime=runtime.NAME,
                            num_nodes=2, queue=LOCAL_QUEUE)
    return job


@exercise(
    "05.two_node_trainjob",
    "Stretch: the same job as a two-node TrainJob in the team's queue",
    "kit.k8s.builders.training.trainjob(config, name=..., namespace=..., runtime=..., num_nodes=..., queue=...) "
    f"builds it: two nodes, the kit's restricted runtime (kit.k8s.builders.runtime.NAME), queue {LOCAL_QUEUE!r}.",
    reference=queued_two_node_reference,
)
def check_two_node_trainjob(job) -> None:
    from kit.k8s.builders import runtime

    expect_manifest(job, "TrainJob")
    spec = job.get("spec") or {}
    if (spec.get("trainer") or {}).get("numNodes") != 2:
        raise NotYetRight(f"spec.trainer.numNodes is {(spec.get('trainer') or {}).get('numNodes')!r}; the job "
                          "runs on two nodes (one pod each)")
    if (spec.get("runtimeRef") or {}).get("name") != runtime.NAME:
        raise NotYetRight(f"spec.runtimeRef names {(spec.get('runtimeRef') or {}).get('name')!r}: the kit's clusters "
                          f"install {runtime.NAME!r}, whose pods pass the namespace's restricted policy")
    if ((job.get("metadata") or {}).get("labels") or {}).get(QUEUE_LABEL) != LOCAL_QUEUE:
        raise NotYetRight(f"no {QUEUE_LABEL}={LOCAL_QUEUE} label: without it Kueue never sees the job")
    problems = validation_problems([runtime.torch_distributed_restricted(), job], queue=LOCAL_QUEUE)
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s):{listed(problems)}")
