"""A :class:`~kit.advise.rules.Plan` as Kubernetes manifests, built by the kit's builders and validated strictly.

One file per concern (``namespaces.yaml``, ``kueue.yaml``, ``runtime.yaml``, ``storage.yaml``, ``training.yaml``,
``serving.yaml``); :func:`render` builds them, :func:`check` runs the validator ``python -m kit validate`` runs
(schemas, admission rules, policy) and the sizing check of ``python -m kit deploy plan`` (everything Kueue may
admit at once, plus the servers without a queue, fits what the nodes leave), :func:`write` writes them.
Nothing is written for a place without Kubernetes (a laptop, Binder, a workstation).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kit import versions
from kit.advise.rules import Plan, capacity
from kit.config.serve import ServeConfig
from kit.config.train import TrainConfig
from kit.deploy import layout, sizing
from kit.errors import KitError
from kit.k8s import requests
from kit.k8s.builders import core, kueue, rbac, runtime, serving, to_yaml, training
from kit.k8s.requests import Requests

HEADER = "# Written by `python -m kit advise` (kit/advise/manifests.py) from the kit's builders.\n"
GPU_FLAVOR = layout.GPU_FLAVOR
Docs = list[dict[str, Any]]


def slug(name: str) -> str:
    """``name`` as a DNS label (namespace and queue names)."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return text or "workload"


def namespaces(plan: Plan) -> list[str]:
    w = plan.workload
    return [f"team-{i:02d}" for i in range(1, w.teams + 1)] if w.teams > 1 else [slug(w.name)]


def _servers(plan: Plan, ns: str) -> Docs:
    """The serving workloads of one namespace (the first: one service per plan)."""
    size = layout.BASE_SIZE
    if plan.server == "kserve":
        return [serving.inferenceservice(namespace=ns, cpu=plan.server_pod.cpu, memory=plan.server_pod.memory,
                                         min_replicas=plan.replicas, max_replicas=plan.max_replicas)]
    if plan.server == "ray-serve":
        config = ServeConfig(model_dir=serving.MODEL_PATH, num_replicas=plan.replicas,
                             max_batch_size=plan.max_batch_size, replica_cpus=(plan.server_pod.cpu_millis - 250) / 1e3)
        return [serving.rayservice(config, namespace=ns, queue=versions.LOCAL_QUEUE, workers=plan.replicas,
                                   max_workers=plan.replicas, worker_cpu=plan.server_pod.cpu,
                                   worker_memory=plan.server_pod.memory, head_cpu=size.head_cpu,
                                   head_memory=size.head_memory)]
    return []


def _training(plan: Plan, ns: str) -> Docs:
    if plan.launcher not in ("trainjob", "rayjob"):
        return []
    cfg = TrainConfig(workers=plan.workers, batch_size=plan.batch_size)
    gpus = plan.worker.gpus
    if plan.launcher == "trainjob":
        return [training.trainjob(cfg, namespace=ns, num_nodes=plan.nodes, cpu=plan.worker.cpu,
                                  memory=plan.worker.memory, gpus=gpus, queue=versions.LOCAL_QUEUE,
                                  runtime=runtime.NAME, models_claim=serving.MODELS_CLAIM)]
    if plan.launcher == "rayjob":
        cfg = TrainConfig(workers=plan.nodes if gpus else plan.workers, batch_size=plan.batch_size)
        return [training.rayjob(cfg, namespace=ns, cpu=plan.worker.cpu, memory=plan.worker.memory, gpus=gpus,
                                head_cpu=layout.BASE_SIZE.head_cpu, head_memory=layout.BASE_SIZE.head_memory,
                                queue=versions.LOCAL_QUEUE, models_claim=serving.MODELS_CLAIM)]
    return []


def _cluster_queue(plan: Plan, ns: str, unqueued: Requests, cohort: str | None) -> dict[str, Any]:
    quota = plan.team_quota - unqueued
    if quota.cpu_millis <= 0 or quota.memory_bytes <= 0:
        raise KitError(f"the servers without a queue ({unqueued}) take all of {ns}'s share ({plan.team_quota})",
                       fix="give the cluster more nodes or serve with fewer replicas")
    quotas: dict[str, dict[str, str | int]] = {versions.DEFAULT_FLAVOR: {"cpu": quota.cpu, "memory": quota.memory}}
    if quota.gpus:
        quotas[GPU_FLAVOR] = {core.GPU_RESOURCE: quota.gpus}
    name = f"{ns}-queue" if cohort else versions.CLUSTER_QUEUE
    cq = kueue.cluster_queue(name, quotas, namespaces=[ns])
    if cohort:  # borrowing inside the cohort, fair sharing and reclaiming (kit.advise.platform says why)
        cq["spec"].update({"cohortName": cohort, "fairSharing": {"weight": "1"},
                           "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"}})
        for group in cq["spec"]["resourceGroups"]:
            for flavor in group["flavors"]:
                for resource in flavor["resources"]:
                    resource["borrowingLimit"] = resource["nominalQuota"]
    return cq


