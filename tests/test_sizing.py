"""kit.k8s.requests sums what manifests request; kit.deploy.sizing budgets clusters with the operators."""

from __future__ import annotations

import subprocess
import sys
from itertools import combinations

import pytest

from kit.deploy import layout, operators, sizing
from kit.k8s import requests as req
from kit.k8s.builders import serving
from kit.k8s.requests import Requests
from kit.versions import QUEUE_LABEL


def _container(cpu: str, memory: str, name: str = "c", gpus: int = 0, **extra) -> dict:
    amounts = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return {"name": name, "resources": {"requests": amounts, "limits": amounts}, **extra}


def _pod(*containers: dict, init: tuple[dict, ...] = ()) -> dict:
    spec: dict = {"containers": list(containers)}
    if init:
        spec["initContainers"] = list(init)
    return spec


def _meta(name: str, queue: str | None = None) -> dict:
    return {"name": name, **({"labels": {QUEUE_LABEL: queue}} if queue else {})}


@pytest.mark.parametrize(("cpu", "memory", "expected"), [
    ("500m", "512Mi", Requests(500, 512 * 2**20)),
    ("2", "2Gi", Requests(2000, 2 * 2**30)),
    ("0.25", "1G", Requests(250, 10**9)),
    (1, "1e3", Requests(1000, 1000)),
    ("100u", "1.5Ki", Requests(1, 1536)),  # a millicore at least: the scheduler rounds up too
])
def test_quantities_parse_exactly(cpu, memory, expected):
    assert Requests.parse(cpu, memory) == expected


def test_bad_quantity_names_the_resource():
    with pytest.raises(req.QuantityError, match="memory '2 GB'") as error:
        Requests.parse("1", "2 GB")
    assert "512Mi" in error.value.fix


def test_requests_arithmetic_and_formatting():
    a, b = Requests.parse("1500m", "1Gi", 1), Requests.parse("500m", "512Mi")
    assert a + b == Requests(2000, 1536 * 2**20, 1) and a - b == Requests(1000, 512 * 2**20, 1)
    assert 2 * b == b * 2 == Requests(1000, 2**30)
    assert (a + b).cpu == "2" and (a + b).memory == "1536Mi" and a.cpu == "1500m"
    assert b.fits(a) and not a.fits(b) and a.short_of(b) == ["cpu", "memory", "gpus"]
    assert str(a) == "1.5 cpu, 1.00 GiB, 1 gpu"


def test_pod_request_counts_sidecars_and_the_largest_init_container():
    main = _container("1", "1Gi")
    big_init = _container("3", "256Mi", "init")
    sidecar = _container("200m", "128Mi", "proxy", restartPolicy="Always")
    assert req.pod_requests(_pod(main, init=(big_init,))) == Requests(3000, 2**30)
    # a sidecar runs beside the app containers and beside init containers declared after it
    late_init = _container("100m", "2Gi", "late")
    assert req.pod_requests(_pod(main, init=(sidecar, late_init))) == Requests(1200, 2**31 + 128 * 2**20)


def test_jobs_deployments_and_queue_labels():
    job = {"kind": "Job", "metadata": _meta("j", "q"),
           "spec": {"parallelism": 4, "completions": 3, "template": {"spec": _pod(_container("500m", "1Gi"))}}}
    deployment = {"kind": "Deployment", "metadata": _meta("d"),
                  "spec": {"replicas": 2, "template": {"spec": _pod(_container("250m", "256Mi"))}}}
    totals = req.requests_of([job, deployment, {"kind": "ConfigMap", "metadata": _meta("c")}])
    assert totals == {req.QUEUED: Requests(1500, 3 * 2**30), req.UNQUEUED: Requests(500, 512 * 2**20)}
    names = [(w.name, w.queued, w.pods) for w in req.workloads([job, deployment])]
    assert names == [("Job/j", True, 3), ("Deployment/d", False, 2)]


