"""Stage 01 exercises reject wrong answers with specific messages and accept right ones."""

from __future__ import annotations

import copy

import pytest

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage01
from kit.k8s.builders import pods, ray


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


def _pod(change) -> dict:
    pod = stage01.broken_pod()
    change(pod["spec"]["containers"][0])
    return pod


@pytest.mark.parametrize(("answer", "message"), [
    ("a pod", "expected the Pod as a dict"),
    ({"kind": "Deployment"}, "expected kind Pod, got 'Deployment'"),
    (stage01.broken_pod(), r"7 problem\(s\) remain:\n  spec.securityContext.runAsNonRoot"),
    (_pod(lambda c: c.update(image="busybox:1.36")), "the container's image changed"),
    # secure, but no resources: the kit's policy still refuses it
    (_pod(lambda c: c.update(securityContext=pods.restricted_security_context())),
     r"1 problem\(s\) remain:\n  spec.containers\[0\].resources: missing resources"),
    # dropping privileged is not enough: root and no seccomp remain
    (_pod(lambda c: c.update(securityContext={"allowPrivilegeEscalation": False, "runAsUser": 0},
                             resources=pods.resources("1", "1Gi"))), "runAsUser must not be 0"),
])
def test_restricted_pod_rejects_wrong_answers(answer, message):
    _wrong("01.restricted_pod", answer, message)


def test_restricted_pod_accepts_a_fix_in_the_pod_securitycontext():
    pod = stage01.broken_pod()
    pod["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    pod["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False,
                                                       "capabilities": {"drop": ["ALL"]}}
    pod["spec"]["containers"][0]["resources"] = pods.resources("250m", "256Mi")
    assert exercises.check("01.restricted_pod", pod) is pod


def _labelled(cluster: dict, queue: str) -> dict:
    cluster = copy.deepcopy(cluster)
    cluster["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue}
    return cluster


@pytest.mark.parametrize(("answer", "message"), [
    (stage01.broken_pod(), "expected kind RayCluster"),
    (stage01.too_big_raycluster(), "no kueue.x-k8s.io/queue-name label: Kueue ignores"),
    (_labelled(stage01.too_big_raycluster(), "team-b"), "queue label 'team-b' names no LocalQueue"),
    (_labelled(stage01.too_big_raycluster(), stage01.QUEUE),
     r"can never be admitted: insufficient quota \(memory needs 8Gi, 6Gi free\)"),
    (ray.raycluster("team-a-ray", stage01.TEAM, queue=stage01.QUEUE, workers=1, head_cpu="4"),
     r"cpu needs 5, 4 free"),
    (ray.raycluster("x", "team-b", queue=stage01.QUEUE, workers=1), "names no LocalQueue"),
])
def test_queued_raycluster_rejects_wrong_answers(answer, message):
    _wrong("01.queued_raycluster", answer, message)


def test_queued_raycluster_accepts_any_cluster_that_fits():
    small = ray.raycluster("team-a-ray", stage01.TEAM, queue=stage01.QUEUE, workers=3, worker_memory="1Gi")
    assert exercises.check("01.queued_raycluster", small) is small


@pytest.mark.parametrize("id", ["01.restricted_pod", "01.queued_raycluster"])
def test_placeholder_skips_ahead_to_an_answer_the_check_accepts(id, capsys):
    answer = exercises.check(id, ...)
    assert "not solved yet" in capsys.readouterr().out
    exercises.check(id, answer)


def _queue(quotas) -> dict:
    from kit.k8s.builders import kueue

    return kueue.cluster_queue(stage01.CLUSTER_QUEUE, quotas)


def _one_group() -> dict:
    queue = _queue({"default-flavor": stage01.TEAM_QUOTA})
    group = queue["spec"]["resourceGroups"][0]
    group["coveredResources"].append("nvidia.com/gpu")
    group["flavors"].append({"name": "gpu", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": "1"}]})
    return queue


@pytest.mark.parametrize(("answer", "message"), [
    (stage01.team_queues()[0], "expected kind ClusterQueue"),
    (_queue({"default-flavor": stage01.TEAM_QUOTA}), "no nvidia.com/gpu quota in the flavor 'gpu'"),
    (_queue({"default-flavor": {**stage01.TEAM_QUOTA, "nvidia.com/gpu": 1}}),
     r"no nvidia.com/gpu quota in the flavor 'gpu' \(it is under \['default-flavor'\]\)"),
    (_queue({"default-flavor": stage01.TEAM_QUOTA, "gpu": {"nvidia.com/gpu": 2}}), "the team gets 2 GPU"),
    (_queue({"gpu": {"nvidia.com/gpu": 1}}), "keep the team's cpu and memory"),
    (_one_group(), "shares a resource group"),
])
def test_gpu_queue_rejects_wrong_answers(answer, message):
    _wrong("01.gpu_queue", answer, message)


def test_gpu_queue_accepts_the_reference():
    exercises.check("01.gpu_queue", exercises.skip_ahead("01.gpu_queue"))
