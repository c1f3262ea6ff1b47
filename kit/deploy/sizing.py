"""What a cluster must hold besides the kit's workloads, and whether a plan fits a machine.

Two tables of pod *requests* (what the scheduler reserves, not what the pods use), each entry
read from the upstream manifest at the version the kit pins or runs:

- :data:`OPERATORS`: the controllers ``clusters/install-operators.sh`` installs;
- :data:`KIND_SYSTEM`: what a kind node runs before anything is installed (control plane, DNS, CNI).

:func:`budget` subtracts them from a machine's capacity (``--capacity 4cpu,8Gi``; Docker Desktop's
default share, :data:`DOCKER_DESKTOP`, for kind) and :func:`check_fit` compares a set of manifests with
what is left: everything Kueue may admit at once (the ClusterQueue's quota) plus what starts without
a queue (the InferenceService). A plan that does not fit is a :class:`DoesNotFit` naming the
shortfall and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kit.errors import KitError
from kit.k8s.requests import QUEUED, UNQUEUED, ZERO, QuantityError, Requests, Workload, requests_of, workloads


@dataclass(frozen=True)
class Entry:
    """One deployment's requests (all replicas), and the upstream file they were read from."""

    namespace: str
    name: str
    requests: Requests
    source: str


def _entry(namespace: str, name: str, cpu: str, memory: str, source: str, replicas: int = 1) -> Entry:
    return Entry(namespace, name, Requests.parse(cpu, memory) * replicas, source)


#: The operators' own requests at the pinned versions. A container with only limits requests its limits
#: (Kubernetes defaults requests to limits); one with no resources requests nothing.
OPERATORS: tuple[Entry, ...] = (
    _entry("ray-system", "kuberay-operator", "100m", "512Mi",
           "ray-project/kuberay v1.7.0 ray-operator/config/manager/manager.yaml (the kustomization the installer "
           "applies; helm-chart/kuberay-operator/values.yaml `resources` sets the same as limits)"),
    _entry("kueue-system", "kueue-controller-manager", "500m", "512Mi",
           "kubernetes-sigs/kueue v0.19.2 config/components/manager/manager.yaml"),
    _entry("kubeflow-system", "kubeflow-trainer-controller-manager", "0", "0",
           "kubeflow/trainer v2.3.0 manifests/base/manager/manager.yaml (no resources)"),
    _entry("kubeflow-system", "jobset-controller-manager", "500m", "128Mi",
           "kubernetes-sigs/jobset v0.12.0 config/components/manager/manager.yaml (Trainer v2.3.0 "
           "manifests/third-party/jobset installs JobSet v0.12.0)"),
    _entry("kserve", "kserve-controller-manager", "100m", "200Mi",
           "kserve/kserve v0.20.0 config/manager/manager.yaml (config/default/manager_resources_patch.yaml only "
           "changes limits; the kube-rbac-proxy sidecar of manager_auth_proxy_patch.yaml has no resources)"),
    *(_entry("cert-manager", name, "0", "0",
             "cert-manager/cert-manager v1.17.0 deploy/charts/cert-manager/values.yaml (`resources: {}` for the "
             "controller, webhook and cainjector; the release's cert-manager.yaml is rendered from it)")
      for name in ("cert-manager", "cert-manager-webhook", "cert-manager-cainjector")),
)

