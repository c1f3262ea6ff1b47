"""Exercises of stage 09 (deploy on Kubernetes): the mistakes that break real deployments most often."""

from __future__ import annotations

from kit import versions
from kit.course.exercises import NotYetRight, exercise, expect_manifest, listed, validation_problems
from kit.deploy import layout as clusters
from kit.k8s import traverse
from kit.versions import LOCAL_QUEUE, QUEUE_LABEL


def _problems(docs: list[dict]) -> list[str]:
    queues = clusters.queues(clusters.BASE_SIZE)  # the LocalQueue the stage's workloads must name
    return validation_problems([*queues, *docs], queue=LOCAL_QUEUE)


def broken_rayjob() -> dict:
    """A RayJob as a hurried teammate wrote it: an old Ray image, a TTL that never fires, no queue."""
    job = clusters.rayjob(clusters.BASE_SIZE, {"epochs": 2, "workers": 2})
    del job["metadata"]["labels"][QUEUE_LABEL]
    job["spec"]["shutdownAfterJobFinishes"] = False
    for container in traverse.all_containers(job):
        container["image"] = "rayproject/ray:2.9.0-py311-cpu"
    return job


def _fixed_rayjob() -> dict:
    job = broken_rayjob()
    job["metadata"]["labels"][QUEUE_LABEL] = LOCAL_QUEUE
    job["spec"]["shutdownAfterJobFinishes"] = True
    for container in traverse.all_containers(job):
        container["image"] = versions.IMAGES["kit"]
    return job


@exercise(
    "09.fix_rayjob",
    "Fix a RayJob so that it runs, cleans up and waits its turn",
    "Three fixes, all in the validator's output: every container's image must be the kit's image "
    "(kit.versions.IMAGES['kit']: Ray at the client's version, plus torch and kit - Ray's own image has no kit, "
    "so `python -m kit.train.launchers` would fail); spec.shutdownAfterJobFinishes must be True for "
    f"ttlSecondsAfterFinished to mean anything; the label {QUEUE_LABEL} must name the LocalQueue "
    "(kit.versions.LOCAL_QUEUE).",
    reference=_fixed_rayjob,
)
def check_fix_rayjob(job) -> None:
    expect_manifest(job, "RayJob")
    spec = job.get("spec") or {}
    if spec.get("entrypoint") != broken_rayjob()["spec"]["entrypoint"]:
        raise NotYetRight("the entrypoint changed: keep what the job runs, fix how it is deployed")
    problems = _problems([job])
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s) remain:{listed(problems)}")
    images = {image for _, image in traverse.images(job)}
    if images != {versions.IMAGES["kit"]}:
        raise NotYetRight(f"images {sorted(map(str, images))}: the entrypoint runs `python -m kit.train.launchers`, "
                          "which "
                          f"needs torch and kit in every pod - use the kit's image {versions.IMAGES['kit']}")


def exposed_rayservice() -> dict:
    """A RayService a teammate 'opened up' to reach the dashboard from a laptop."""
    service = clusters.rayservice(clusters.BASE_SIZE)
    cluster_spec = service["spec"]["rayClusterConfig"]
    del cluster_spec["authOptions"]
    cluster_spec["headGroupSpec"]["serviceType"] = "LoadBalancer"
    service["spec"]["serveService"] = {
        "metadata": {"name": "kit-digits-public"},
        "spec": {"type": "NodePort", "ports": [{"name": "serve", "port": 8000},
                                               {"name": "dashboard", "port": 8265}]},
    }
    return service


def _private_rayservice() -> dict:
    service = exposed_rayservice()
    cluster_spec = service["spec"]["rayClusterConfig"]
    cluster_spec["authOptions"] = {"mode": "token"}
    del cluster_spec["headGroupSpec"]["serviceType"]
    del service["spec"]["serveService"]
    return service


@exercise(
    "09.private_rayservice",
    "Close a RayService that exposes Ray to the network",
    "Anyone who reaches port 8265 can submit jobs - run any code - on the cluster (CVE-2023-48022). Put "
    "rayClusterConfig.authOptions back to {'mode': 'token'}, drop headGroupSpec.serviceType (or make it "
    "ClusterIP), and remove spec.serveService (KubeRay then makes a ClusterIP <name>-serve-svc for port 8000). "
    "Reach the dashboard and the model with kubectl port-forward instead.",
    reference=_private_rayservice,
)
def check_private_rayservice(service) -> None:
    expect_manifest(service, "RayService")
    spec = service.get("spec") or {}
    if spec.get("serveConfigV2") != exposed_rayservice()["spec"]["serveConfigV2"]:
        raise NotYetRight("serveConfigV2 changed: keep the application, change only how it is exposed")
    problems = _problems([service])
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s) remain:{listed(problems)}")
    serve_service = spec.get("serveService")
    service_type = ((serve_service or {}).get("spec") or {}).get("type", "ClusterIP")
    if service_type != "ClusterIP":
        raise NotYetRight(f"spec.serveService is still type {service_type}: a model endpoint on every node's "
                          "ports is reachable by anyone on the network; keep it ClusterIP and port-forward")


def rejected_trainjob() -> dict:
    """A TrainJob the Trainer webhook would reject: a runtime patch under a bare manager name, and the node
    count forced through torchrun's environment instead of the API."""
    job = clusters.trainjob(clusters.BASE_SIZE, {"epochs": 2, "workers": 2})
    job["spec"]["runtimePatches"][0]["manager"] = "kit"
    job["spec"]["trainer"]["env"] = [{"name": "PET_NNODES", "value": "1"}, {"name": "OMP_NUM_THREADS", "value": "1"}]
    return job


def _admissible_trainjob() -> dict:
    job = rejected_trainjob()
    job["spec"]["runtimePatches"][0]["manager"] = clusters.trainjob(clusters.BASE_SIZE)["spec"]["runtimePatches"][0][
        "manager"]
    job["spec"]["trainer"]["env"] = [e for e in job["spec"]["trainer"]["env"] if e["name"] != "PET_NNODES"]
    return job


@exercise(
    "09.admissible_trainjob",
    "Stretch: a TrainJob the Trainer webhook admits",
    "Kubeflow Trainer's webhook (v2.3.0) rejects two things here. runtimePatches[].manager must be a "
    "domain-prefixed path like 'example.com/kit' (patches are keyed by who owns them); and the torch runtime "
    "sets PET_NNODES (and the other PET_* variables) itself from spec.trainer.numNodes - drop it from "
    "spec.trainer.env and keep numNodes. Keep OMP_NUM_THREADS and the command.",
    reference=_admissible_trainjob,
)
def check_admissible_trainjob(job) -> None:
    from kit.k8s.builders import runtime

    expect_manifest(job, "TrainJob")
    trainer = (job.get("spec") or {}).get("trainer") or {}
    if trainer.get("command") != rejected_trainjob()["spec"]["trainer"]["command"]:
        raise NotYetRight("spec.trainer.command changed: keep what the job runs, fix what the webhook rejects")
    env = {e.get("name"): e.get("value") for e in trainer.get("env") or [] if isinstance(e, dict)}
    if env.get("OMP_NUM_THREADS") != "1":
        raise NotYetRight("OMP_NUM_THREADS is gone: it is not reserved, keep it (one thread per process)")
    problems = validation_problems([*clusters.queues(clusters.BASE_SIZE), runtime.torch_distributed_restricted(),
                                    job], queue=LOCAL_QUEUE)
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s) remain:{listed(problems)}")
    if trainer.get("numNodes") != 1:
        raise NotYetRight(f"numNodes is {trainer.get('numNodes')!r}: the rehearsal and kind run one node; keep 1")