def render(plan: Plan) -> dict[str, Docs]:
    """File name -> documents; empty when the plan's place has no Kubernetes."""
    w = plan.workload
    if not w.kubernetes:
        return {}
    cohort = slug(w.name) if w.teams > 1 else None
    files: dict[str, Docs] = {name: [] for name in ("namespaces.yaml", "kueue.yaml", "runtime.yaml", "storage.yaml",
                                                    "training.yaml", "serving.yaml")}
    files["kueue.yaml"].append(kueue.resource_flavor())
    if plan.team_quota.gpus:
        scheduling = core.gpu_scheduling(1)
        files["kueue.yaml"].append(kueue.resource_flavor(GPU_FLAVOR, scheduling["nodeSelector"],
                                                         scheduling["tolerations"]))
    if cohort:
        files["kueue.yaml"].append({"apiVersion": versions.KUEUE_API_VERSION, "kind": "Cohort",
                                    "metadata": {"name": cohort}, "spec": {}})
    if plan.launcher == "trainjob":
        files["runtime.yaml"].append(runtime.torch_distributed_restricted())
    for index, ns in enumerate(namespaces(plan)):
        servers = _servers(plan, ns) if index == 0 else []
        unqueued = requests.requests_of(servers, peak=True)[requests.UNQUEUED]
        # a team may borrow up to its own share again: its namespace quota leaves room for that
        room = plan.team_quota * (2 if cohort else 1) + unqueued
        files["namespaces.yaml"] += [core.namespace(ns), core.resource_quota(ns, room.cpu, room.memory, room.gpus),
                                     core.limit_range(ns), *core.network_policies(ns), *rbac.learner_access(ns)]
        files["kueue.yaml"] += [_cluster_queue(plan, ns, unqueued, cohort),
                                kueue.local_queue(versions.LOCAL_QUEUE, ns,
                                                  f"{ns}-queue" if cohort else versions.CLUSTER_QUEUE)]
        jobs = _training(plan, ns)
        if jobs or servers:
            files["storage.yaml"].append(serving.shared_claim(ns, access_mode=plan.access_mode,
                                                              storage_class=w.storage_class or None))
        if plan.launcher == "rayjob":
            files["storage.yaml"].append(serving.shared_claim(ns, training.CHECKPOINT_CLAIM, "2Gi", plan.access_mode,
                                                              storage_class=w.storage_class or None))
        if servers and not jobs:  # the servers wait for a model: the kit's Job trains one into the volume
            files["storage.yaml"].append(serving.publish_model_job(ns, queue=versions.LOCAL_QUEUE))
        files["training.yaml"] += jobs
        files["serving.yaml"] += servers
    return {name: _once(docs) for name, docs in files.items() if docs}


def _once(docs: Docs) -> Docs:
    """Each document once: every team's Role binds the same cluster-wide ClusterRole."""
    kept: Docs = []
    for doc in docs:
        if doc not in kept:
            kept.append(doc)
    return kept


def check(files: dict[str, Docs], plan: Plan, crd_dir: Path | str | None = None) -> sizing.Fit | None:
    """Validate strictly (schemas, admission rules, policy) and check the sizing; a problem is a :class:`KitError`."""
    from kit.k8s.validation.validate import validate_documents

    docs = [doc for file_docs in files.values() for doc in file_docs]
    if not docs:
        return None
    problems = validate_documents(docs, "kit advise", crd_dir=crd_dir)
    if problems:
        raise KitError("the advised manifests do not validate:\n" + "\n".join(map(str, problems)),
                       fix="this is a bug in kit/advise: report it with the workload that caused it")
    w = plan.workload
    taken = (*sizing.KIND_SYSTEM, *sizing.OPERATORS) if w.where in ("laptop", "kind") else sizing.OPERATORS
    reserve = sizing.VM_RESERVE if w.where in ("laptop", "kind") else requests.ZERO
    budget = sizing.Budget(capacity(w), taken, reserve)
    return sizing.check_fit(docs, budget)


def plan_and_manifests(data: dict, source: str, crd_dir: Path | str | None = None
                       ) -> tuple[Plan, dict[str, Docs], sizing.Fit | None]:
    """The whole advice for a workload mapping: the plan, its manifests (validated), and their fit."""
    from kit.advise import rules, workload

    plan = rules.advise(workload.from_mapping(data, source))
    files = render(plan)
    return plan, files, check(files, plan, crd_dir=crd_dir)


def write(files: dict[str, Docs], out: Path | str) -> list[Path]:
    """Write each file under ``out``; return the paths."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, docs in files.items():
        path = root / name
        path.write_text(HEADER + to_yaml(docs))
        written.append(path)
    return written
