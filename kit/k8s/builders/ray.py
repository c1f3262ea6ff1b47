"""KubeRay resources (``ray.io/v1``, KubeRay v1.7.0): the RayCluster a Ray program runs on.

Ray pods get no Kubernetes API token, except the head of an autoscaling cluster: KubeRay
injects the autoscaler sidecar into the head pod, makes a ServiceAccount named after the
cluster with a Role to get/list/watch/patch pods and get/patch its RayCluster, and sets it
as the head's ``serviceAccountName`` (``DefaultHeadPodTemplate`` in
ray-operator/controllers/ray/common/pod.go, ``BuildRole`` in common/rbac.go, v1.7.0). The
sidecar's securityContext is ``autoscalerOptions.securityContext`` and nothing else
(``mergeAutoscalerOverrides`` copies it whole), so the kit sets a restricted one there:
without it the sidecar has none and a ``restricted`` namespace refuses the head pod.

Every Ray pod gets an emptyDir at ``/tmp/ray`` (Ray's session files; the image runs as uid 1000) and an
in-memory emptyDir at ``/dev/shm`` for Ray's object store (a container's own /dev/shm is 64 MiB, and Ray
then keeps objects on disk). The head runs ``num-cpus: 0`` (it schedules, runs GCS, the dashboard and,
for Serve, the controller and proxy; no tasks), so a deployment gives it less than a worker
(``head_cpu``; :class:`kit.deploy.layout.Sizing` uses 500m, 250m on kind). The builders' default head
(1 CPU, 2 GiB) is the one stage 01's admission example counts.
"""

from __future__ import annotations

from typing import Any

from kit import versions
from kit.k8s.builders import kueue, pods
from kit.versions import ELASTIC_JOB_ANNOTATION, QUEUE_LABEL, RAY_API_VERSION, RAY_CLUSTER

_RAY_TMP = {"name": "ray-tmp", "mountPath": "/tmp/ray"}
SHM_VOLUME = "dshm"
#: Ray's default object store is 30% of the memory it sees, capped at 95% of /dev/shm's free space
#: (ray-project/ray python/ray/_private/resource_and_label_spec.py ``_resolve_memory_resources``,
#: DEFAULT_OBJECT_STORE_MEMORY_PROPORTION); a third of the container's memory holds it.
SHM_FRACTION = 3


def shm_size(memory: str) -> str:
    """The ``sizeLimit`` of /dev/shm for a Ray container with ``memory``: a third of it, in whole MiB.

    An in-memory emptyDir counts against the container's memory limit, so this reserves nothing extra.
    """
    mib = -(-int(kueue.quantity(memory)) // (SHM_FRACTION * 2**20))
    return f"{mib}Mi"


def shm_volume(memory: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The in-memory emptyDir for Ray's object store and its mount at /dev/shm."""
    volume = {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": shm_size(memory)}}
    return volume, {"name": SHM_VOLUME, "mountPath": "/dev/shm"}


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
    shm_mount = shm_volume(memory)[1]
    return pods.container(name, image, cpu, memory, gpus=gpus, ports=ports, volume_mounts=[dict(_RAY_TMP), shm_mount])


def group_template(name: str, image: str, cpu: str, memory: str, gpus: int = 0,
                   calls_api: bool = False) -> dict[str, Any]:
    """A Ray head's (``name="ray-head"``) or worker's pod template: restricted, /tmp/ray and /dev/shm mounted;
    an API token only when ``calls_api`` (the autoscaling head)."""
    volumes = [{"name": "ray-tmp", "emptyDir": {}}, shm_volume(memory)[0]]
    return pods.pod_template([_ray_container(name, image, cpu, memory, gpus)], volumes=volumes, calls_api=calls_api)


def _mount_shared(template: dict[str, Any], claim: str) -> None:
    """Mount ``claim`` at :data:`kit.versions.SHARED_MOUNT` in the Ray container and point KIT_SHARED_STORAGE there."""
    spec = template["spec"]
    spec["volumes"].append({"name": "shared", "persistentVolumeClaim": {"claimName": claim}})
    container = spec["containers"][0]
    container["volumeMounts"].append({"name": "shared", "mountPath": versions.SHARED_MOUNT})
    container.setdefault("env", []).append({"name": versions.SHARED_STORAGE_ENV, "value": versions.SHARED_MOUNT})


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
    image: str | None = None,
    gpu_image: str | None = None,
    shared_claim: str | None = None,
) -> dict[str, Any]:
    """The ``spec`` of a RayCluster (also embedded in RayJob and RayService).

    ``image``/``gpu_image``: the CPU and GPU pods' images (default: the pinned Ray images).
    ``shared_claim``: a PersistentVolumeClaim every pod mounts at :data:`kit.versions.SHARED_MOUNT`, named by
    ``KIT_SHARED_STORAGE`` on the pods, so a notebook connected over Ray Client finds its Tune results, data
    and models there (kit.machine.ray_cluster).
    """
    min_workers = workers if min_workers is None else min_workers
    max_workers = workers if max_workers is None else max_workers
    if not 0 <= min_workers <= workers <= max_workers:
        raise ValueError(
            f"worker group needs 0 <= min_workers <= workers <= max_workers, "
            f"got {min_workers} <= {workers} <= {max_workers}"
        )
    image = image or versions.IMAGES["ray"]
    spec: dict[str, Any] = {
        "rayVersion": versions.RAY,
        "authOptions": {"mode": "token"},
        "enableInTreeAutoscaling": autoscaling,
        "headGroupSpec": {
            # num-cpus 0: the head schedules no work, so it never starves the control plane.
            "rayStartParams": {"num-cpus": "0"},
            # the autoscaler sidecar in the head pod calls the API with the ServiceAccount KubeRay binds
            "template": group_template("ray-head", image, head_cpu, head_memory, calls_api=autoscaling),
        },
        "workerGroupSpecs": [
            {
                "groupName": "cpu",
                "replicas": workers,
                "minReplicas": min_workers,
                "maxReplicas": max_workers,
                "rayStartParams": {},
                "template": group_template("ray-worker", image, worker_cpu, worker_memory),
            }
        ],
    }
    if autoscaling:
        spec["autoscalerOptions"] = {"securityContext": pods.restricted_security_context()}
    if gpu_workers:
        spec["workerGroupSpecs"].append(
            {
                "groupName": "gpu",
                "replicas": gpu_workers,
                "minReplicas": 0,
                "maxReplicas": gpu_workers,
                "rayStartParams": {},
                "template": group_template(
                    "ray-worker", gpu_image or versions.IMAGES["ray-gpu"], worker_cpu, worker_memory, gpus_per_worker
                ),
            }
        )
    if shared_claim:
        for group in (spec["headGroupSpec"], *spec["workerGroupSpecs"]):
            _mount_shared(group["template"], shared_claim)
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
