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
#: KServe v0.20.0 in Standard mode makes no Ingress (nor Gateway API HTTPRoute) for an InferenceService with
#: this label: ``RawIngressReconciler.Reconcile`` (reconcilers/ingress/kube_ingress_reconciler.go) and
#: ``RawHTTPRouteReconciler.Reconcile`` (httproute_reconciler.go) read ``constants.NetworkVisibility``.
#: ``networking.knative.dev/visibility`` is the Serverless (Knative) mode's key, which Standard mode ignores.
VISIBILITY_LABEL = "networking.kserve.io/visibility"
CLUSTER_LOCAL = "cluster-local"
#: How long a server's pod waits for the model before its init container fails (the pod then restarts it).
MODEL_WAIT_TIMEOUT_S = 1800
_WAIT_FOR_MODEL = """\
import sys, time
from kit.train.artifact import ArtifactError, verify
path, timeout, job = sys.argv[1], float(sys.argv[2]), sys.argv[3]
start = time.monotonic()
print(f"waiting up to {timeout:g}s for the model at {path} (written by Job {job}, a RayJob or a TrainJob)", flush=True)
while True:
    try:
        meta = verify(path)
        break
    except ArtifactError as error:
        waited = time.monotonic() - start
        if waited > timeout:
            sys.exit(f"no usable model at {path} after {waited:.0f}s: {error.message}\\nFix: run Job {job} "
                     f"(kubectl get job {job}; kubectl logs job/{job}) or a training job that writes {path}")
        if int(waited) % 60 < 5:
            print(f"still waiting ({waited:.0f}s): {error.message}", flush=True)
    time.sleep(5)
print(f"model {meta.name} v{meta.version} at {path}: SHA-256 {meta.weights_sha256[:12]}... verified", flush=True)
"""


