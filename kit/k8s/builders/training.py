"""Training resources as plain dicts: a Trainer v2 TrainJob, a legacy PyTorchJob, a KubeRay RayJob.

All three run the kit's one training function (:func:`kit.train.loop.train_func`) in
the kit's image (``versions.IMAGES["kit"]``, built by ``make image``: Ray's image at
the client's Ray version, plus torch and the ``kit`` package). Every pod template is Pod Security
``restricted``: non-root uid 1000, no privilege escalation, all capabilities
dropped, seccomp ``RuntimeDefault``, cpu and memory requests and limits. Ray pods
get an ``emptyDir`` at ``/tmp/ray`` (Ray writes its sessions there; the image's
file system is not writable for uid 1000 everywhere).

Field names follow the CRDs of Kubeflow Trainer v2.3.0, training-operator v1.9.4
and KubeRay v1.7.0. Writing YAML, validating and applying are separate steps.

The worker count is the config's ``workers`` (:class:`kit.config.train.TrainConfig`), the one place
that decides it: no builder takes a count of its own. A builder derives its replica and
process counts from it, and a layout that cannot split ``workers`` evenly (``num_nodes``,
``procs_per_node``) is a :class:`~kit.config.train.ConfigError` naming both values.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from kit import versions
from kit.config.train import ConfigError, TrainConfig, as_config
from kit.k8s.builders import pods, ray, serving
from kit.versions import QUEUE_LABEL


def kit_image(gpus: int = 0) -> str:
    """The kit's image (torch, torchrun, Ray and ``kit``): the CUDA variant for pods with GPUs."""
    return versions.IMAGES["kit-gpu" if gpus else "kit"]

RUNTIME = "torch-distributed"  # the default ClusterTrainingRuntime of Kubeflow Trainer


def _metadata(name: str, namespace: str | None, queue: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "cloud-native-ai-kit"}}
    if namespace:
        metadata["namespace"] = namespace
    if queue:
        metadata["labels"][QUEUE_LABEL] = queue
    return metadata


def _config_json(cfg: TrainConfig, models_claim: str | None = None) -> str:
    """The TrainConfig as the job's JSON argument; with a models volume, rank 0 writes the artifact there."""
    if models_claim and not cfg.model_dir:
        cfg = cfg.replace(model_dir=serving.MODEL_PATH)
    return json.dumps(cfg.to_dict(), separators=(",", ":"))


def _per_group(cfg: TrainConfig, groups: int, group_name: str) -> int:
    """``cfg.workers`` split evenly over ``groups`` (nodes); uneven is an error naming both numbers."""
    if groups < 1 or cfg.workers % groups:
        raise ConfigError("workers", f"workers={cfg.workers} does not split evenly over {group_name}={groups}; "
                                     f"make workers a multiple of {group_name}")
    return cfg.workers // groups


def _tmp_volume(name: str = "tmp") -> dict[str, Any]:
    return {"name": name, "emptyDir": {}}


