"""kit.k8s.builders.training: the builders' structure (schema and policy checks live in kit.k8s.builders'
validator; these tests pin what the builders promise)."""

from __future__ import annotations

import json
import shlex

import pytest

from kit import versions
from kit.config.train import ConfigError
from kit.k8s.builders import training as manifests

CONFIG = {"epochs": 2}


def _pod_specs(doc: dict) -> list[dict]:
    spec = doc["spec"]
    if doc["kind"] == "TrainJob":
        job = spec["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
        return [job["template"]["spec"]["template"]["spec"]]
    if doc["kind"] == "PyTorchJob":
        return [r["template"]["spec"] for r in spec["pytorchReplicaSpecs"].values()]
    cluster = spec["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [spec["submitterPodTemplate"]["spec"]] + [g["template"]["spec"] for g in groups]


ALL = [manifests.trainjob(CONFIG, queue="team-a"), manifests.pytorchjob(dict(CONFIG, workers=2), queue="team-a"),
       manifests.rayjob(CONFIG, queue="team-a")]


@pytest.mark.parametrize("doc", ALL, ids=lambda d: d["kind"])
def test_every_pod_is_restricted(doc):
    for pod in _pod_specs(doc):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 1000
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("doc", ALL, ids=lambda d: d["kind"])
def test_queue_label_and_cpu_memory_requests_and_limits(doc):
    assert doc["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    if doc["kind"] == "TrainJob":  # resources per node live on the trainer, not in the pod patch
        resources = [doc["spec"]["trainer"]["resourcesPerNode"]]
    else:
        resources = [c["resources"] for pod in _pod_specs(doc) for c in pod["containers"]]
    for r in resources:
        assert set(r["requests"]) >= {"cpu", "memory"} and set(r["limits"]) >= {"cpu", "memory"}


def test_no_queue_no_label():
    assert "kueue.x-k8s.io/queue-name" not in manifests.trainjob(CONFIG)["metadata"]["labels"]


def test_trainjob_references_the_torch_runtime_and_runs_the_kit_entry():
    doc = manifests.trainjob(dict(CONFIG, workers=4), num_nodes=2, gpus=1)
    assert doc["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert doc["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
                                         "name": "torch-distributed"}
    trainer = doc["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["numProcPerNode"] == 2
    assert trainer["command"][:3] == ["torchrun", "-m", "kit.train.entry"]
    assert json.loads(trainer["command"][3])["workers"] == 4
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "1"
    assert trainer["image"] == versions.IMAGES["kit-gpu"]  # torch, torchrun and kit, CUDA build


def test_pytorchjob_is_the_legacy_api_with_a_pytorch_container():
    doc = manifests.pytorchjob(dict(CONFIG, workers=3))  # a Master and two Workers
    assert doc["apiVersion"] == "kubeflow.org/v1"
    assert doc["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    assert doc["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    for pod in _pod_specs(doc):
        assert pod["containers"][0]["name"] == "pytorch"


def test_rayjob_token_auth_pinned_image_tmp_ray_and_cleanup():
    doc = manifests.rayjob(dict(CONFIG, workers=2))
    spec = doc["spec"]
    assert doc["apiVersion"] == "ray.io/v1"
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert cluster["rayVersion"] == versions.RAY
    workers = cluster["workerGroupSpecs"][0]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 2
    for group in (cluster["headGroupSpec"], workers):
        pod = group["template"]["spec"]
        assert pod["containers"][0]["image"] == versions.IMAGES["kit"]  # Ray at the client version + torch + kit
        assert {"name": "ray-tmp", "emptyDir": {}} in pod["volumes"]
        assert {"name": "ray-tmp", "mountPath": "/tmp/ray"} in pod["containers"][0]["volumeMounts"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:5] == ["python", "-m", "kit.train.launchers", "ray", "--max-failures"]
    assert "--workers" not in argv  # the count travels in the config only
    assert json.loads(argv[argv.index("--config") + 1])["workers"] == 2


def test_builders_validate_the_config_first():
    with pytest.raises(ConfigError, match=r"TrainConfig\.epochs"):
        manifests.rayjob({"epochs": 0})


def test_trainjob_resources_per_node_count_for_the_node_container():
    """Trainer applies resourcesPerNode to the `node` container; without it the policy must object."""
    from kit.k8s.builders import training
    from kit.k8s.validation import policy

    job = training.trainjob({})
    assert policy.check_policy([job]) == []
    del job["spec"]["trainer"]["resourcesPerNode"]
    problems = policy.check_policy([job])
    assert any("missing resources" in p.message for p in problems)


def test_rayjob_checkpoints_go_to_storage_every_pod_shares():
    """Ray Train refuses a per-pod local storage path on a multi-node cluster ("Unable to set up cluster storage")."""
    doc = manifests.rayjob(dict(CONFIG, workers=2))
    assert "--storage-path /mnt/cluster_storage/kit-results" in doc["spec"]["entrypoint"]
    cluster = doc["spec"]["rayClusterSpec"]
    for group in (cluster["headGroupSpec"], *cluster["workerGroupSpecs"]):
        pod = group["template"]["spec"]
        assert {"name": "shared", "persistentVolumeClaim": {"claimName": "kit-checkpoints"}} in pod["volumes"]
        assert {"name": "shared", "mountPath": "/mnt/cluster_storage"} in pod["containers"][0]["volumeMounts"]
    s3 = manifests.rayjob(CONFIG, storage_path="s3://bucket/kit", checkpoint_claim=None)
    assert "--storage-path s3://bucket/kit" in s3["spec"]["entrypoint"]
    assert "shared" not in str(s3["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["volumes"])
    for storage_path, claim in (("/tmp/ray/kit-results", None), (None, None), ("/tmp/ray/x", "kit-checkpoints")):
        with pytest.raises(ValueError, match="Unable to set up cluster storage"):
            manifests.rayjob(CONFIG, storage_path=storage_path, checkpoint_claim=claim)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_every_builder_starts_exactly_config_workers_processes(workers):
    """TrainConfig.workers is the one worker count: each builder's replicas x processes equal it, and the
    config the pods run carries the same number."""
    config = dict(CONFIG, workers=workers)
    trainer = manifests.trainjob(config, num_nodes=1)["spec"]["trainer"]
    assert trainer["numNodes"] * trainer["numProcPerNode"] == workers
    assert json.loads(trainer["command"][-1])["workers"] == workers
    legacy = manifests.pytorchjob(config)
    replicas = sum(spec["replicas"] for spec in legacy["spec"]["pytorchReplicaSpecs"].values())
    assert replicas * int(legacy["spec"]["nprocPerNode"]) == workers
    ray = manifests.rayjob(config)
    group = ray["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["replicas"] == group["maxReplicas"] == workers
    argv = shlex.split(ray["spec"]["entrypoint"])
    assert json.loads(argv[argv.index("--config") + 1])["workers"] == workers


def test_a_layout_that_does_not_split_the_workers_is_an_error_naming_both():
    with pytest.raises(ConfigError, match=r"workers=3 does not split evenly over num_nodes=2"):
        manifests.trainjob(dict(CONFIG, workers=3), num_nodes=2)
    with pytest.raises(ConfigError, match=r"workers=3 does not split evenly over procs_per_node=2"):
        manifests.pytorchjob(dict(CONFIG, workers=3), procs_per_node=2)
    for builder in (manifests.trainjob, manifests.pytorchjob, manifests.rayjob):
        with pytest.raises(TypeError):  # no second source for the count
            builder(CONFIG, workers=2)
