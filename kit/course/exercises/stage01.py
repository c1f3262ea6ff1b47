"""Exercises of stage 01 (Kubernetes for AI). Each check runs the kit's validator and policy on the answer."""

from __future__ import annotations

import copy

from kit.course.exercises import NotYetRight, exercise, expect_manifest, listed, validation_problems
from kit.k8s.builders import kueue, pods, ray
from kit.versions import DEFAULT_FLAVOR, QUEUE_LABEL

TEAM = "team-a"
QUEUE = "team-a-queue"
CLUSTER_QUEUE = "team-a-cq"
#: The ClusterQueue quota of exercise 01.2: the RayCluster must fit it whole.
TEAM_QUOTA = {"cpu": "4", "memory": "6Gi"}


def broken_pod() -> dict:
    """A Pod the way many tutorials write it: root, privileged, no resources. Namespaces enforcing
    ``restricted`` refuse it, and nothing stops it from eating a whole node."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "preprocess", "namespace": TEAM},
        "spec": {
            "containers": [{
                "name": "main",
                "image": "python:3.11-slim",
                "command": ["python", "-c", "print('tokenising...')"],
                "securityContext": {"privileged": True, "runAsUser": 0},
            }],
            "restartPolicy": "Never",
        },
    }


def _fixed_pod() -> dict:
    pod = copy.deepcopy(broken_pod())
    container = pod["spec"]["containers"][0]
    container["securityContext"] = pods.restricted_security_context()
    container["resources"] = pods.resources("500m", "512Mi")
    return pod


def team_queues() -> list[dict]:
    """The ClusterQueue and LocalQueue of exercise 01.2 (one flavor, :data:`TEAM_QUOTA`)."""
    return [kueue.resource_flavor(), kueue.cluster_queue(CLUSTER_QUEUE, {DEFAULT_FLAVOR: TEAM_QUOTA}),
            kueue.local_queue(QUEUE, TEAM, CLUSTER_QUEUE)]


def too_big_raycluster() -> dict:
    """Three 2 GiB workers and a 2 GiB head, not queued: Kueue would not even look at it."""
    return ray.raycluster("team-a-ray", TEAM, workers=3)


@exercise(
    "01.restricted_pod",
    "Make a Pod pass the restricted profile",
    "Keep name, image and command. In the container set securityContext to "
    "kit.k8s.builders.pods.restricted_security_context() (non-root, no privilege escalation, capabilities "
    "dropped, seccomp RuntimeDefault) and resources to kit.k8s.builders.pods.resources(cpu, memory).",
    reference=_fixed_pod,
)
def check_restricted_pod(pod) -> None:
    expect_manifest(pod, "Pod")
    original = broken_pod()["spec"]["containers"][0]
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    fixed = containers[0] if isinstance(containers[0], dict) else {}
    for key in ("name", "image", "command"):
        if fixed.get(key) != original[key]:
            raise NotYetRight(f"the container's {key} changed ({fixed.get(key)!r}); fix the security settings "
                              f"and resources, keep what it runs ({original[key]!r})")
    problems = validation_problems([pod])
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s) remain:{listed(problems)}")


def _queued_reference() -> dict:
    return ray.raycluster("team-a-ray", TEAM, queue=QUEUE, workers=2)


@exercise(
    "01.queued_raycluster",
    "Queue a RayCluster with Kueue so that it can be admitted",
    f"Two things: the label {QUEUE_LABEL} must name the LocalQueue (the builder's queue= argument "
    "sets it), and the whole cluster - head plus every worker - must fit the ClusterQueue's quota "
    "(kit.course.exercises.stage01.TEAM_QUOTA). kit.k8s.builders.kueue.total_requests(cluster) shows what it asks for.",
    reference=_queued_reference,
)
def check_queued_raycluster(cluster) -> None:
    expect_manifest(cluster, "RayCluster")
    labels = (cluster.get("metadata") or {}).get("labels") or {}
    if QUEUE_LABEL not in labels:
        raise NotYetRight(f"no {QUEUE_LABEL} label: Kueue ignores the RayCluster and it starts at once, "
                          "outside every quota")
    problems = validation_problems([*team_queues(), cluster])
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s):{listed(problems)}")
    (admission,) = kueue.simulate_admission(TEAM_QUOTA, [cluster])
    if not admission.admitted:
        raise NotYetRight(f"queued, but it can never be admitted: {admission.reason}. Kueue admits a gang whole, "
                          "so shrink the cluster until head and workers fit together")


#: The GPU flavor of stretch exercise 01.3 (the kit's GPU overlay uses the same one), and the team's GPU quota.
GPU_FLAVOR = "gpu"
TEAM_GPUS = 1


def gpu_flavor() -> dict:
    """A ResourceFlavor for GPU nodes: its node labels and tolerations steer admitted pods there."""
    from kit.k8s.builders import core

    scheduling = core.gpu_scheduling(1)
    return kueue.resource_flavor(GPU_FLAVOR, scheduling["nodeSelector"], scheduling["tolerations"])


def _gpu_queue_reference() -> dict:
    from kit.k8s.builders import core

    return kueue.cluster_queue(CLUSTER_QUEUE, {DEFAULT_FLAVOR: TEAM_QUOTA, GPU_FLAVOR: {core.GPU_RESOURCE: TEAM_GPUS}})


def _flavor_quotas(queue: dict) -> tuple[dict[str, dict[str, str]], list[list[str]]]:
    """``{flavor: {resource: nominalQuota}}`` and each resource group's covered resources."""
    quotas: dict[str, dict[str, str]] = {}
    covered: list[list[str]] = []
    for group in (queue.get("spec") or {}).get("resourceGroups") or []:
        covered.append(list(group.get("coveredResources") or []))
        for flavor in group.get("flavors") or []:
            quotas.setdefault(flavor.get("name"), {}).update(
                {r.get("name"): str(r.get("nominalQuota")) for r in flavor.get("resources") or []})
    return quotas, covered