def _ray_cluster(autoscaling: bool = False) -> dict:
    return {"headGroupSpec": {"template": {"spec": _pod(_container("250m", "1Gi"))}},
            "enableInTreeAutoscaling": autoscaling,
            "workerGroupSpecs": [{"groupName": "w", "replicas": 2, "numOfHosts": 2,
                                  "template": {"spec": _pod(_container("1", "2Gi", gpus=1))}},
                                 {"groupName": "idle", "minReplicas": 1,
                                  "template": {"spec": _pod(_container("1", "1Gi"))}}]}


def test_ray_kinds_count_head_workers_hosts_autoscaler_and_submitter():
    workers = Requests(4000, 8 * 2**30, 4) + Requests(1000, 2**30)
    head = Requests(250, 2**30)
    cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": _meta("rc", "q"), "spec": _ray_cluster()}
    assert req.workloads([cluster])[0].requests == head + workers
    autoscaled = {**cluster, "spec": _ray_cluster(autoscaling=True)}
    assert req.workloads([autoscaled])[0].requests == head + workers + Requests(500, 512 * 2**20)
    job = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": _meta("rj", "q"),
           "spec": {"rayClusterSpec": _ray_cluster()}}
    default_submitter = Requests(500, 200 * 2**20)
    [workload] = req.workloads([job])
    assert workload.requests == head + workers + default_submitter and workload.pods == 1 + 4 + 1 + 1
    http_mode = {**job, "spec": {**job["spec"], "submissionMode": "HTTPMode"}}
    assert req.workloads([http_mode])[0].requests == head + workers
    service = {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": _meta("rs"),
               "spec": {"rayClusterConfig": _ray_cluster()}}
    assert req.requests_of([service])[req.UNQUEUED] == head + workers


def _runtime(name: str = "rt", nodes: int = 1) -> dict:
    node = {"name": "node", "template": {
        "metadata": {"labels": {req.TRAINER_ANCESTOR[0]: req.TRAINER_ANCESTOR[1]}},
        "spec": {"template": {"spec": _pod(_container("1", "2Gi", "node"), _container("100m", "64Mi", "log"))}}}}
    init = {"name": "dataset-initializer", "template": {
        "spec": {"template": {"spec": _pod(_container("2", "4Gi", "dataset-initializer"))}}}}
    return {"kind": "ClusterTrainingRuntime", "metadata": {"name": name},
            "spec": {"mlPolicy": {"numNodes": nodes}, "template": {"spec": {"replicatedJobs": [init, node]}}}}


def test_trainjob_merges_resources_per_node_over_the_runtime_and_counts_nodes():
    trainjob = {"kind": "TrainJob", "metadata": _meta("tj", "q"),
                "spec": {"runtimeRef": {"name": "rt"},
                         "trainer": {"numNodes": 3, "resourcesPerNode": {"requests": {"cpu": "4"}}}}}
    [workload] = req.workloads([_runtime(), trainjob])
    # the initializer once; three nodes of (4 cpu, the runtime's 2Gi) plus the log sidecar container
    assert workload.requests == Requests(2000, 4 * 2**30) + 3 * Requests(4100, 2 * 2**30 + 64 * 2**20)
    assert workload.pods == 4
    from_policy = {**trainjob, "spec": {"runtimeRef": {"name": "rt"}, "trainer": {}}}
    assert req.workloads([_runtime(nodes=2), from_policy])[0].requests == \
        Requests(2000, 4 * 2**30) + 2 * Requests(1100, 2 * 2**30 + 64 * 2**20)
    # without the runtime among the documents, only the trainer's own fields count
    assert req.workloads([trainjob])[0].requests == Requests(12000, 0)


def test_inferenceservice_counts_each_component_times_min_replicas():
    isvc = {"kind": "InferenceService", "metadata": _meta("m"), "spec": {
        "predictor": {"minReplicas": 2, "model": _container("1", "1Gi", "kserve-container")},
        "transformer": {"containers": [_container("500m", "512Mi")]}}}
    [workload] = req.workloads([isvc])
    assert workload.requests == Requests(2500, 5 * 2**29) and not workload.queued and workload.pods == 3


