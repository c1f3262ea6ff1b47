"""Kueue resources (``kueue.x-k8s.io/v1beta2``, Kueue v0.19): quota and queueing for batch work.

- a **ResourceFlavor** names a kind of capacity (plain CPU nodes, a GPU model, spot nodes);
- a **ClusterQueue** holds quota per flavor and admits workloads while they fit;
- a **LocalQueue** is the namespaced entry point: workloads name it with the label
  ``kueue.x-k8s.io/queue-name``.

Kueue admits a workload *whole* or not at all, against the ClusterQueue's quota (gang
admission): a RayCluster of three pods is admitted only when the quota covers all three,
instead of two pods holding quota while the third waits. Admission is quota, not
scheduling: admitted pods can still wait for nodes; holding quota only until every pod is
running is ``waitForPodsReady`` in Kueue's configuration (off by default).
:func:`simulate_admission` shows the rule without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kit.k8s import traverse
from kit.versions import DEFAULT_FLAVOR, KUEUE_API_VERSION, QUEUE_LABEL


def resource_flavor(name: str = DEFAULT_FLAVOR, node_labels: Mapping[str, str] | None = None,
                    tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ResourceFlavor; ``node_labels`` steer admitted pods to matching nodes, ``tolerations`` let them land there."""
    spec: dict[str, Any] = {}
    if node_labels:
        spec["nodeLabels"] = dict(node_labels)
    if tolerations:
        spec["tolerations"] = list(tolerations)
    return {"apiVersion": KUEUE_API_VERSION, "kind": "ResourceFlavor", "metadata": {"name": name}, "spec": spec}


def resource_groups(quotas: Mapping[str, Mapping[str, str | int]]) -> list[dict[str, Any]]:
    """``{flavor: {resource: quota}}`` as Kueue resource groups: flavors covering the same resources share one.

    Kueue lets each resource appear in one group only: CPU and memory in one, GPUs
    in another (with their own flavor) is the usual shape.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for flavor, amounts in quotas.items():
        covered = tuple(amounts)
        groups.setdefault(covered, []).append({
            "name": flavor,
            "resources": [{"name": resource, "nominalQuota": str(amount)} for resource, amount in amounts.items()],
        })
    seen: dict[str, tuple[str, ...]] = {}
    for covered in groups:
        for resource in covered:
            if resource in seen:
                raise ValueError(f"resource {resource!r} is covered by two resource groups ({list(seen[resource])} "
                                 f"and {list(covered)}): give every flavor of a group the same resources")
            seen[resource] = covered
    return [{"coveredResources": list(covered), "flavors": flavors} for covered, flavors in groups.items()]


def cluster_queue(name: str, quotas: Mapping[str, Mapping[str, str | int]], *,
                  namespaces: Iterable[str] | None = None, strategy: str = "BestEffortFIFO") -> dict[str, Any]:
    """A ClusterQueue with ``quotas`` per flavor, fed by LocalQueues in ``namespaces`` (None: any namespace)."""
    selector: dict[str, Any] = {}
    if namespaces is not None:
        selector = {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}]}
    return {
        "apiVersion": KUEUE_API_VERSION,
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": {"namespaceSelector": selector, "queueingStrategy": strategy,
                 "resourceGroups": resource_groups(quotas)},
    }


def local_queue(name: str, namespace: str, cluster_queue_name: str) -> dict[str, Any]:
    """A LocalQueue in ``namespace`` that sends its workloads to ClusterQueue ``cluster_queue_name``."""
    return {"apiVersion": KUEUE_API_VERSION, "kind": "LocalQueue", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterQueue": cluster_queue_name}}


def queue_label(queue: str) -> dict[str, str]:
    """The label that hands a workload to LocalQueue ``queue``."""
    return {QUEUE_LABEL: queue}


# --------------------------------------------------------------------------- admission, explained offline

_UNITS = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (``"500m"``, ``"2Gi"``, ``4``) as a number."""
    text = str(value).strip()
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _UNITS[suffix]
    return float(text)


def pod_count(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(replicas, pod spec) pairs of a Pod, Job or RayCluster: how many pods each template makes."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return [(1, spec)]
    if kind == "Job":
        return [(int(spec.get("parallelism", 1)), spec["template"]["spec"])]
    if kind == "RayCluster":
        head = [(1, spec["headGroupSpec"]["template"]["spec"])]
        return head + [(int(g.get("replicas", 0)), g["template"]["spec"]) for g in spec.get("workerGroupSpecs", [])]
    raise ValueError(f"simulate_admission knows Pod, Job and RayCluster, not {kind}")


def total_requests(doc: dict[str, Any]) -> dict[str, float]:
    """What the whole workload requests: every pod's container requests, times its replicas."""
    total: dict[str, float] = {}
    for replicas, pod in pod_count(doc):
        for _, _, container in traverse.containers(pod):
            for resource, amount in ((container.get("resources") or {}).get("requests") or {}).items():
                total[resource] = total.get(resource, 0.0) + replicas * quantity(amount)
    return total


def describe_requests(requests: Mapping[str, float]) -> str:
    """``{"cpu": 4.0, "memory": 8589934592.0}`` -> ``cpu 4, memory 8Gi``."""
    return ", ".join(f"{resource} {_fmt(amount, resource)}" for resource, amount in requests.items())


@dataclass(frozen=True)
class Admission:
    """One workload's fate in :func:`simulate_admission`."""

    name: str
    admitted: bool
    requests: dict[str, float]
    reason: str

    def __str__(self) -> str:
        return f"{'admitted' if self.admitted else 'waiting '}  {self.name}: {self.reason}"


def simulate_admission(quota: Mapping[str, str | int], workloads: Iterable[dict[str, Any]]) -> list[Admission]:
    """Admit ``workloads`` in order into one flavor's ``quota``, all-or-nothing, as Kueue's BestEffortFIFO does.

    A workload that does not fit waits *whole*, and later, smaller ones may still be admitted.
    """
    free = {resource: quantity(amount) for resource, amount in quota.items()}
    results = []
    for doc in workloads:
        name = doc["metadata"]["name"]
        needs = total_requests(doc)
        short = [r for r, amount in needs.items() if amount > free.get(r, 0.0) + 1e-9]
        if short:
            missing = ", ".join(f"{r} needs {_fmt(needs[r], r)}, {_fmt(free.get(r, 0.0), r)} free" for r in short)
            results.append(Admission(name, False, needs, f"insufficient quota ({missing}); no pod starts"))
            continue
        for resource, amount in needs.items():
            free[resource] -= amount
        pods = sum(replicas for replicas, _ in pod_count(doc))
        results.append(Admission(name, True, needs, f"all {pods} pods fit; they start together"))
    return results


def _fmt(amount: float, resource: str) -> str:
    if resource == "memory":
        return f"{amount / 2**30:g}Gi"
    return f"{amount:g}"
