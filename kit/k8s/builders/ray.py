"""KubeRay resources (``ray.io/v1``, KubeRay v1.7.0): the RayCluster a Ray program runs on."""

from __future__ import annotations

from typing import Any

from kit import versions
from kit.k8s.builders import pods
from kit.versions import ELASTIC_JOB_ANNOTATION, QUEUE_LABEL, RAY_API_VERSION, RAY_CLUSTER

_RAY_TMP = {"name": "ray-tmp", "mountPath": "/tmp/ray"}


def _ray_container(name: str, image: str, cpu: str, memory: str, gpus: int = 0) -> dict[str, Any]:
    ports = (
        [
            {"containerPort": versions.PORTS["ray-gcs"], "name": "gcs"},
            {"containerPort": versions.PORTS["ray-dashboard"], "name": "dashboard"},
            {"containerPort": versions.PORTS["ray-client"], "name": "client"},
        ]
        if name == "ray-head"
        else None
    )
    return pods.container(name, image, cpu, memory, gpus=gpus, ports=ports, volume_mounts=[_RAY_TMP])


def _group_template(name: str, image: str, cpu: str, memory: str, gpus: int = 0) -> dict[str, Any]:
    return pods.pod_template(
        [_ray_container(name, image, cpu, memory, gpus)], volumes=[{"name": "ray-tmp", "emptyDir": {}}]
    )


def raycluster_spec(
    workers: int = 2,
    *,
    min_workers: int | None = None,
    max_workers: int | None = None,
    worker_cpu: str = "1",
    worker_memory: str = "2Gi",
    head_cpu: str = "1",
    head_memory: str = "2Gi",
    gpu_workers: int = 0,
    gpus_per_worker: int = 1,
    autoscaling: bool = False,
) -> dict[str, Any]:
    """The ``spec`` of a RayCluster (also embedded in RayJob and RayService)."""
    min_workers = workers if min_workers is None else min_workers
    max_workers = workers if max_workers is None else max_workers
    if not 0 <= min_workers <= workers <= max_workers:
        raise ValueError(
            f"worker group needs 0 <= min_workers <= workers <= max_workers, "
            f"got {min_workers} <= {workers} <= {max_workers}"
        )
    image = versions.IMAGES["ray"]
    spec: dict[str, Any] = {
        "rayVersion": versions.RAY,
        "authOptions": {"mode": "token"},
        "enableInTreeAutoscaling": autoscaling,
        "headGroupSpec": {
            # num-cpus 0: the head schedules no work, so it never starves the control plane.
            "rayStartParams": {"num-cpus": "0"},
            "template": _group_template("ray-head", image, head_cpu, head_memory),
        },
        "workerGroupSpecs": [
            {
                "groupName": "cpu",
                "replicas": workers,
                "minReplicas": min_workers,
                "maxReplicas": max_workers,
                "rayStartParams": {},
                "template": _group_template("ray-worker", image, worker_cpu, worker_memory),
            }
        ],
    }
    if gpu_workers:
        spec["workerGroupSpecs"].append(
            {
                "groupName": "gpu",
                "replicas": gpu_workers,
                "minReplicas": 0,
                "maxReplicas": gpu_workers,
                "rayStartParams": {},
                "template": _group_template(
                    "ray-worker", versions.IMAGES["ray-gpu"], worker_cpu, worker_memory, gpus_per_worker
                ),
            }
        )
    return spec


def raycluster(
    name: str = RAY_CLUSTER, namespace: str = "default", queue: str | None = None, **spec_options: Any
) -> dict[str, Any]:
    """A RayCluster with token auth, restricted pods and the kit's pinned Ray image; queued and
    autoscaling, it is an elastic Kueue job (Kueue admits no other autoscaling RayCluster)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if queue:
        metadata["labels"] = {QUEUE_LABEL: queue}
        if spec_options.get("autoscaling"):
            metadata["annotations"] = {ELASTIC_JOB_ANNOTATION: "true"}
    return {
        "apiVersion": RAY_API_VERSION,
        "kind": "RayCluster",
        "metadata": metadata,
        "spec": raycluster_spec(**spec_options),
    }