#: A kind node's own pods (kindest/node v1.35.0, kind v0.31.0), before any operator.
KIND_SYSTEM: tuple[Entry, ...] = (
    _entry("kube-system", "kube-apiserver", "250m", "0",
           "kubernetes/kubernetes cmd/kubeadm/app/phases/controlplane/manifests.go GetStaticPodSpecs"),
    _entry("kube-system", "kube-controller-manager", "200m", "0",
           "kubernetes/kubernetes cmd/kubeadm/app/phases/controlplane/manifests.go GetStaticPodSpecs"),
    _entry("kube-system", "kube-scheduler", "100m", "0",
           "kubernetes/kubernetes cmd/kubeadm/app/phases/controlplane/manifests.go GetStaticPodSpecs"),
    _entry("kube-system", "etcd", "100m", "100Mi",
           "kubernetes/kubernetes cmd/kubeadm/app/phases/etcd/local.go GetEtcdPodSpec"),
    _entry("kube-system", "coredns", "100m", "70Mi",
           "kubernetes/kubernetes cmd/kubeadm/app/phases/addons/dns/manifests.go CoreDNSDeployment (2 replicas)",
           replicas=2),
    _entry("kube-system", "kindnet", "100m", "50Mi",
           "kubernetes-sigs/kind v0.31.0 pkg/build/nodeimage/const_cni.go (local-path-provisioner: no resources)"),
)

#: Docker Desktop's default share for the VM that runs kind's node: 4 CPUs, 8 GiB (Settings > Resources).
DOCKER_DESKTOP = Requests.parse("4", "8Gi")
#: What the VM itself keeps of that memory (kernel, containerd, kubelet): Kubernetes sees less than 8 GiB.
VM_RESERVE = Requests.parse("0", "512Mi")


def total(entries: Iterable[Entry]) -> Requests:
    """The sum of the entries' requests."""
    result = ZERO
    for entry in entries:
        result = result + entry.requests
    return result


def table(entries: Iterable[Entry] = (*KIND_SYSTEM, *OPERATORS)) -> str:
    """The entries as a text table (namespace, deployment, cpu, memory), with their total."""
    entries = list(entries)
    rows = [f"{'namespace':<16} {'deployment':<36} {'cpu':>6} {'memory':>8}"]
    rows += [f"{e.namespace:<16} {e.name:<36} {e.requests.cpu:>6} {e.requests.memory or '0':>8}" for e in entries]
    summed = total(entries)
    rows.append(f"{'':<16} {'total':<36} {summed.cpu:>6} {summed.memory:>8}")
    return "\n".join(rows)


_CAPACITY_PART = re.compile(r"^(?P<amount>[0-9.]+[a-zA-Z]*?)(?P<unit>cpus?|gpus?)?$")


class CapacityError(KitError, ValueError):
    """A ``--capacity`` that cannot be read."""


def parse_capacity(text: str) -> Requests:
    """``"4cpu,8Gi"``, ``"16cpu,64Gi,2gpu"`` -> :class:`Requests` (a part with a byte unit is memory)."""
    cpu, memory, gpus = "0", "0", "0"
    fix = "write it like 4cpu,8Gi (cores, then memory with Ki/Mi/Gi), optionally ,1gpu"
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = _CAPACITY_PART.match(part)
        if not match:
            raise CapacityError(f"capacity part {part!r} of {text!r} is not <amount>cpu, <amount>gpu or memory",
                                fix=fix)
        unit, amount = match.group("unit") or "", match.group("amount")
        if not unit and amount[-1].isdigit():
            raise CapacityError(f"capacity part {part!r} of {text!r} has no unit: is it cpu or memory?", fix=fix)
        if unit.startswith("cpu"):
            cpu = amount
        elif unit.startswith("gpu"):
            gpus = amount
        else:
            memory = amount
    try:
        capacity = Requests.parse(cpu, memory, gpus)
    except QuantityError as error:
        raise CapacityError(f"capacity {text!r}: {error.message}", fix=fix) from None
    if not capacity.cpu_millis or not capacity.memory_bytes:
        raise CapacityError(f"capacity {text!r} needs both cpu and memory", fix=fix)
    return capacity


@dataclass(frozen=True)
class Budget:
    """A machine's capacity, what is already taken on it, and what is left for the kit."""

    capacity: Requests
    taken: tuple[Entry, ...]
    reserve: Requests = ZERO

    @property
    def available(self) -> Requests:
        return self.capacity - self.reserve - total(self.taken)


