"""The RayCluster builder: pinned image, token auth, restricted pods, sane worker bounds."""

from __future__ import annotations

import pytest
import yaml

from kit import versions
from kit.k8s import builders as manifests
from kit.k8s.builders import ray as ray_manifests


def _containers(cluster: dict) -> list[dict]:
    spec = cluster["spec"]
    templates = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    return [c for t in templates for c in t["spec"]["containers"]]


def test_raycluster_pins_version_and_turns_token_auth_on():
    cluster = ray_manifests.raycluster()
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    assert cluster["spec"]["rayVersion"] == versions.RAY
    assert cluster["spec"]["authOptions"] == {"mode": "token"}
    assert {c["image"] for c in _containers(cluster)} == {versions.IMAGES["ray"]}


def test_every_container_is_restricted_with_requests_and_limits():
    for container in _containers(ray_manifests.raycluster(gpu_workers=1)):
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] and not ctx["allowPrivilegeEscalation"]
        assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["seccompProfile"]["type"] == "RuntimeDefault"
        assert container["resources"]["requests"] == container["resources"]["limits"]
        assert {"mountPath": "/tmp/ray", "name": "ray-tmp"} in container["volumeMounts"]


def test_gpu_group_uses_the_gpu_image_and_requests_gpus():
    gpu = ray_manifests.raycluster(gpu_workers=2)["spec"]["workerGroupSpecs"][1]
    container = gpu["template"]["spec"]["containers"][0]
    assert container["image"] == versions.IMAGES["ray-gpu"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert (gpu["minReplicas"], gpu["maxReplicas"]) == (0, 2)


def test_queue_label_and_yaml_round_trip():
    cluster = ray_manifests.raycluster(queue="team-a")
    assert cluster["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "team-a"}
    assert yaml.safe_load(manifests.to_yaml(cluster)) == cluster


@pytest.mark.parametrize(("workers", "low", "high"), [(2, 3, 4), (5, 1, 4), (1, -1, 2)])
def test_impossible_worker_bounds_fail_fast(workers, low, high):
    with pytest.raises(ValueError, match="min_workers <= workers <= max_workers"):
        ray_manifests.raycluster(workers=workers, min_workers=low, max_workers=high)


@pytest.mark.parametrize(
    "options", [{}, {"gpu_workers": 1, "autoscaling": True, "max_workers": 4, "queue": "team-a"}]
)
def test_raycluster_passes_the_kuberay_crd_and_restricted_policy(options):
    from kit.k8s.validation import validate

    problems = validate.validate_documents([ray_manifests.raycluster(**options)], "raycluster")
    assert problems == [], "\n".join(map(str, problems))
