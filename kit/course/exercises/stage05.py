"""Exercises of stage 05 (Kubeflow Trainer). Each check runs the kit's validator and policy on the answer."""

from __future__ import annotations

import copy

from kit.course.exercises import NotYetRight, exercise
from kit.k8s.builders import runtime, training
from kit.k8s.validation import policy, validate
from kit.versions import LOCAL_QUEUE, NAMESPACE, QUEUE_LABEL, TRAIN_JOB

#: The LocalQueue and namespace of the kit's clusters (``clusters/``): TrainJobs name the queue with Kueue's label.
QUEUE = LOCAL_QUEUE


def unqueued_trainjob() -> dict:
    """A TrainJob on the kit's restricted runtime, without the Kueue queue label."""
    return training.trainjob({"epochs": 2}, name=TRAIN_JOB, namespace=NAMESPACE, runtime=runtime.NAME)


def _queued_trainjob() -> dict:
    job = unqueued_trainjob()
    job["metadata"]["labels"][QUEUE_LABEL] = QUEUE
    return job


def _misplaced_label(job: dict) -> str | None:
    """Where the queue name went instead of ``metadata.labels``, if it went somewhere else."""
    metadata = job.get("metadata") or {}
    if QUEUE_LABEL in (metadata.get("annotations") or {}):
        return "metadata.annotations"
    if QUEUE_LABEL in (job.get("spec") or {}) or QUEUE_LABEL in (job.get("spec") or {}).get(
            "trainer", {}):
        return "spec"
    if QUEUE_LABEL in metadata:
        return "metadata (as a field of its own)"
    return None


@exercise(
    "05.queue_label",
    "Kueue: send the TrainJob to the team's queue",
    f"Kueue picks up a workload by one label in metadata.labels: "
    f"{QUEUE_LABEL} = the LocalQueue's name ({QUEUE!r}).",
    reference=_queued_trainjob,
)
def check_queue_label(job) -> None:
    if not isinstance(job, dict):
        raise NotYetRight(f"expected the TrainJob as a dict, got {type(job).__name__}")
    if job.get("kind") != "TrainJob":
        raise NotYetRight(f"expected kind TrainJob, got {job.get('kind')!r}")
    misplaced = _misplaced_label(job)
    if misplaced:
        raise NotYetRight(f"the queue name is in {misplaced}: Kueue reads it only from metadata.labels")
    original = unqueued_trainjob()
    if job.get("spec") != original["spec"]:
        raise NotYetRight("the TrainJob's spec changed: only metadata.labels needs the queue")
    problems = validate.validate_documents([job], queue=QUEUE)
    if problems:
        listed = "\n  ".join(f"{p.path}: {p.message}" for p in problems)
        raise NotYetRight(f"{len(problems)} problem(s) remain:\n  {listed}")


def _runtime_for(name: str) -> dict | None:
    if name == runtime.NAME:
        return runtime.torch_distributed_restricted()
    if name == runtime.UPSTREAM_NAME:
        return runtime.upstream_torch_distributed()
    return None


@exercise(
    "05.restricted_runtime",
    "Runtimes: pick the ClusterTrainingRuntime whose pods pass restricted",
    "A TrainJob created by TrainerClient carries no pod security of its own: its pods are the "
    "runtime's. Compare kit.k8s.builders.runtime.UPSTREAM_NAME and kit.k8s.builders.runtime.NAME.",
    reference=lambda: runtime.NAME,
)
def check_restricted_runtime(name) -> None:
    if not isinstance(name, str):
        raise NotYetRight(f"expected the runtime's name as a string, got {type(name).__name__}")
    manifest = _runtime_for(name)
    if manifest is None:
        raise NotYetRight(
            f"no ClusterTrainingRuntime named {name!r} here: the kit knows {runtime.UPSTREAM_NAME!r} "
            f"(upstream's default) and {runtime.NAME!r}"
        )
    problems = policy.check_policy([manifest])
    if problems:
        raise NotYetRight(
            f"{name!r} fails the restricted policy with {len(problems)} problem(s), e.g. "
            f"{problems[0].path}: {problems[0].message}. A namespace enforcing restricted refuses its pods"
        )
    job = copy.deepcopy(unqueued_trainjob())
    job["spec"]["runtimeRef"]["name"] = name
    job["spec"].pop("runtimePatches", None)  # as TrainerClient creates it: no pod security of its own
    problems = validate.validate_documents([manifest, job])
    if problems:
        raise NotYetRight(f"the runtime and a TrainJob on it have {len(problems)} problem(s): {problems[0]}")
