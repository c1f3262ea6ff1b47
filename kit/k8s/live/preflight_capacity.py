"""Preflight, capacity: do the plan's pods fit the nodes' free capacity and the namespace's ResourceQuota?

A node's free capacity is its ``status.allocatable`` minus the requests of the pods bound to it that
have not finished (the scheduler's own arithmetic: it places by requests, not by usage); a pod's request
is :func:`kit.k8s.requests.pod_requests` (sidecars and init containers counted as the scheduler does).
Only Ready nodes that are not cordoned count, and a pod only goes to nodes whose ``NoSchedule`` /
``NoExecute`` taints it tolerates and whose labels match its ``nodeSelector``.

The plan's pods are placed largest first, each on the first node it fits (first-fit decreasing: a
heuristic, so a "does not fit" is a strong hint, not a proof). ``kit deploy apply`` runs one step at a
time and waits for each job to finish, while servers keep running; so the plan is placed all at once
and, if that fails, step by step (what the servers already hold plus the step): fitting only step by
step is a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kit.k8s.live.kinds import condition
from kit.k8s.live.preflight import FAIL, OK, READ_ACCESS, WARN, Answer, Check, ClusterAPI
from kit.k8s.requests import ZERO, Requests, is_queued, pod_requests, pods_of

AREA = "capacity"
#: Kinds whose pods keep running after their step (everything else runs to completion).
STANDING = frozenset({"RayService", "InferenceService", "RayCluster", "Deployment", "StatefulSet", "DaemonSet"})
_BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
#: A plan: (step name, its documents), in apply order.
Steps = Sequence[tuple[str, list[dict[str, Any]]]]


@dataclass(frozen=True)
class PlanPod:
    """One pod the plan will make: which workload, what it requests, its spec (selector, tolerations)."""

    workload: str
    requests: Requests
    spec: dict[str, Any]
    standing: bool


@dataclass
class Node:
    """A node the plan may use: its labels, taints and what is still free on it."""

    name: str
    labels: dict[str, str]
    taints: list[dict[str, Any]]
    allocatable: Requests
    free: Requests


@dataclass(frozen=True)
class PlanIndex:
    """What the plan's pods take from elsewhere in the plan."""

    #: ``Kind/name`` -> training runtime: a TrainJob's pods come from its runtime's template
    runtimes: dict[str, dict[str, Any]]
    #: the ResourceFlavors' tolerations: Kueue adds its flavor's to each pod it admits (Kueue v0.19.2
    #: ``pkg/podset/podset.go``, ``FromAssignment``), so a queued GPU pod may land on tainted GPU nodes
    tolerations: list[dict[str, Any]]

    @classmethod
    def of(cls, steps: Steps) -> PlanIndex:
        documents = [doc for _, docs in steps for doc in docs]
        return cls({f"{d['kind']}/{d['metadata']['name']}": d for d in documents
                    if d.get("kind") in ("ClusterTrainingRuntime", "TrainingRuntime")},
                   [t for d in documents if d.get("kind") == "ResourceFlavor"
                    for t in (d.get("spec") or {}).get("tolerations") or []])


def plan_pods(documents: list[dict[str, Any]], index: PlanIndex) -> list[PlanPod]:
    """Every pod the documents make, one entry per pod (replicas expanded)."""
    found = []
    for doc in documents:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        for count, spec in pods_of(doc, index.runtimes):
            if is_queued(doc) and index.tolerations:
                spec = {**spec, "tolerations": [*(spec.get("tolerations") or []), *index.tolerations]}
            found += [PlanPod(name, pod_requests(spec), spec, doc["kind"] in STANDING)] * count
    return found


def _schedulable(node: dict[str, Any]) -> bool:
    ready = condition(node, "Ready")
    return bool(ready and ready.get("status") == "True") and not (node.get("spec") or {}).get("unschedulable")


def nodes_with_free(nodes: Answer, pods: Answer) -> list[Node]:
    """The schedulable nodes, each with allocatable minus the requests of its unfinished pods."""
    used: dict[str, Requests] = {}
    for pod in pods.items():
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            used[node] = used.get(node, ZERO) + pod_requests(pod["spec"])
    found = []
    for node in nodes.items():
        if not _schedulable(node):
            continue
        name = node["metadata"]["name"]
        allocatable = Requests.of_resources((node.get("status") or {}).get("allocatable"))
        found.append(Node(name, dict(node["metadata"].get("labels") or {}), list(node["spec"].get("taints") or []),
                          allocatable, allocatable - used.get(name, ZERO)))
    return found


