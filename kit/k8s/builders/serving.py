"""Serving resources: the KubeRay RayService and the KServe InferenceService of stages 07-08.

Both serve the model artifact from a PersistentVolumeClaim (``kit-models`` by default),
run restricted pods (:mod:`kit.k8s.builders.pods`) and take their settings from the same
objects a local run uses: the RayService's ``serveConfigV2`` is rendered from a
:class:`~kit.config.serve.ServeConfig`, the InferenceService runs the same
``kit.serve.kserve_model`` entry point the kit starts locally.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from kit import versions
from kit.config.serve import ServeConfig, serve_config_v2
from kit.config.train import MODEL_NAME
from kit.k8s.builders import core, pods, ray

DEPLOYMENT_MODE = f"{versions.KSERVE_GROUP}/deploymentMode"
MODELS_MOUNT = "/models"
MODELS_CLAIM = "kit-models"
#: Where training writes the serving artifact on the models volume, and where the RayService reads it.
MODEL_PATH = f"{MODELS_MOUNT}/{MODEL_NAME}"
KSERVE_PORT = 8080


def models_volume(claim: str = MODELS_CLAIM, read_only: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The models volume and its mount at ``/models``: training writes the artifact, servers read it."""
    claim_ref: dict[str, Any] = {"claimName": claim, **({"readOnly": True} if read_only else {})}
    mount: dict[str, Any] = {"name": "models", "mountPath": MODELS_MOUNT, **({"readOnly": True} if read_only else {})}
    return {"name": "models", "persistentVolumeClaim": claim_ref}, mount


def shared_claim(namespace: str, name: str = MODELS_CLAIM, size: str = "1Gi",
                 access_mode: str = "ReadWriteOnce") -> dict[str, Any]:
    """A PersistentVolumeClaim several pods share: the models (the model Job writes, both servers
    read) or a RayJob's checkpoints.

    ``ReadWriteOnce`` is what kind's local-path storage offers; it lets every pod on one
    node mount the volume. On a cluster of several nodes use ``ReadWriteMany`` (NFS, EFS,
    Filestore...) or keep the files in object storage (``s3://``, ``gs://``) instead.
    """
    if access_mode not in ("ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"):
        raise ValueError(f"access_mode {access_mode!r}: use ReadWriteOnce, ReadWriteMany or ReadWriteOncePod")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": [access_mode], "resources": {"requests": {"storage": size}}},
    }


def publish_model_job(namespace: str, *, claim: str = MODELS_CLAIM, image: str | None = None,
                      queue: str | None = None, epochs: int = 20) -> dict[str, Any]:
    """A Job that trains the model in one process (``python -m kit train --launcher in-process``, the same
    ``train_func``) and writes its serving artifact to ``claim`` at ``/models/<name>``, so both servers
    have a model before the RayJob or TrainJob replace it with theirs."""
    config = json.dumps({"epochs": epochs}, separators=(",", ":"))
    job = core.batch_job(
        f"publish-{MODEL_NAME}", namespace,
        ["python", "-m", "kit", "train", "--launcher", "in-process", "--model-dir", MODEL_PATH, "--config", config],
        image=image or versions.IMAGES["kit"], cpu="1", memory="1Gi", queue=queue)
    pod = job["spec"]["template"]["spec"]
    volume, mount = models_volume(claim)
    pod["volumes"] = [volume, {"name": "tmp", "emptyDir": {}}]
    container = pod["containers"][0]
    container["volumeMounts"] = [mount, {"name": "tmp", "mountPath": "/tmp"}]
    # the launcher caches the data split in the kit's work dir: a writable place in a restricted pod
    container["env"] = [{"name": "KIT_WORK_DIR", "value": "/tmp/kit"}]
    return job