def test_other_kinds_count_each_template_times_its_replicas():
    pytorchjob = {"kind": "PyTorchJob", "metadata": _meta("p"), "spec": {"pytorchReplicaSpecs": {
        "Master": {"replicas": 1, "template": {"spec": _pod(_container("1", "1Gi"))}},
        "Worker": {"replicas": 3, "template": {"spec": _pod(_container("2", "1Gi"))}}}}}
    assert req.workloads([pytorchjob])[0].requests == Requests(7000, 4 * 2**30)


# --------------------------------------------------------------------------- kit.deploy.sizing

@pytest.mark.parametrize(("text", "expected"), [
    ("4cpu,8Gi", Requests.parse(4, "8Gi")),
    ("8Gi, 2cpus", Requests.parse(2, "8Gi")),
    ("500mcpu,1536Mi,1gpu", Requests.parse("500m", "1536Mi", 1)),
])
def test_capacity_parses_cpu_memory_and_gpus(text, expected):
    assert sizing.parse_capacity(text) == expected


@pytest.mark.parametrize(("text", "words"), [("4,8Gi", "no unit"), ("4cpu", "both cpu and memory"),
                                             ("4cpu,8 GB", "not <amount>cpu"), ("4cpu,8Qi", "not a Kubernetes")])
def test_a_bad_capacity_says_how_to_write_it(text, words):
    with pytest.raises(sizing.CapacityError, match=words) as error:
        sizing.parse_capacity(text)
    assert "4cpu,8Gi" in error.value.fix


def test_the_operator_table_covers_every_controller_the_installer_waits_for():
    installed = {(op.namespace, name) for op in operators.OPERATORS for name in op.deployments}
    assert {(e.namespace, e.name) for e in sizing.OPERATORS} == installed
    assert all(e.source for e in (*sizing.OPERATORS, *sizing.KIND_SYSTEM))
    assert sizing.total(sizing.OPERATORS) == Requests.parse("1200m", "1352Mi")
    assert "kueue-controller-manager" in sizing.table() and "2150m" in sizing.table()


def _kind_docs() -> list[dict]:
    return layout.expected_overlay("local-kind")


def test_the_kind_overlay_fits_a_default_docker_desktop_with_the_operators_running():
    docs = _kind_docs()
    result = sizing.check_fit(docs, sizing.budget(sizing.DOCKER_DESKTOP))
    # what Kueue may admit at once, the InferenceService at its peak, the operators, kind's own pods, the VM
    everything = result.needed + sizing.total(sizing.OPERATORS) + sizing.total(sizing.KIND_SYSTEM)
    assert (everything + sizing.VM_RESERVE).fits(Requests.parse(4, "8Gi")) and result.ok
    assert result.unqueued == Requests.parse("400m", "1536Mi")  # two predictor pods: the autoscaler's maximum
    assert "fits" in result.report() and "operators and system pods      2.15 cpu" in result.report()


def test_a_plan_that_does_not_fit_names_the_shortfall_and_the_fix():
    with pytest.raises(sizing.DoesNotFit, match=r"needs more cpu and memory") as error:
        sizing.check_fit(_kind_docs(), sizing.budget(sizing.parse_capacity("2cpu,4Gi")))
    assert "DOES NOT FIT (cpu, memory)" in error.value.message and "--capacity" in error.value.fix
    # a queued workload bigger than the ClusterQueue's whole quota is never admitted, whatever the machine
    big_job = layout.rayjob(layout.OVERLAYS["local-kind"], {"workers": 4})
    docs = [*(d for d in _kind_docs() if d["kind"] != "RayJob"), big_job]
    with pytest.raises(sizing.DoesNotFit, match="whole quota for RayJob/kit-ray-train"):
        sizing.check_fit(docs, sizing.budget(sizing.parse_capacity("64cpu,256Gi")))


def _persistent(workload: req.Workload) -> bool:
    return workload.name.split("/")[0] in ("RayCluster", "RayService")