@exercise(
    "01.gpu_queue",
    "Stretch: give team A one GPU through Kueue",
    "Quota is per flavor: keep default-flavor's cpu and memory, and add the flavor 'gpu' with nvidia.com/gpu: 1. "
    "Kueue lets a resource appear in one resource group only, and every flavor of a group must cover all its "
    "resources, so the GPU gets a group of its own. kit.k8s.builders.kueue.cluster_queue(name, {flavor: {resource: "
    "quota}}) builds the groups for you.",
    reference=_gpu_queue_reference,
)
def check_gpu_queue(queue) -> None:
    from kit.k8s.builders import core

    expect_manifest(queue, "ClusterQueue")
    if (queue.get("metadata") or {}).get("name") != CLUSTER_QUEUE:
        raise NotYetRight(f"the ClusterQueue is named {(queue.get('metadata') or {}).get('name')!r}; team A's "
                          f"LocalQueue points at {CLUSTER_QUEUE!r}")
    quotas, covered = _flavor_quotas(queue)
    gpus = quotas.get(GPU_FLAVOR, {}).get(core.GPU_RESOURCE)
    if gpus is None:
        elsewhere = [f for f, q in quotas.items() if core.GPU_RESOURCE in q]
        where = f" (it is under {elsewhere})" if elsewhere else ""
        raise NotYetRight(f"no {core.GPU_RESOURCE} quota in the flavor {GPU_FLAVOR!r}{where}: only that flavor's "
                          "node labels and tolerations send pods to GPU nodes")
    if gpus != str(TEAM_GPUS):
        raise NotYetRight(f"the team gets {gpus} GPU(s); give it {TEAM_GPUS}")
    if quotas.get(DEFAULT_FLAVOR) != {k: str(v) for k, v in TEAM_QUOTA.items()}:
        raise NotYetRight(f"{DEFAULT_FLAVOR}'s quota is now {quotas.get(DEFAULT_FLAVOR)}; keep the team's cpu and "
                          f"memory ({TEAM_QUOTA}) next to the GPU")
    if any(core.GPU_RESOURCE in group and len(group) > 1 for group in covered):
        raise NotYetRight(f"{core.GPU_RESOURCE} shares a resource group with {covered[0]}: every flavor of that group "
                          "would then need GPU quota too; give the GPU a group of its own")
    problems = validation_problems([kueue.resource_flavor(), gpu_flavor(), queue])
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s):{listed(problems)}")