def rayservice(
    config: ServeConfig | None = None,
    *,
    name: str = "kit-digits",
    namespace: str = "default",
    queue: str | None = None,
    models_claim: str = MODELS_CLAIM,
    workers: int = 1,
    max_workers: int = 3,
    image: str | None = None,
) -> dict[str, Any]:
    """A RayService running the kit's Serve app; ``config`` defaults to the local defaults.

    ``image`` must contain the ``kit`` package and torch on Ray's image at the client's Ray version:
    the kit's image (``versions.IMAGES["kit"]``, ``make image``), the default.
    """
    config = config or ServeConfig(model_dir=MODEL_PATH)
    spec = ray.raycluster_spec(workers=workers, min_workers=1, max_workers=max_workers,
                               autoscaling=bool(config.autoscaling))
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        pod = group["template"]["spec"]
        volume, mount = models_volume(models_claim, read_only=True)
        pod["volumes"].append(volume)
        for container in pod["containers"]:
            container["image"] = image or versions.IMAGES["kit"]
            container["volumeMounts"].append(mount)
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["ports"].append({"containerPort": 8000, "name": "serve"})
    app_config = serve_config_v2(config, model_dir=MODEL_PATH)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if queue:
        metadata["labels"] = {versions.QUEUE_LABEL: queue}
        if config.autoscaling:  # Kueue admits an autoscaling Ray cluster only as an elastic job
            metadata["annotations"] = {versions.ELASTIC_JOB_ANNOTATION: "true"}
    return {
        "apiVersion": versions.RAY_API_VERSION,
        "kind": "RayService",
        "metadata": metadata,
        "spec": {"serveConfigV2": yaml.safe_dump(app_config, sort_keys=False), "rayClusterConfig": spec},
    }


def _probe(path: str, period: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": KSERVE_PORT}, "periodSeconds": period, "timeoutSeconds": 2,
            "failureThreshold": 3}


def inferenceservice(
    name: str = MODEL_NAME,
    *,
    namespace: str = "default",
    model_name: str = MODEL_NAME,
    storage_uri: str = f"pvc://{MODELS_CLAIM}/{MODEL_NAME}",
    image: str | None = None,
    cpu: str = "1",
    memory: str = "1Gi",
    min_replicas: int = 1,
    max_replicas: int = 2,
    canary_traffic_percent: int | None = None,
) -> dict[str, Any]:
    """An InferenceService with the kit's predictor as a custom container, in Standard mode.

    ``canary_traffic_percent`` (0-100) sends that share of traffic to the newest revision
    and the rest to the last one that was ready; ``None`` leaves the field out (100%).
    """
    if not 0 <= min_replicas <= max_replicas:
        raise ValueError(f"need 0 <= min_replicas <= max_replicas, got {min_replicas}, {max_replicas}")
    if canary_traffic_percent is not None and not 0 <= canary_traffic_percent <= 100:
        raise ValueError(f"canary_traffic_percent must be 0..100, got {canary_traffic_percent}")
    container = pods.container(
        "kserve-container",
        image or versions.IMAGES["kit"],
        cpu,
        memory,
        command=["python", "-m", "kit.serve.kserve_model"],
        args=["--model-dir", "/mnt/models", "--port", str(KSERVE_PORT), "--host", "0.0.0.0", "--name", model_name],
        # KServe's storage initializer copies STORAGE_URI to /mnt/models before the container starts.
        env=[{"name": "STORAGE_URI", "value": storage_uri}],
        ports=[{"containerPort": KSERVE_PORT, "protocol": "TCP"}],
    )
    container["readinessProbe"] = _probe("/v2/health/ready", 5)
    container["livenessProbe"] = _probe("/v2/health/live", 10)
    pod = pods.pod_template([container])["spec"]
    predictor: dict[str, Any] = {"minReplicas": min_replicas, "maxReplicas": max_replicas, **pod}
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    return {
        "apiVersion": versions.KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "annotations": {DEPLOYMENT_MODE: "Standard"}},
        "spec": {"predictor": predictor},
    }
