"""Kubeflow Trainer v2.3.0 admission: the TrainJob, TrainingRuntime and ClusterTrainingRuntime webhooks
(kubeflow/trainer@v2.3.0 ``pkg/webhooks/``) and the runtime plugins' ``Validate`` they run
(``pkg/runtime/framework/plugins/``), plus the TrainJob CRD's CEL rules the schema check skips.

The TrainJob webhook validates against the runtime it references: the rules that need the runtime
use the one in the same manifest set, or :data:`UPSTREAM_RUNTIMES` for the runtimes Trainer installs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.k8s.validation.admission.fields import dicts, dig, integer
from kit.k8s.validation.admission.names import dns1035_label, domain_prefixed_path
from kit.k8s.validation.problems import PathParts, short_value
from kit.versions import TRAINER_GROUP

Found = list[tuple[PathParts, str]]

#: ``RuntimeRefToRuntimeRegistryKey`` keys registered in pkg/runtime/core/registry.go.
RUNTIME_KINDS = ("ClusterTrainingRuntime", "TrainingRuntime")
#: ML policy -> the env names its plugin sets and a TrainJob must not (pkg/constants/constants.go:
#: ``TorchRunReservedEnvNames``, ``MPIReservedEnvNames``, ``XGBoostReservedEnvNames``).
RESERVED_ENV = {
    "torch": ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"),
    "mpi": ("OMPI_MCA_orte_default_hostfile", "OMPI_MCA_plm_rsh_args", "OMPI_MCA_orte_keep_fqdn_hostnames",
            "OMPI_MCA_orte_set_default_slots"),
    "xgboost": ("DMLC_TRACKER_URI", "DMLC_TRACKER_PORT", "DMLC_TASK_ID", "DMLC_NUM_WORKER"),
}
#: Containers a runtime patch may not give env to (``constants.DatasetInitializer/ModelInitializer/Node``).
NO_ENV_CONTAINERS = ("dataset-initializer", "model-initializer", "node")
#: ``trainer.kubeflow.org/trainjob-ancestor-step`` value -> the container that job must have
#: (``expectedContainerNames`` in pkg/webhooks/trainingruntime_webhook.go).
ANCESTOR_LABEL = f"{TRAINER_GROUP}/trainjob-ancestor-step"
ANCESTOR_CONTAINERS = {"trainer": "node", "model-initializer": "model-initializer",
                       "dataset-initializer": "dataset-initializer"}
#: ``spec.managedBy`` values the TrainJob CRD's CEL rule allows.
MANAGED_BY = ("trainer.kubeflow.org/trainjob-controller", "kueue.x-k8s.io/multikueue")


@dataclass(frozen=True)
class RuntimeShape:
    """What the TrainJob webhook reads from a runtime: replicated job -> container names, its ML policy."""

    jobs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    policy: str | None = None


#: The runtimes Trainer's manifests install (manifests/base/runtimes/torch_distributed.yaml at v2.3.0),
#: for a TrainJob whose runtime is not among the manifests checked.
UPSTREAM_RUNTIMES = {
    ("ClusterTrainingRuntime", "torch-distributed"): RuntimeShape({"node": frozenset({"node"})}, "torch"),
}


def runtime_shape(body: dict[str, Any]) -> RuntimeShape:
    """The :class:`RuntimeShape` of a TrainingRuntime or ClusterTrainingRuntime manifest."""
    spec = dig(body, "spec")
    jobs: dict[str, frozenset[str]] = {}
    for job in _replicated_jobs(spec.get("template")):
        pod = dig(job, "template", "spec", "template", "spec")
        jobs[str(job.get("name"))] = frozenset(_container_names(pod))
    policies = [name for name in RESERVED_ENV if isinstance(dig(spec, "mlPolicy").get(name), dict)]
    return RuntimeShape(jobs, policies[0] if policies else None)


def trainjob_problems(body: dict[str, Any], runtime: RuntimeShape | None) -> Found:
    """All TrainJob rules; ``runtime`` is the referenced runtime's shape when known."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return []
    found = trainjob_name_problems(body) + runtime_ref_problems(spec) + managed_by_problems(spec)
    found += runtime_patch_manager_problems(spec)
    if runtime is not None:
        found += runtime_patch_target_problems(spec, runtime)
        if runtime.policy is not None:
            found += reserved_env_problems(spec, runtime.policy)
    return found


