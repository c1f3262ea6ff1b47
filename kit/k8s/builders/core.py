"""Built-in Kubernetes objects an AI workload needs: Namespace, quotas, Pod, Job, NetworkPolicy.

Every namespace the kit creates enforces the Pod Security Standards ``restricted``
profile, caps what its workloads may request (ResourceQuota), gives containers
that forgot their requests a default (LimitRange) and accepts traffic only from
itself and the operators. Pods and Jobs reuse :mod:`kit.k8s.builders.pods`, so they
pass that profile.
"""

from __future__ import annotations

from typing import Any

from kit import versions
from kit.k8s.builders import pods

PSS_LEVEL = "restricted"
GPU_RESOURCE = "nvidia.com/gpu"
#: Namespaces whose controllers talk to workload pods (KubeRay submits jobs to the Ray head).
OPERATOR_NAMESPACES = ("ray-system", "kubeflow-system", "kserve", "kueue-system")


def _metadata(name: str, namespace: str | None = None, labels: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    return metadata


def namespace(name: str, level: str = PSS_LEVEL) -> dict[str, Any]:
    """A Namespace whose pods must pass Pod Security ``level`` (enforced, warned and audited)."""
    labels = {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "warn", "audit")}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(name, labels=labels)}


def resource_quota(namespace: str, cpu: str, memory: str, gpus: int = 0, pods_max: int = 20,
                   name: str = "compute") -> dict[str, Any]:
    """The most a namespace's pods may request and use together; ``gpus`` 0 forbids GPUs."""
    hard = {
        "requests.cpu": cpu, "limits.cpu": cpu,
        "requests.memory": memory, "limits.memory": memory,
        f"requests.{GPU_RESOURCE}": str(gpus),
        "pods": str(pods_max),
    }
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _metadata(name, namespace),
            "spec": {"hard": hard}}


def limit_range(namespace: str, cpu: str = "500m", memory: str = "512Mi", name: str = "defaults") -> dict[str, Any]:
    """Requests and limits for containers that set none (a quota rejects pods without them)."""
    default = {"cpu": cpu, "memory": memory}
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": _metadata(name, namespace),
            "spec": {"limits": [{"type": "Container", "default": dict(default),
                                 "defaultRequest": dict(default)}]}}


def network_policy(namespace: str, allowed_namespaces: tuple[str, ...] = OPERATOR_NAMESPACES,
                   name: str = "same-namespace-and-operators") -> dict[str, Any]:
    """Ingress only from pods of this namespace and of the operators': everything else is denied."""
    sources: list[dict[str, Any]] = [{"podSelector": {}}]
    if allowed_namespaces:
        sources.append({"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(allowed_namespaces)}]}})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _metadata(name, namespace),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": sources}]}}


def gpu_scheduling(gpus: int) -> dict[str, Any]:
    """Pod spec fields that place a GPU pod: the GPU node label, and the taint GPU nodes carry."""
    if not gpus:
        return {}
    return {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    }


def pod(name: str, namespace: str, command: list[str], *, image: str = versions.IMAGES["python"],
        cpu: str = "500m", memory: str = "512Mi", gpus: int = 0,
        labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """A single restricted Pod running ``command`` (in practice, let a Job or an operator make pods)."""
    template = pods.pod_template([pods.container("main", image, cpu, memory, gpus=gpus, command=command)])
    spec = {**template["spec"], **gpu_scheduling(gpus), "restartPolicy": "Never"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(name, namespace, labels), "spec": spec}


def batch_job(name: str, namespace: str, command: list[str], *, image: str = versions.IMAGES["python"],
              cpu: str = "500m", memory: str = "512Mi", gpus: int = 0, parallelism: int = 1,
              completions: int | None = None, backoff_limit: int = 2, ttl_seconds: int = 3600,
              queue: str | None = None) -> dict[str, Any]:
    """A batch Job: ``parallelism`` pods at a time until ``completions`` succeed, retried ``backoff_limit`` times.

    ``queue`` adds the Kueue label: Kueue then creates the Job suspended and lets
    it start only when the whole Job fits the queue's quota.
    """
    if parallelism < 1 or (completions is not None and completions < 1):
        raise ValueError(f"parallelism and completions must be >= 1, got {parallelism} and {completions}")
    template = pods.pod_template([pods.container("main", image, cpu, memory, gpus=gpus, command=command)])
    template["spec"] = {**template["spec"], **gpu_scheduling(gpus), "restartPolicy": "Never"}
    labels = {versions.QUEUE_LABEL: queue} if queue else None
    return {
        "apiVersion": versions.API_RESOURCES["Job"].api_version,
        "kind": "Job",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "parallelism": parallelism,
            "completions": completions if completions is not None else parallelism,
            "backoffLimit": backoff_limit,
            "ttlSecondsAfterFinished": ttl_seconds,
            "template": template,
        },
    }