def budget(capacity: Requests = DOCKER_DESKTOP, *, kind: bool = True) -> Budget:
    """What is left of ``capacity`` once the operators (and, on kind, the node's own pods and the VM) take theirs."""
    taken = (*KIND_SYSTEM, *OPERATORS) if kind else OPERATORS
    return Budget(capacity, taken, VM_RESERVE if kind else ZERO)


def kueue_quota(documents: Iterable[Mapping[str, Any]]) -> Requests:
    """The nominal quota of every ClusterQueue in the documents, summed over flavors."""
    quota = ZERO
    for doc in documents:
        if doc.get("kind") != "ClusterQueue":
            continue
        for group in doc.get("spec", {}).get("resourceGroups", []):
            for flavor in group.get("flavors", []):
                amounts = {r["name"]: r["nominalQuota"] for r in flavor.get("resources", [])}
                quota = quota + Requests.of_resources(amounts)
    return quota


class DoesNotFit(KitError, ValueError):
    """The plan asks for more than the machine has left once the operators are running."""


@dataclass(frozen=True)
class Fit:
    """What a set of manifests needs at once, against a :class:`Budget`."""

    budget: Budget
    queued_at_once: Requests  # the ClusterQueue quota, or the queued requests if there is no ClusterQueue
    unqueued: Requests  # at their peak (requests_of(..., peak=True))
    #: queued workloads larger than the whole quota: Kueue never admits them
    never_admitted: tuple[Workload, ...] = ()

    @property
    def needed(self) -> Requests:
        return self.queued_at_once + self.unqueued

    @property
    def short(self) -> list[str]:
        return self.needed.short_of(self.budget.available)

    @property
    def ok(self) -> bool:
        return not self.short and not self.never_admitted

    def report(self) -> str:
        """Requests against capacity, one line each."""
        b = self.budget
        lines = [f"capacity                         {b.capacity}"]
        if b.reserve != ZERO:
            lines.append(f"- the VM's own share             {b.reserve}")
        lines.append(f"- operators and system pods      {total(b.taken)}")
        lines.append(f"= left for the kit               {b.available}")
        lines.append(f"  Kueue may admit at once        {self.queued_at_once}")
        lines.append(f"  servers without a queue        {self.unqueued}")
        verdict = "fits" if not self.short else f"DOES NOT FIT ({', '.join(self.short)})"
        lines.append(f"  needed at once                 {self.needed}: {verdict}")
        lines += [f"  never admitted (over the quota) {w.name}: {w.requests}" for w in self.never_admitted]
        return "\n".join(lines)


def fit(documents: Iterable[Mapping[str, Any]], budget_: Budget) -> Fit:
    """How the documents' requests compare with ``budget_``."""
    docs = list(documents)
    totals = requests_of(docs, peak=True)
    quota = kueue_quota(docs)
    too_big = tuple(w for w in workloads(docs) if w.queued and quota != ZERO and not w.requests.fits(quota))
    return Fit(budget_, quota if quota != ZERO else totals[QUEUED], totals[UNQUEUED], too_big)


def check_fit(documents: Iterable[Mapping[str, Any]], budget_: Budget) -> Fit:
    """:func:`fit`, raising :class:`DoesNotFit` with the report and the fix when it does not."""
    result = fit(documents, budget_)
    if not result.ok:
        what = f"more {' and '.join(result.short)} than the cluster has left" if result.short else \
            "more than the ClusterQueue's whole quota for " + ", ".join(w.name for w in result.never_admitted)
        raise DoesNotFit(
            f"the plan needs {what}:\n{result.report()}",
            fix="give the cluster more (Docker Desktop: Settings > Resources) and pass its size with --capacity, "
                "or deploy a smaller sizing: --profile kind is the laptop-sized one (kit/deploy/layout.py OVERLAYS)")
    return result