def test_on_kind_the_model_job_is_admitted_beside_any_standing_workload():
    """A server waiting for the model holds its quota: the Job that writes the model must still fit."""
    docs = _kind_docs()
    quota = sizing.kueue_quota(docs)
    queued = [w for w in req.workloads(docs) if w.queued]
    standing = [w for w in queued if _persistent(w)]
    model_job = next(w for w in queued if w.name == f"Job/publish-{serving.MODEL_NAME}")
    hello = next(w for w in queued if w.name == "Job/hello")
    admissible = [group for n in range(1, len(standing) + 1) for group in combinations(standing, n)
                  if sum((w.requests for w in group), req.ZERO).fits(quota)]
    assert admissible and all(len(group) == 1 for group in admissible)  # the RayCluster or the RayService
    for group in admissible:
        assert (group[0].requests + model_job.requests).fits(quota), group[0].name
        assert (group[0].requests + hello.requests).fits(quota), group[0].name  # clusters/test-cluster.sh


@pytest.mark.parametrize("overlay", sorted(layout.OVERLAYS))
def test_ray_heads_run_no_tasks_and_ask_for_less_than_a_worker(overlay):
    from kit.k8s import traverse

    for doc in layout.expected_overlay(overlay):
        for _, cluster in traverse.ray_cluster_specs(doc):
            assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
            head = req.pod_requests(cluster["headGroupSpec"]["template"]["spec"])
            worker = req.pod_requests(cluster["workerGroupSpecs"][0]["template"]["spec"])
            assert head.cpu_millis < worker.cpu_millis, doc["metadata"]["name"]


def _wait_command(path, timeout: str = "0") -> subprocess.CompletedProcess:
    container, _ = serving.wait_for_model()
    argv = container["command"]
    return subprocess.run([sys.executable, *argv[1:3], str(path), timeout, argv[5]], capture_output=True, text=True,
                          timeout=60)


def test_the_model_wait_passes_a_verified_artifact_and_explains_a_missing_or_altered_one(tmp_path):
    torch = pytest.importorskip("torch")
    from kit.config.train import TrainConfig
    from kit.train import artifact

    missing = _wait_command(tmp_path / "digits")
    assert missing.returncode == 1 and "waiting up to 0s for the model" in missing.stdout
    assert "does not exist" in missing.stderr and "Fix: run Job publish-digits" in missing.stderr
    artifact.write_artifact(tmp_path / "digits", torch.nn.Linear(64, 10), TrainConfig(hidden=16), accuracy=0.5,
                            input_shape=(64,), classes=tuple(range(10)), preprocessing={"scale": 1.0})
    found = _wait_command(tmp_path / "digits", "30")
    assert found.returncode == 0 and "verified" in found.stdout, found.stderr
    (tmp_path / "digits" / artifact.WEIGHTS).write_bytes(b"not the trained weights")
    altered = _wait_command(tmp_path / "digits")
    assert altered.returncode == 1 and "SHA-256" in altered.stderr


def test_the_readme_sizing_table_is_the_one_the_kit_uses():
    readme = (layout.REPO / "README.md").read_text()
    for entry in (*sizing.KIND_SYSTEM, *sizing.OPERATORS):
        if entry.namespace != "cert-manager":
            row = f"| {entry.namespace} | {entry.name} | {entry.requests.cpu} | {entry.requests.memory or '0'} |"
            assert row in readme, row
    summed = sizing.total((*sizing.KIND_SYSTEM, *sizing.OPERATORS))
    assert f"**{summed.cpu}** | **{summed.memory}**" in readme
    share = layout.KIND_SHARE
    assert f"{share.cpu} and {share.memory}" in readme


def test_a_namespace_too_small_for_its_servers_is_refused_with_a_fix():
    from kit.errors import KitError

    with pytest.raises(KitError, match="leaves Kueue nothing") as error:
        layout.queues(layout.Sizing(cpu="1", memory="8Gi"))  # the InferenceService may take 2 x 1 cpu
    assert "server_cpu" in error.value.fix
    [queue] = [d for d in layout.queues(layout.Sizing(gpus=2)) if d["kind"] == "ClusterQueue"]
    gpu_flavor = queue["spec"]["resourceGroups"][1]["flavors"][0]
    assert gpu_flavor["resources"] == [{"name": "nvidia.com/gpu", "nominalQuota": "2"}]  # servers use no GPU