def models_volume(claim: str = MODELS_CLAIM, read_only: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The models volume and its mount at ``/models``: training writes the artifact, servers read it."""
    claim_ref: dict[str, Any] = {"claimName": claim, **({"readOnly": True} if read_only else {})}
    mount: dict[str, Any] = {"name": "models", "mountPath": MODELS_MOUNT, **({"readOnly": True} if read_only else {})}
    return {"name": "models", "persistentVolumeClaim": claim_ref}, mount


def shared_claim(namespace: str, name: str = MODELS_CLAIM, size: str = "1Gi",
                 access_mode: str = "ReadWriteOnce", *, storage_class: str | None = None) -> dict[str, Any]:
    """A PersistentVolumeClaim several pods share: the models (the model Job writes, both servers
    read) or a RayJob's checkpoints.

    ``ReadWriteOnce`` is what kind's local-path storage offers; it lets every pod on one
    node mount the volume. On a cluster of several nodes use ``ReadWriteMany`` with a
    ``storage_class`` that offers it (NFS, EFS, Filestore, Azure Files...), or keep the files
    in object storage (``s3://``, ``gs://``) instead. ``storage_class`` None: the cluster's default.
    """
    if access_mode not in ("ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"):
        raise ValueError(f"access_mode {access_mode!r}: use ReadWriteOnce, ReadWriteMany or ReadWriteOncePod")
    spec: dict[str, Any] = {"accessModes": [access_mode], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def wait_for_model(image: str | None = None, claim: str = MODELS_CLAIM, *, model_path: str = MODEL_PATH,
                   timeout_s: int = MODEL_WAIT_TIMEOUT_S,
                   volume_name: str = "model-wait") -> tuple[dict[str, Any], dict[str, Any]]:
    """An init container that holds a server's pod until the model artifact at ``model_path`` exists and its
    SHA-256 matches its metadata (:func:`kit.train.artifact.verify`), and the volume it reads it from.

    It logs what it waits for, and after ``timeout_s`` exits 1 naming the Job that writes the model, so
    ``kubectl apply -k`` of everything at once still starts the servers only once the model is there.
    ``volume_name``: a pod that already mounts the models volume passes its name (and adds no second one).
    """
    volume, mount = models_volume(claim, read_only=True)
    volume = {**volume, "name": volume_name}
    container = pods.container(
        "wait-for-model", image or versions.IMAGES["kit"], "100m", "128Mi",
        command=["python", "-c", _WAIT_FOR_MODEL, model_path, str(timeout_s), f"publish-{MODEL_NAME}"],
        volume_mounts=[{**mount, "name": volume_name}])
    return container, volume


def publish_model_job(namespace: str, *, claim: str = MODELS_CLAIM, image: str | None = None,
                      queue: str | None = None, epochs: int = 20, cpu: str = "1",
                      memory: str = "1Gi") -> dict[str, Any]:
    """A Job that trains the model in one process (``python -m kit train --launcher in-process``, the same
    ``train_func``) and writes its serving artifact to ``claim`` at ``/models/<name>``, so both servers
    have a model before the RayJob or TrainJob replace it with theirs."""
    config = json.dumps({"epochs": epochs}, separators=(",", ":"))
    job = core.batch_job(
        f"publish-{MODEL_NAME}", namespace,
        ["python", "-m", "kit", "train", "--launcher", "in-process", "--model-dir", MODEL_PATH, "--config", config],
        image=image or versions.IMAGES["kit"], cpu=cpu, memory=memory, queue=queue)
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
    **cluster_options: Any,
) -> dict[str, Any]:
    """A RayService running the kit's Serve app; ``config`` defaults to the local defaults.

    ``image`` must contain the ``kit`` package and torch on Ray's image at the client's Ray version:
    the kit's image (``versions.IMAGES["kit"]``, ``make image``), the default. ``cluster_options`` size the
    Ray pods (``head_cpu``, ``worker_memory``... of :func:`kit.k8s.builders.ray.raycluster_spec`). Every pod
    waits for the model first (:func:`wait_for_model`).
    """
    config = config or ServeConfig(model_dir=MODEL_PATH)
    spec = ray.raycluster_spec(workers=workers, min_workers=1, max_workers=max_workers,
                               autoscaling=bool(config.autoscaling), **cluster_options)
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        pod = group["template"]["spec"]
        volume, mount = models_volume(models_claim, read_only=True)
        pod["volumes"].append(volume)
        pod["initContainers"] = [wait_for_model(image, models_claim, volume_name=volume["name"])[0]]
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
) -> dict[str, Any]:
    """An InferenceService with the kit's predictor as a custom container, in Standard mode, reachable only
    inside the cluster (:data:`VISIBILITY_LABEL`; ``kubectl port-forward`` from outside).

    With a ``pvc://`` storage URI its pod first waits for the model on that claim (:func:`wait_for_model`).
    For a canary see :func:`with_canary` (``canaryTrafficPercent`` does nothing in Standard mode).
    """
    if not 0 <= min_replicas <= max_replicas:
        raise ValueError(f"need 0 <= min_replicas <= max_replicas, got {min_replicas}, {max_replicas}")
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
    if storage_uri.startswith("pvc://"):  # KServe mounts the claim itself; the pod waits for the model on it
        claim, _, path = storage_uri.removeprefix("pvc://").partition("/")
        wait, wait_volume = wait_for_model(image, claim, model_path=f"{MODELS_MOUNT}/{path}".rstrip("/"))
        pod["initContainers"], pod["volumes"] = [wait], [wait_volume]
    predictor: dict[str, Any] = {"minReplicas": min_replicas, "maxReplicas": max_replicas, **pod}
    return {
        "apiVersion": versions.KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "labels": {VISIBILITY_LABEL: CLUSTER_LOCAL},
                     "annotations": {DEPLOYMENT_MODE: "Standard"}},
        "spec": {"predictor": predictor},
    }


def with_canary(isvc: dict[str, Any], name: str = "v2", storage_uri: str = f"pvc://{MODELS_CLAIM}/{MODEL_NAME}-v2",
                traffic_percent: int = 10) -> dict[str, Any]:
    """A copy of ``isvc`` with a ``spec.canary`` entry: KServe v0.20.0's canary in Standard mode.

    The controller runs the canary as its own Deployment and Service ``<isvc>-<name>-predictor`` beside the
    stable ``<isvc>-predictor`` (``reconcileCanaryDeployments``, components/predictor.go), with fixed replicas
    ceil(stable minReplicas x traffic_percent / 100); the canary predictor is the stable one with these fields
    overridden, so it repeats the container with the new model's ``STORAGE_URI``. v0.20.0 does not route
    traffic to it (its HTTPRoute has one backend): :func:`canary_route` splits the traffic.
    """
    if not 0 <= traffic_percent <= 100:
        raise ValueError(f"traffic_percent must be 0..100, got {traffic_percent}")
    changed: dict[str, Any] = json.loads(json.dumps(isvc))
    container = json.loads(json.dumps(changed["spec"]["predictor"]["containers"][0]))
    container["env"] = [e for e in container.get("env", []) if e.get("name") != "STORAGE_URI"]
    container["env"].append({"name": "STORAGE_URI", "value": storage_uri})
    changed["spec"]["canary"] = [{"trafficPercent": traffic_percent, "predictor": {"name": name,
                                                                                "containers": [container]}}]
    return changed


def canary_route(isvc: dict[str, Any], gateway: str = "kit-gateway", port: int = 80) -> dict[str, Any]:
    """A Gateway API ``HTTPRoute`` that splits requests between the stable predictor's Service and each
    ``spec.canary`` entry's by ``trafficPercent`` (weights; the stable one keeps the rest). Needs a Gateway
    API implementation and a Gateway named ``gateway``; the kit installs neither."""
    name, namespace = isvc["metadata"]["name"], isvc["metadata"].get("namespace", "default")
    canaries = isvc["spec"].get("canary") or []
    rest = 100 - sum(int(c["trafficPercent"]) for c in canaries)
    backends = [{"name": f"{name}-predictor", "port": port, "weight": rest}]
    backends += [{"name": f"{name}-{c['predictor']['name']}-predictor", "port": port,
                  "weight": int(c["trafficPercent"])} for c in canaries]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": gateway}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends}]},
    }