def _tolerates(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    """Kubernetes' toleration matching (``k8s.io/api/core/v1`` ``Toleration.ToleratesTaint``), for one taint."""
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        if toleration.get("operator", "Equal") == "Exists":
            if not toleration.get("key") or toleration["key"] == taint.get("key"):
                return True
        elif toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def may_run_on(pod: PlanPod, node: Node) -> bool:
    """The pod's nodeSelector matches the node, and it tolerates the node's scheduling taints."""
    selector = pod.spec.get("nodeSelector") or {}
    if any(node.labels.get(key) != value for key, value in selector.items()):
        return False
    tolerations = list(pod.spec.get("tolerations") or [])
    return all(_tolerates(taint, tolerations) for taint in node.taints if taint.get("effect") in _BLOCKING_EFFECTS)


def _size(pod: PlanPod) -> tuple[int, int, int]:
    return pod.requests.gpus, pod.requests.cpu_millis, pod.requests.memory_bytes


def place(pods: Sequence[PlanPod], nodes: Sequence[Node]) -> list[PlanPod]:
    """First-fit decreasing on copies of the nodes' free capacity; the pods that found no node."""
    free = {node.name: node.free for node in nodes}
    unplaced = []
    for pod in sorted(pods, key=_size, reverse=True):
        target = next((n for n in nodes if may_run_on(pod, n) and pod.requests.fits(free[n.name])), None)
        if target is None:
            unplaced.append(pod)
        else:
            free[target.name] = free[target.name] - pod.requests
    return unplaced


def _total(pods: Sequence[PlanPod]) -> Requests:
    return sum((pod.requests for pod in pods), ZERO)


def concurrent_sets(steps: Steps) -> list[tuple[str, list[PlanPod]]]:
    """Per step, the pods running while it runs: the standing pods of earlier steps plus its own."""
    standing: list[PlanPod] = []
    sets = []
    index = PlanIndex.of(steps)
    for name, documents in steps:
        own = plan_pods(documents, index)
        sets.append((name, standing + own))
        standing = standing + [pod for pod in own if pod.standing]
    return sets


def _describe(unplaced: Sequence[PlanPod]) -> str:
    counts: dict[tuple[str, Requests], int] = {}
    for pod in unplaced:
        counts[(pod.workload, pod.requests)] = counts.get((pod.workload, pod.requests), 0) + 1
    return "; ".join(f"{n} × {workload} ({amount})" for (workload, amount), n in counts.items())


FREE_UP = ("free capacity (`kubectl get pods -A -o wide` shows what holds it), add nodes, or plan for a "
           "smaller overlay (`--profile kind`)")


def check_headroom(steps: Steps, nodes: list[Node]) -> list[Check]:
    """The nodes, then whether the plan's pods fit them all at once, or else step by step."""
    if not nodes:
        return [Check(AREA, "nodes", FAIL, "no Ready, schedulable node", "uncordon or add nodes (`kubectl get nodes`)")]
    free, allocatable = sum((n.free for n in nodes), ZERO), sum((n.allocatable for n in nodes), ZERO)
    checks = [Check(AREA, "nodes", OK, f"{len(nodes)} Ready and uncordoned; free {free} of {allocatable}")]
    index = PlanIndex.of(steps)
    everything = [pod for _, documents in steps for pod in plan_pods(documents, index)]
    if not everything:
        return checks
    unplaced = place(everything, nodes)
    if not unplaced:
        checks.append(Check(AREA, "headroom", OK, f"all {len(everything)} pods fit at once ({_total(everything)})"))
        return checks
    short = [(name, place(pods, nodes), pods) for name, pods in concurrent_sets(steps)]
    failing = [(name, left, pods) for name, left, pods in short if left]
    if failing:
        name, left, pods = failing[0]
        checks.append(Check(AREA, "headroom", FAIL,
                            f"step {name} needs {_total(pods)} for {len(pods)} pods; no node has room for "
                            f"{_describe(left)}", FREE_UP))
    else:
        checks.append(Check(AREA, "headroom", WARN,
                            f"the {len(everything)} pods ({_total(everything)}) do not fit at once "
                            f"({_describe(unplaced)} left over), but each step fits while the servers run",
                            "apply one step at a time and let each job finish (`python -m kit deploy apply` does)"))
    return checks


_FIELDS = {"cpu": "cpu_millis", "memory": "memory_bytes", "gpu": "gpus"}


def _quota_amounts(amounts: dict[str, Any]) -> tuple[Requests, set[str]]:
    """The cpu, memory and GPU *requests* a quota's ``hard`` or ``used`` names, and which of the three it names
    (``cpu`` and ``requests.cpu`` mean the same; ``requests.nvidia.com/gpu`` and the like are GPUs)."""
    mapped: dict[str, Any] = {}
    for key, value in amounts.items():
        name = key.removeprefix("requests.")
        if name in ("cpu", "memory") or (key.startswith("requests.") and key.endswith("/gpu")):
            mapped[name] = value
    named = {"gpu" if key.endswith("/gpu") else key for key in mapped}
    return Requests.of_resources(mapped), named


def quota_room(quota: dict[str, Any], planned: bool = False) -> tuple[Requests, set[str], int | None]:
    """(what is left of a quota, which of cpu/memory/gpu it limits, pods left or None); ``planned``: a quota
    of the plan, not applied yet (its ``spec.hard``, nothing used)."""
    status = quota.get("status") or {}
    hard = status.get("hard") if not planned else None  # a quota just created has no status yet
    hard = hard or (quota.get("spec") or {}).get("hard") or {}
    used = {} if planned else status.get("used") or {}
    limit, limited = _quota_amounts(hard)
    pods_left = int(hard["pods"]) - int(used.get("pods", 0)) if "pods" in hard else None
    return limit - _quota_amounts(used)[0], limited, pods_left


def _shown(room: Requests, limited: set[str]) -> str:
    shown = {"cpu": f"cpu {room.cpu}", "memory": f"memory {room.memory}", "gpu": f"{room.gpus} gpu"}
    return ", ".join(shown[name] for name in sorted(limited))


def _over(total: Requests, room: Requests, limited: set[str]) -> list[str]:
    return [name for name in sorted(limited) if getattr(total, _FIELDS[name]) > getattr(room, _FIELDS[name])]


def check_quota(steps: Steps, namespace: str, quotas: Answer) -> list[Check]:
    """Each ResourceQuota of the namespace (or, before it exists, the plan's own) against each step's pods."""
    if not quotas.ok:
        return [Check(AREA, "quota", WARN, f"cannot list ResourceQuotas in {namespace}: {quotas.message}",
                      f"ask for read access to resourcequotas in {namespace}")]
    found = [(q, False, "") for q in quotas.items()]
    if not found:
        found = [(doc, True, " (the plan's own, not applied yet)") for _, documents in steps for doc in documents
                 if doc.get("kind") == "ResourceQuota"]
    if not found:
        return [Check(AREA, "quota", OK, f"no ResourceQuota in {namespace}")]
    checks = []
    for quota, planned, note in found:
        name = f"quota {quota['metadata']['name']}"
        room, limited, pods_left = quota_room(quota, planned)
        over = []
        for step, pods in concurrent_sets(steps):
            if short := _over(_total(pods), room, limited):
                over.append(f"step {step} needs {_total(pods)}: {', '.join(short)} over what is left "
                            f"({_shown(room, limited)})")
            elif pods_left is not None and len(pods) > pods_left:
                over.append(f"step {step} runs {len(pods)} pods, {pods_left} left")
        if over:
            checks.append(Check(AREA, name, FAIL, f"{over[0]}{note}",
                                f"raise the quota (`kubectl -n {namespace} edit resourcequota "
                                f"{quota['metadata']['name']}`) or delete finished work in {namespace}"))
        else:
            limits = ", ".join(sorted(limited) + (["pods"] if pods_left is not None else [])) or "nothing counted"
            checks.append(Check(AREA, name, OK, f"every step fits (it limits {limits}){note}"))
    return checks


NODES = "/api/v1/nodes"
PODS = "/api/v1/pods?fieldSelector=status.phase!=Succeeded,status.phase!=Failed"


def check_capacity(api: ClusterAPI, steps: Steps, namespace: str) -> tuple[list[Check], int | None]:
    """Headroom on the nodes and room in the quota; also how many nodes any pod may use (Ready, uncordoned,
    untainted; None: not readable), which decides whether ReadWriteOnce volumes are a risk."""
    nodes, pods = api.get_json(NODES), api.get_json(PODS)
    quota = check_quota(steps, namespace, api.get_json(f"/api/v1/namespaces/{namespace}/resourcequotas"))
    if not (nodes.ok and pods.ok):
        why = nodes.message if not nodes.ok else pods.message
        return [Check(AREA, "nodes", WARN, f"cannot list nodes and pods: {why}",
                      READ_ACCESS),
                *quota], None
    usable = nodes_with_free(nodes, pods)
    untainted = [n for n in usable if not any(t.get("effect") in _BLOCKING_EFFECTS for t in n.taints)]
    return [*check_headroom(steps, usable), *quota], len(untainted)