def trainjob(
    config: TrainConfig | dict[str, Any] | None = None,
    name: str = versions.TRAIN_JOB,
    namespace: str | None = None,
    num_nodes: int = 1,
    image: str | None = None,
    cpu: str = "1",
    memory: str = "2Gi",
    gpus: int = 0,
    queue: str | None = None,
    runtime: str = RUNTIME,
    models_claim: str | None = None,
) -> dict[str, Any]:
    """A Kubeflow Trainer v2 ``TrainJob`` on a ClusterTrainingRuntime (upstream ``torch-distributed``
    by default; ``clusters/`` uses the kit's ``torch-distributed-restricted``).

    The runtime's torch policy sets torchrun's ``PET_*`` variables (nodes, processes per
    node, master address); the command is torchrun running :mod:`kit.train.entry`.
    Pod security is applied with a ``runtimePatches`` entry on the runtime's ``node`` job.
    With ``models_claim`` the nodes mount that volume at ``/models`` and rank 0 writes the
    serving artifact to ``/models/<name>``, where the RayService and InferenceService read it.
    ``config.workers`` processes run in all, ``config.workers / num_nodes`` on each node.
    """
    cfg = as_config(config)
    procs_per_node = _per_group(cfg, num_nodes, "num_nodes")
    config_json = _config_json(cfg, models_claim)
    node: dict[str, Any] = {"name": "node", "securityContext": pods.restricted_security_context(),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    pod_patch: dict[str, Any] = {
        "securityContext": pods.restricted_pod_security_context(),
        "containers": [node],
        "volumes": [_tmp_volume()],
    }
    if models_claim:
        volume, mount = serving.models_volume(models_claim)
        pod_patch["volumes"].append(volume)
        node["volumeMounts"].append(mount)
    return {
        "apiVersion": versions.TRAINER_API_VERSION,
        "kind": "TrainJob",
        "metadata": _metadata(name, namespace, queue),
        "spec": {
            "runtimeRef": {
                "apiGroup": versions.TRAINER_GROUP, "kind": "ClusterTrainingRuntime", "name": runtime,
            },
            "trainer": {
                "image": image or kit_image(gpus),
                "command": ["torchrun", "-m", "kit.train.entry", config_json],
                "numNodes": num_nodes,
                "numProcPerNode": procs_per_node,
                "resourcesPerNode": pods.resources(cpu, memory, gpus),
            },
            "runtimePatches": [
                {
                    "manager": versions.RUNTIME_PATCH_MANAGER,
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {
                                "replicatedJobs": [
                                    {"name": "node", "template": {"spec": {"template": {"spec": pod_patch}}}}
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }


def _torch_pod_template(container_name: str, image: str, command: list[str], cpu: str, memory: str,
                        gpus: int) -> dict[str, Any]:
    return {
        "spec": {
            "securityContext": pods.restricted_pod_security_context(),
            **pods.api_access(),  # no API token: these pods never call the Kubernetes API
            "containers": [
                {
                    "name": container_name,
                    "image": image,
                    "command": command,
                    "resources": pods.resources(cpu, memory, gpus),
                    "securityContext": pods.restricted_security_context(),
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [_tmp_volume()],
        }
    }


def pytorchjob(
    config: TrainConfig | dict[str, Any] | None = None,
    name: str = versions.TRAIN_JOB,
    namespace: str | None = None,
    procs_per_node: int = 1,
    image: str | None = None,
    cpu: str = "1",
    memory: str = "2Gi",
    gpus: int = 0,
    queue: str | None = None,
) -> dict[str, Any]:
    """A legacy training-operator v1 ``PyTorchJob`` (kubeflow.org/v1): ``config.workers / procs_per_node``
    pods, one Master and the rest Workers.

    Shown as the older API next to :func:`trainjob`. The operator sets the torchrun
    variables; the container must be named ``pytorch``.
    """
    cfg = as_config(config)
    workers = _per_group(cfg, procs_per_node, "procs_per_node") - 1  # pods besides the Master
    command = ["torchrun", "-m", "kit.train.entry", _config_json(cfg)]
    replica = {
        "restartPolicy": "OnFailure",
        "template": _torch_pod_template("pytorch", image or kit_image(gpus), command, cpu, memory, gpus),
    }
    specs: dict[str, Any] = {"Master": {"replicas": 1, **replica}}
    if workers:
        specs["Worker"] = {"replicas": workers, **replica}
    return {
        "apiVersion": versions.TRAINING_OPERATOR_API_VERSION,
        "kind": "PyTorchJob",
        "metadata": _metadata(name, namespace, queue),
        "spec": {
            "nprocPerNode": str(procs_per_node),
            "runPolicy": {"cleanPodPolicy": "None", "ttlSecondsAfterFinished": 3600},
            "pytorchReplicaSpecs": specs,
        },
    }


#: Where a RayJob's pods mount the volume Ray Train keeps checkpoints on (Ray's own convention).
SHARED_MOUNT = versions.SHARED_MOUNT
#: The PersistentVolumeClaim of that volume (kit.deploy.layout creates it).
CHECKPOINT_CLAIM = "kit-checkpoints"
#: The RayJob's submitter runs `ray job submit` and follows the logs: little CPU.
SUBMITTER_RESOURCES = ("200m", "512Mi")


def _ray_pod_template(container_name: str, image: str, cpu: str, memory: str, gpus: int,
                      shared_claim: str | None = None, models_claim: str | None = None) -> dict[str, Any]:
    """A Ray head or worker pod (:func:`kit.k8s.builders.ray.group_template`: /tmp/ray, /dev/shm) in ``image``,
    with the checkpoint and models volumes."""
    template = ray.group_template(container_name, image, cpu, memory, gpus)
    pod = template["spec"]
    if shared_claim:
        pod["volumes"].append({"name": "shared", "persistentVolumeClaim": {"claimName": shared_claim}})
        pod["containers"][0]["volumeMounts"].append({"name": "shared", "mountPath": SHARED_MOUNT})
    if models_claim:
        volume, mount = serving.models_volume(models_claim)
        pod["volumes"].append(volume)
        pod["containers"][0]["volumeMounts"].append(mount)
    return template


def _shared_storage_path(storage_path: str | None, claim: str | None) -> str:
    """Where Ray Train stores checkpoints: somewhere every pod of the job sees."""
    if storage_path is None and claim:
        return f"{SHARED_MOUNT}/kit-results"
    if storage_path and ("://" in storage_path or (claim and storage_path.startswith(SHARED_MOUNT + "/"))):
        return storage_path
    raise ValueError(
        f"storage_path {storage_path!r} with checkpoint_claim {claim!r}: a RayJob's head and workers are separate "
        "pods, and Ray Train refuses a path they do not share (\"Unable to set up cluster storage\"). Give "
        f"checkpoint_claim (a PersistentVolumeClaim, mounted at {SHARED_MOUNT}) or storage_path='s3://...'")


def rayjob(
    config: TrainConfig | dict[str, Any] | None = None,
    name: str = versions.RAY_JOB,
    namespace: str | None = None,
    image: str | None = None,
    cpu: str = "1",
    memory: str = "2Gi",
    gpus: int = 0,
    head_cpu: str | None = None,
    head_memory: str | None = None,
    storage_path: str | None = None,
    checkpoint_claim: str | None = CHECKPOINT_CLAIM,
    max_failures: int = 0,
    queue: str | None = None,
    ttl_seconds_after_finished: int = 600,
    models_claim: str | None = None,
) -> dict[str, Any]:
    """A KubeRay ``RayJob`` that starts a RayCluster (token auth on) of ``config.workers`` worker pods,
    runs Ray Train with as many workers on it, then deletes it.

    The entrypoint is ``python -m kit.train.launchers ray ...`` (:func:`kit.train.launchers.run_ray_train`);
    the image is the kit's (Ray's image at the client's Ray version, with ``torch`` and ``kit``).
    Ray Train writes checkpoints to ``storage_path``, which every pod must share: by default
    the PersistentVolumeClaim ``checkpoint_claim``, mounted at ``/mnt/cluster_storage`` in the
    head and the workers (ReadWriteMany when they may land on different nodes); or an object
    store URI (``s3://...``) with ``checkpoint_claim=None``. With ``models_claim`` the workers mount
    that volume at ``/models`` and Ray Train's rank 0 writes the serving artifact to ``/models/<name>``.
    The head runs no training (``num-cpus: 0``): ``head_cpu``/``head_memory`` size it (default: as a worker).
    """
    image = image or kit_image(gpus)
    cfg = as_config(config)
    workers = cfg.workers
    config_json = _config_json(cfg, models_claim)
    storage_path = _shared_storage_path(storage_path, checkpoint_claim)
    entrypoint = shlex.join([
        "python", "-m", "kit.train.launchers", "ray", "--max-failures", str(max_failures),
        "--storage-path", storage_path, "--config", config_json,
    ])
    return {
        "apiVersion": versions.RAY_API_VERSION,
        "kind": "RayJob",
        "metadata": _metadata(name, namespace, queue),
        "spec": {
            "entrypoint": entrypoint,
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": ttl_seconds_after_finished,
            "submitterPodTemplate": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pods.restricted_pod_security_context(),
                    **pods.api_access(),  # `ray job submit` talks to the head's dashboard, not to the API
                    "containers": [
                        {
                            "name": "ray-job-submitter",
                            "image": image,
                            "resources": pods.resources(*SUBMITTER_RESOURCES),
                            "securityContext": pods.restricted_security_context(),
                        }
                    ],
                }
            },
            "rayClusterSpec": {
                "rayVersion": versions.RAY,
                "authOptions": {"mode": "token"},
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0"},  # the head schedules; workers train
                    "template": _ray_pod_template("ray-head", image, head_cpu or cpu, head_memory or memory, 0,
                                                  checkpoint_claim, models_claim),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "workers",
                        "replicas": workers,
                        "minReplicas": workers,
                        "maxReplicas": workers,
                        "rayStartParams": {},
                        "template": _ray_pod_template("ray-worker", image, cpu, memory, gpus, checkpoint_claim,
                                                       models_claim),
                    }
                ],
            },
        },
    }