def trainjob_name_problems(body: dict[str, Any]) -> Found:
    """A TrainJob name is an RFC 1035 label of at most 63 characters: the CEL rules on the root of
    trainer.kubeflow.org_trainjobs.yaml (kubeflow/trainer@v2.3.0 ``TrainJob`` in pkg/apis/trainer/v1alpha1)."""
    name = (body.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        return []
    return [(("metadata", "name"), f"TrainJob name {name!r}: {reason}") for reason in dns1035_label(name)]


def runtime_ref_problems(spec: dict[str, Any]) -> Found:
    """``spec.runtimeRef`` names a registered runtime kind of group trainer.kubeflow.org, else
    ``unsupported runtime`` (``TrainJobValidator.ValidateCreate`` in pkg/webhooks/trainjob_webhook.go)."""
    ref = spec.get("runtimeRef")
    if not isinstance(ref, dict):
        return []
    group, kind = ref.get("apiGroup", TRAINER_GROUP), ref.get("kind", "ClusterTrainingRuntime")
    if group == TRAINER_GROUP and kind in RUNTIME_KINDS:
        return []
    return [(("spec", "runtimeRef"), f"unsupported runtime {kind}.{group}: the Trainer webhook knows "
                                     f"{' and '.join(k + '.' + TRAINER_GROUP for k in RUNTIME_KINDS)}")]


def managed_by_problems(spec: dict[str, Any]) -> Found:
    """``spec.managedBy`` is one of :data:`MANAGED_BY` (CEL rule on ``spec.managedBy`` in
    trainer.kubeflow.org_trainjobs.yaml, kubeflow/trainer@v2.3.0)."""
    value = spec.get("managedBy")
    if value is None or value in MANAGED_BY:
        return []
    return [(("spec", "managedBy"), f"managedBy must be {' or '.join(MANAGED_BY)}; got {short_value(value)}")]


def runtime_patch_manager_problems(spec: dict[str, Any]) -> Found:
    """Each ``runtimePatches[].manager`` is a domain-prefixed path (``validation.IsDomainPrefixedPath`` in
    ``JobSet.Validate``, pkg/runtime/framework/plugins/jobset/jobset.go) and unique (the CRD's
    ``x-kubernetes-list-map-keys: [manager]``). The field is immutable: choose it once
    (the kit's is ``kit.versions.RUNTIME_PATCH_MANAGER``)."""
    found: Found = []
    seen: set[str] = set()
    for i, patch in enumerate(dicts(spec.get("runtimePatches"))):
        manager = patch.get("manager")
        if not isinstance(manager, str):
            continue
        path = ("spec", "runtimePatches", i, "manager")
        found += [(path, f"manager {manager!r} {reason}") for reason in domain_prefixed_path(manager)]
        if manager in seen:
            found.append((path, f"manager {manager!r} appears twice: runtimePatches are keyed by manager"))
        seen.add(manager)
    return found


def runtime_patch_target_problems(spec: dict[str, Any], runtime: RuntimeShape) -> Found:
    """A runtime patch names replicated jobs and containers the runtime has, and gives no env to the
    node and initializer containers (``JobSet.Validate``, pkg/runtime/framework/plugins/jobset/jobset.go)."""
    found: Found = []
    for i, patch in enumerate(dicts(spec.get("runtimePatches"))):
        for j, job in enumerate(_replicated_jobs(dig(patch, "trainingRuntimeSpec", "template"))):
            path: PathParts = ("spec", "runtimePatches", i, "trainingRuntimeSpec", "template", "spec",
                               "replicatedJobs", j)
            name = job.get("name")
            if name not in runtime.jobs:
                found.append(((*path, "name"), f"replicated job {short_value(name)} is not in the runtime "
                                               f"(it has {', '.join(sorted(runtime.jobs)) or 'none'})"))
                continue
            pod = dig(job, "template", "spec", "template", "spec")
            for list_name in ("initContainers", "containers"):
                for k, container in enumerate(dicts(pod.get(list_name))):
                    where = (*path, "template", "spec", "template", "spec", list_name, k)
                    cname = container.get("name")
                    known = ", ".join(sorted(runtime.jobs[str(name)]))
                    if cname not in runtime.jobs[str(name)]:
                        found.append(((*where, "name"), f"container {short_value(cname)} is not in the runtime "
                                                        f"job {name} (it has {known})"))
                    elif list_name == "containers" and container.get("env") and cname in NO_ENV_CONTAINERS:
                        found.append(((*where, "env"), "a runtime patch must not set env for the "
                                                       f"{', '.join(NO_ENV_CONTAINERS)} containers: "
                                                       "use spec.trainer.env"))
    return found


def reserved_env_problems(spec: dict[str, Any], policy: str) -> Found:
    """``spec.trainer.env`` must not set what the runtime's ML plugin sets: torchrun's ``PET_*`` (``Torch.Validate``,
    plugins/torch/torch.go), OpenMPI's ``OMPI_MCA_*`` (``MPI.Validate``, plugins/mpi/mpi.go), XGBoost's ``DMLC_*``
    (``XGBoost.Validate``, plugins/xgboost/xgboost.go)."""
    env = dicts(dig(spec, "trainer").get("env"))
    reserved = sorted({str(e.get("name")) for e in env if e.get("name") in RESERVED_ENV[policy]})
    if not reserved:
        return []
    return [(("spec", "trainer", "env"), f"must not have reserved envs, invalid envs configured: {reserved} "
                                         f"(the {policy} runtime sets them)")]


def training_runtime_problems(body: dict[str, Any]) -> Found:
    """A replicated job labelled ``trainjob-ancestor-step`` has replicas 1 and its required container
    (``validateReplicatedJobs`` in pkg/webhooks/trainingruntime_webhook.go, used by both runtime webhooks)."""
    found: Found = []
    spec = dig(body, "spec")
    for i, job in enumerate(_replicated_jobs(spec.get("template"))):
        ancestor = (dig(job, "template", "metadata").get("labels") or {}).get(ANCESTOR_LABEL)
        if ancestor not in ANCESTOR_CONTAINERS:
            continue
        path: PathParts = ("spec", "template", "spec", "replicatedJobs", i)
        replicas = integer(job.get("replicas", 1))
        if replicas is not None and replicas != 1:
            found.append(((*path, "replicas"), f"replicas of the {ancestor} job always must be 1; got {replicas}"))
        pod = dig(job, "template", "spec", "template", "spec")
        required = ANCESTOR_CONTAINERS[ancestor]
        if required not in {c.get("name") for c in dicts(pod.get("containers"))}:
            found.append(((*path, "template", "spec", "template", "spec", "containers"),
                          f"must contain the required container for the ancestor {ancestor}: {required!r}"))
    return found


def _replicated_jobs(template: Any) -> list[dict[str, Any]]:
    return dicts(dig(template, "spec").get("replicatedJobs"))


def _container_names(pod: dict[str, Any]) -> list[str]:
    return [str(c.get("name")) for key in ("initContainers", "containers") for c in dicts(pod.get(key))]
