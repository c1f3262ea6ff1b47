"""The one version lock of the kit.

Every Python pin, operator version and container image the kit depends on lives
here. ``pyproject.toml`` and ``environment.yml`` repeat the Python pins (tools
that install packages cannot import Python), and ``tests/test_versions.py`` fails
when they drift from this file. Manifests and the doctor read this module.
"""

from __future__ import annotations

PYTHON_MIN = (3, 10)
PYTHON_MAX = (3, 12)  # inclusive: 3.10, 3.11 and 3.12 are supported

RAY = "2.60.0"
TORCH = "2.13.0"

#: Python distribution -> exact version. Installed by ``make lab`` / ``make test``.
PYTHON_PINS: dict[str, str] = {
    "ray": RAY,  # installed with the [train,tune,serve] extras
    "torch": TORCH,
    "kubeflow": "0.5.0",  # Kubeflow SDK: kubeflow.trainer.TrainerClient (Trainer v2)
    "kubeflow-training": "1.9.4",  # legacy training-operator v1 SDK (PyTorchJob)
    "kubernetes": "35.0.0",  # both Kubeflow SDKs need kubernetes<36
    "kserve": "0.20.0",
    "jupyterlab": "4.6.6",
    "ipywidgets": "8.1.9",  # progress bars in notebooks (tqdm.auto, Ray)
    "ipykernel": "7.4.0",
    "papermill": "2.7.0",
    "nbval": "0.11.0",
    "nbformat": "5.11.1",
    "pytest": "9.0.3",
    "matplotlib": "3.11.2",
    "scikit-learn": "1.9.1",
    "psutil": "5.9.8",  # kserve 0.20 needs psutil<6
    "pyyaml": "6.0.3",
    "jsonschema": "4.26.0",
    "kubernetes-validate": "1.37.0",
    "httpx": "0.28.1",
    "tqdm": "4.70.1",
    "ruff": "0.17.5",
}

#: Extras requested for a pinned distribution.
PYTHON_EXTRAS: dict[str, str] = {"ray": "train,tune,serve"}

#: Operators installed on a cluster (see clusters/ and the Kubernetes stages).
OPERATORS: dict[str, str] = {
    "kuberay": "v1.7.0",
    "kubeflow-trainer": "v2.3.0",
    "training-operator": "v1.9.4",  # legacy, shown only as the older API
    "kueue": "v0.19.2",
    "kserve": "v0.20.0",
    "cert-manager": "v1.17.0",  # KServe's webhooks need it; the version KServe's own installer pins
}

#: kind (Kubernetes in Docker) for ``make test-cluster``; its node image is pinned by digest in IMAGES.
KIND = "v0.31.0"

#: Container images. The Ray image must match the client's Ray version exactly:
#: a client/cluster mismatch is the most common KubeRay failure users report.
IMAGES: dict[str, str] = {
    "ray": f"rayproject/ray:{RAY}-py311-cpu",
    "ray-gpu": f"rayproject/ray:{RAY}-py311-gpu",
    "kserve-base": "python:3.11-slim",
    "python": "python:3.11-slim",  # plain batch Jobs in stage 01
    # The image upstream's torch-distributed ClusterTrainingRuntime uses, at the kit's torch version.
    "pytorch": f"pytorch/pytorch:{TORCH}-cuda13.0-cudnn9-runtime",
    # The node image kind v0.31.0 was released with (Kubernetes 1.35.0), pinned by digest.
    "kind-node": "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    # the kit's predictor (kit.serving.kserve_model) on kserve-base, with the pins above installed
    "kit-serving": "ghcr.io/cloud-native-ai-kit/kit-serving:0.1.0",
}

#: Ports the kit uses locally (the doctor checks that they are free).
PORTS: dict[str, int] = {
    "ray-gcs": 6379,
    "ray-dashboard": 8265,
    "ray-client": 10001,
    "ray-serve": 8000,
    "kserve": 8080,
}


def requirement(name: str) -> str:
    """The pip requirement string for a pinned distribution, e.g. ``ray[train]==2.60.0``."""
    extras = PYTHON_EXTRAS.get(name)
    return f"{name}[{extras}]=={PYTHON_PINS[name]}" if extras else f"{name}=={PYTHON_PINS[name]}"


def requirements() -> list[str]:
    """All pinned requirements, in the order of :data:`PYTHON_PINS`."""
    return [requirement(name) for name in PYTHON_PINS]
