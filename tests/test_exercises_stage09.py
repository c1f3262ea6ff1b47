"""Stage 09 exercises reject wrong answers with specific messages and accept right ones."""

from __future__ import annotations

import copy

import pytest

from kit import versions
from kit.course import exercises
from kit.course.exercises import NotYetRight, stage09
from kit.k8s import traverse


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


def _rayjob(image: str | None = None, shutdown: bool = True, queue: bool = True, entrypoint: str | None = None):
    job = stage09.broken_rayjob()
    job["spec"]["shutdownAfterJobFinishes"] = shutdown
    if queue:
        job["metadata"]["labels"][versions.QUEUE_LABEL] = versions.LOCAL_QUEUE
    for _, pod in traverse.pod_specs(job):
        for container in pod["containers"]:
            container["image"] = image or versions.IMAGES["kit"]
    if entrypoint:
        job["spec"]["entrypoint"] = entrypoint
    return job


@pytest.mark.parametrize(("answer", "message"), [
    ("my rayjob", "expected the RayJob as a dict"),
    (stage09.exposed_rayservice(), "expected kind RayJob, got 'RayService'"),
    (stage09.broken_rayjob(), r"5 problem\(s\) remain:\n  .*does not match the kit's Ray version"),
    (_rayjob(shutdown=False), r"2 problem\(s\) remain:\n  spec.shutdownAfterJobFinishes: a kueue managed job should "
                              r"delete the cluster.*\n  spec.ttlSecondsAfterFinished"),
    (_rayjob(queue=False), r"1 problem\(s\) remain:\n  .*missing label kueue.x-k8s.io/queue-name"),
    # valid for the validator (Ray at the right version), but the pods would have no kit to import
    (_rayjob(image=versions.IMAGES["ray"]), "needs torch and kit in every pod"),
    (_rayjob(image="registry.example.com/kit:0.1.0-ray2.9.0-cpu"), "was not built on Ray"),
    (_rayjob(entrypoint="python train.py"), "the entrypoint changed"),
])
def test_fix_rayjob_rejects_wrong_answers(answer, message):
    _wrong("09.fix_rayjob", answer, message)


def test_fix_rayjob_accepts_the_fix():
    job = _rayjob()
    assert exercises.check("09.fix_rayjob", job) is job


def _service(change) -> dict:
    service = exercises.get("09.private_rayservice").reference()
    change(service)
    return service


@pytest.mark.parametrize(("answer", "message"), [
    (stage09.broken_rayjob(), "expected kind RayService"),
    (stage09.exposed_rayservice(), r"3 problem\(s\) remain:\n  spec.rayClusterConfig.authOptions"),
    (_service(lambda s: s["spec"]["rayClusterConfig"].update(authOptions={"mode": "disabled"})),
     "authOptions.mode must be 'token'"),
    (_service(lambda s: s["spec"]["rayClusterConfig"]["headGroupSpec"].update(serviceType="NodePort")),
     "serviceType NodePort exposes the Ray head"),
    # no Ray port on it, so the policy lets it pass; the exercise still wants the model private
    (_service(lambda s: s["spec"].update(serveService={"spec": {"type": "NodePort", "ports": [{"port": 8000}]}})),
     "still type NodePort"),
    (_service(lambda s: s["spec"].update(serveConfigV2="applications: []\n")), "serveConfigV2 changed"),
])
def test_private_rayservice_rejects_wrong_answers(answer, message):
    _wrong("09.private_rayservice", answer, message)


def test_private_rayservice_accepts_clusterip_spelled_out():
    service = stage09.exposed_rayservice()
    cluster = service["spec"]["rayClusterConfig"]
    cluster["authOptions"] = {"mode": "token"}
    cluster["headGroupSpec"]["serviceType"] = "ClusterIP"
    service["spec"]["serveService"]["spec"]["type"] = "ClusterIP"
    assert exercises.check("09.private_rayservice", copy.deepcopy(service)) == service


def _trainjob(change) -> dict:
    job = exercises.get("09.admissible_trainjob").reference()
    change(job)
    return job


@pytest.mark.parametrize(("answer", "message"), [
    (stage09.exposed_rayservice(), "expected kind TrainJob"),
    (stage09.rejected_trainjob(), r"2 problem\(s\) remain:\n  spec.runtimePatches\[0\].manager: manager 'kit' must be "
                                  r"a domain-prefixed path.*\n  spec.trainer.env: must not have reserved envs"),
    (_trainjob(lambda j: j["spec"]["runtimePatches"][0].update(manager="Kit_Team/kit")), "RFC 1123 subdomain"),
    (_trainjob(lambda j: j["spec"]["trainer"]["env"].append({"name": "PET_NPROC_PER_NODE", "value": "2"})),
     r"\['PET_NPROC_PER_NODE'\]"),
    (_trainjob(lambda j: j["spec"]["trainer"].update(env=[])), "OMP_NUM_THREADS is gone"),
    (_trainjob(lambda j: j["spec"]["trainer"].update(command=["python", "train.py"])), "command changed"),
    (_trainjob(lambda j: j["spec"]["trainer"].update(numNodes=2)), "numNodes is 2"),
])
def test_admissible_trainjob_rejects_wrong_answers(answer, message):
    _wrong("09.admissible_trainjob", answer, message)


def test_admissible_trainjob_accepts_any_domain_prefixed_manager():
    job = _trainjob(lambda j: j["spec"]["runtimePatches"][0].update(manager="example.com/kit"))
    assert exercises.check("09.admissible_trainjob", job) is job
