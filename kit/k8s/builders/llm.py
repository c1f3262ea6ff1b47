"""Stage 12 on a real cluster: a language model served with vLLM on GPUs, the model on a volume.

- :func:`llm_inference_service`: KServe's ``LLMInferenceService`` (``serving.kserve.io/v1alpha2``, the
  CRD's storage version): the model from ``pvc://<claim>/<dir>``, one replica with ``nvidia.com/gpu``
  requests, vLLM's OpenAI server as the ``main`` container with the engine knobs stage 12 measures;
  ``router`` left to KServe's defaults (the Gateway API inference extension and KV-cache-aware routing
  are what ``router.scheduler`` adds: stage 12's prose).
- :func:`rayservice_vllm`: a RayService whose Serve application is Ray Serve LLM
  (``ray.serve.llm:build_openai_app``) on a GPU worker group, reading the model from the same volume.
- :func:`llm_models_claim`: the PersistentVolumeClaim both read (the kit's artifact, Hugging Face format).

Images are the engines' own (vLLM's OpenAI image, Ray's LLM image at the kit's Ray): the kit's image
has no CUDA vLLM.
"""

from __future__ import annotations

from typing import Any

import yaml

from kit import versions
from kit.k8s.builders import core, pods, ray
from kit.k8s.builders.serving import shared_claim

LLM_CLAIM = "kit-llm-models"
LLM_MOUNT = "/mnt/models"
MODEL_DIR = "kit-tiny-llama"
SERVED_NAME = "kit-tiny-llama"
VLLM_PORT = 8000


def llm_models_claim(namespace: str, size: str = "20Gi", access_mode: str = "ReadWriteOnce",
                     storage_class: str | None = None) -> dict[str, Any]:
    """The volume holding the model directory (copy build/models/llm there, or any Hugging Face model)."""
    return shared_claim(namespace, LLM_CLAIM, size, access_mode, storage_class=storage_class)


def engine_args(max_num_seqs: int = 64, max_model_len: int = 256, prefix_caching: bool = True) -> list[str]:
    """vLLM's server flags on a GPU: the same knobs as :class:`kit.llm.server.EngineOptions`."""
    return ["--served-model-name", SERVED_NAME, "--max-num-seqs", str(max_num_seqs),
            "--max-model-len", str(max_model_len), "--gpu-memory-utilization", "0.9",
            "--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching"]


def llm_inference_service(namespace: str, *, name: str = "kit-llm", gpus: int = 1, cpu: str = "4",
                          memory: str = "16Gi", replicas: int = 1, claim: str = LLM_CLAIM,
                          image: str | None = None, max_num_seqs: int = 64) -> dict[str, Any]:
    """KServe's LLMInferenceService serving the model on ``claim`` with vLLM on ``gpus`` GPUs per replica."""
    if gpus < 1:
        raise ValueError("an LLMInferenceService here runs vLLM's CUDA image: give it at least one GPU")
    # restricted like every kit pod; vLLM writes its caches under HOME, so HOME is an emptyDir
    main = pods.container("main", image or versions.IMAGES["vllm"], cpu, memory, gpus=gpus,
                          args=engine_args(max_num_seqs), env=[{"name": "HOME", "value": "/tmp/home"}],
                          volume_mounts=[{"name": "home", "mountPath": "/tmp/home"}])
    return {
        "apiVersion": f"{versions.KSERVE_GROUP}/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"uri": f"pvc://{claim}/{MODEL_DIR}", "name": SERVED_NAME},
            "replicas": replicas,
            "template": {"securityContext": pods.restricted_pod_security_context(), "containers": [main],
                         "volumes": [{"name": "home", "emptyDir": {}}], **core.gpu_scheduling(gpus),
                         **pods.api_access()},  # the engine never calls the Kubernetes API
            "router": {"route": {}, "gateway": {}},
        },
    }


def serve_llm_config(max_num_seqs: int = 64, gpus: int = 1) -> dict[str, Any]:
    """serveConfigV2 for Ray Serve LLM: one OpenAI-compatible app over vLLM, the model from the volume."""
    llm_config = {
        "model_loading_config": {"model_id": SERVED_NAME, "model_source": f"{LLM_MOUNT}/{MODEL_DIR}"},
        "engine_kwargs": {"max_num_seqs": max_num_seqs, "max_model_len": 256, "enable_prefix_caching": True,
                          "tensor_parallel_size": gpus},
        "deployment_config": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}},
    }
    return {"applications": [{"name": "llm", "route_prefix": "/", "import_path": "ray.serve.llm:build_openai_app",
                              "args": {"llm_configs": [llm_config]}}]}


def rayservice_vllm(namespace: str, *, name: str = "kit-llm", gpus: int = 1, claim: str = LLM_CLAIM,
                    image: str | None = None, worker_cpu: str = "4", worker_memory: str = "16Gi") -> dict[str, Any]:
    """A RayService running vLLM through Ray Serve LLM on one GPU worker; every pod mounts the model volume."""
    image = image or versions.IMAGES["ray-llm"]
    spec = ray.raycluster_spec(workers=0, min_workers=0, max_workers=0, gpu_workers=1, gpus_per_worker=gpus,
                               worker_cpu=worker_cpu, worker_memory=worker_memory, image=image, gpu_image=image)
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        pod["volumes"].append({"name": "llm-models", "persistentVolumeClaim": {"claimName": claim,
                                                                               "readOnly": True}})
        for container in pod["containers"]:
            container["volumeMounts"].append({"name": "llm-models", "mountPath": LLM_MOUNT, "readOnly": True})
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"].append(
        {"containerPort": VLLM_PORT, "name": "serve"})
    return {
        "apiVersion": versions.RAY_API_VERSION,
        "kind": "RayService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"serveConfigV2": yaml.safe_dump(serve_llm_config(gpus=gpus), sort_keys=False),
                 "rayClusterConfig": spec},
    }
