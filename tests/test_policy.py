"""``kit.k8s.validation.policy``: Pod Security restricted and the kit's Ray rules, each shown to pass and fail."""

from __future__ import annotations

import copy

import pytest
from manifest_fixtures import POLICY, VALID, by_kind, load

from kit.k8s import traverse
from kit.k8s.validation import crds
from kit.k8s.validation.policy import check_policy
from kit.k8s.validation.problems import format_path
from kit.k8s.validation.validate import validate_paths


def problems_of(doc: dict) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in check_policy([doc], "test.yaml")]


def paths_of(doc: dict) -> list[str]:
    return [path for path, _ in problems_of(doc)]


def test_valid_fixtures_meet_the_policy():
    for path in sorted(VALID.glob("*.yaml")):
        assert check_policy(load(path), str(path)) == [], path


POLICY_CASES = [
    ("run-as-root.yaml", ["spec.securityContext.runAsNonRoot"], "runAsNonRoot must be true"),
    ("run-as-user-zero.yaml", ["spec.securityContext.runAsUser"], "runAsUser must not be 0"),
    ("privilege-escalation.yaml", ["spec.containers[0].securityContext.allowPrivilegeEscalation"],
     "allowPrivilegeEscalation must be false"),
    ("capabilities-not-dropped.yaml", ["spec.containers[0].securityContext.capabilities.drop"],
     "capabilities.drop must include ALL"),
    ("capabilities-added.yaml", ["spec.containers[0].securityContext.capabilities.add[0]"],
     "capability 'SYS_ADMIN' may not be added"),
    ("seccomp-unconfined.yaml", ["spec.securityContext.seccompProfile"], "RuntimeDefault or Localhost"),
    ("seccomp-missing.yaml", ["spec.securityContext.seccompProfile"], "RuntimeDefault or Localhost"),
    ("volume-type.yaml", ["spec.volumes[0].nfs"], "volume type 'nfs' is not allowed"),
    ("host-path.yaml", ["spec.volumes[0].hostPath"], "hostPath volumes are not allowed"),
    ("host-network.yaml", ["spec.hostNetwork"], "hostNetwork must be unset or false"),
    ("host-pid.yaml", ["spec.hostPID"], "hostPID must be unset or false"),
    ("privileged.yaml", ["spec.containers[0].securityContext.privileged"], "privileged containers are not"),
    ("missing-resources.yaml", ["spec.containers[0].resources"], "set requests and limits for cpu"),
    ("missing-limits.yaml",
     ["spec.containers[0].resources.limits.cpu", "spec.containers[0].resources.limits.memory"],
     "missing limits."),
    ("ray-missing-auth.yaml", ["spec.authOptions"], "missing authOptions: {mode: token}"),
    ("ray-head-loadbalancer.yaml", ["spec.headGroupSpec.serviceType"], "serviceType LoadBalancer exposes"),
    ("ray-port-nodeport.yaml", ["spec.ports[0].port"], "Ray port 8265 (dashboard and Jobs API) must not"),
    ("literal-token-env.yaml", ["spec.containers[0].env[0].value"], "env var HF_TOKEN holds a literal value"),
    ("literal-secret.yaml", ["stringData"], "literal secret stringData"),
    ("ray-autoscaler-unrestricted.yaml", ["spec.autoscalerOptions.securityContext.allowPrivilegeEscalation",
                                          "spec.autoscalerOptions.securityContext.capabilities.drop"],
     "autoscaler sidecar (KubeRay adds it to the head pod)"),
]


@pytest.mark.parametrize(("name", "paths", "message"), POLICY_CASES, ids=[case[0] for case in POLICY_CASES])
def test_each_policy_fixture_fails_for_its_rule_only(name, paths, message):
    problems = check_policy(load(POLICY / name), str(POLICY / name))
    assert [p.path for p in problems] == paths, "\n".join(map(str, problems))
    assert all(message in p.message for p in problems)
    assert all(p.file == str(POLICY / name) for p in problems)


def test_every_policy_fixture_has_a_case():
    assert {p.name for p in POLICY.glob("*.yaml")} == {case[0] for case in POLICY_CASES}


def test_policy_fixtures_are_otherwise_valid():
    """Without the policy, every policy fixture passes: each fails for its policy rule alone."""
    assert validate_paths([POLICY], policy=False) == []


def test_validate_applies_the_policy_by_default():
    problems = validate_paths([POLICY / "host-network.yaml"])
    assert [p.path for p in problems] == ["spec.hostNetwork"]


# --------------------------------------------------------------------------- pods inside custom kinds

EXPECTED_POD_SPECS = {
    "RayCluster": ["spec.headGroupSpec.template.spec", "spec.workerGroupSpecs[0].template.spec"],
    "RayJob": ["spec.submitterPodTemplate.spec", "spec.rayClusterSpec.headGroupSpec.template.spec",
               "spec.rayClusterSpec.workerGroupSpecs[0].template.spec"],
    "RayService": ["spec.rayClusterConfig.headGroupSpec.template.spec",
                   "spec.rayClusterConfig.workerGroupSpecs[0].template.spec"],
    "ClusterTrainingRuntime": ["spec.template.spec.replicatedJobs[0].template.spec.template.spec"],
    "PyTorchJob": ["spec.pytorchReplicaSpecs.Master.template.spec",
                   "spec.pytorchReplicaSpecs.Worker.template.spec"],
    "InferenceService": ["spec.predictor"],
}


@pytest.mark.parametrize("kind", EXPECTED_POD_SPECS)
def test_pod_specs_are_found_in_every_custom_kind(kind):
    assert [format_path(path) for path, _ in traverse.pod_specs(by_kind(kind))] == EXPECTED_POD_SPECS[kind]


def _strip_security(doc: dict) -> dict:
    for _, pod in traverse.pod_specs(doc):
        pod.pop("securityContext", None)
        for _, _, container in traverse.containers(pod):
            container.pop("securityContext", None)
    return doc


@pytest.mark.parametrize("kind", EXPECTED_POD_SPECS)
def test_restricted_applies_inside_every_custom_kind(kind):
    doc = _strip_security(by_kind(kind))
    paths = paths_of(doc)
    for pod_path in EXPECTED_POD_SPECS[kind]:
        assert f"{pod_path}.securityContext.runAsNonRoot" in paths
        assert f"{pod_path}.securityContext.seccompProfile" in paths
        assert any(p.startswith(pod_path) and p.endswith("allowPrivilegeEscalation") for p in paths)
        assert any(p.startswith(pod_path) and p.endswith("capabilities.drop") for p in paths)


def test_kserve_model_is_checked_as_a_container():
    service = by_kind("InferenceService")
    del service["spec"]["predictor"]["model"]["resources"]["limits"]
    assert paths_of(service) == ["spec.predictor.model.resources.limits.cpu",
                                 "spec.predictor.model.resources.limits.memory"]


def test_upstream_torch_distributed_runtime_fails_restricted():
    """Teaching point: upstream's default runtime (Trainer v2.3.0) sets no securityContext, no resources."""
    runtime = load(crds.find_crd_dir() / "runtime.torch-distributed.yaml")
    assert [doc["kind"] for doc in runtime] == ["ClusterTrainingRuntime"]
    pod = "spec.template.spec.replicatedJobs[0].template.spec.template.spec"
    container = f"{pod}.containers[0]"
    assert paths_of(runtime[0]) == [
        f"{pod}.securityContext.runAsNonRoot",
        f"{pod}.securityContext.seccompProfile",
        f"{container}.securityContext.allowPrivilegeEscalation",
        f"{container}.securityContext.capabilities.drop",
        f"{container}.resources",
    ]


def test_upstream_torch_distributed_runtime_is_schema_valid():
    assert validate_paths([crds.find_crd_dir() / "runtime.torch-distributed.yaml"], policy=False) == []


# --------------------------------------------------------------------------- details of the rules


def _pod() -> dict:
    return load(POLICY / "run-as-user-zero.yaml")[0] | {"metadata": {"name": "p"}}


def test_container_level_settings_satisfy_the_pod_level_rules():
    pod = _pod()
    pod["spec"]["securityContext"] = {}
    pod["spec"]["containers"][0]["securityContext"].update(
        runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "ray.json"})
    assert problems_of(pod) == []


def test_a_container_without_the_setting_is_named_when_others_have_it():
    pod = _pod()
    pod["spec"]["securityContext"] = {}
    first = pod["spec"]["containers"][0]
    first["securityContext"]["runAsNonRoot"] = True
    first["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    pod["spec"]["containers"].append(copy.deepcopy(first) | {"name": "sidecar"})
    del pod["spec"]["containers"][1]["securityContext"]["runAsNonRoot"]
    assert paths_of(pod) == ["spec.containers[1].securityContext.runAsNonRoot"]


def test_container_cannot_undo_run_as_non_root():
    pod = _pod()
    pod["spec"]["securityContext"]["runAsUser"] = 1000
    pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False
    assert paths_of(pod) == ["spec.containers[0].securityContext.runAsNonRoot"]


def test_init_containers_are_checked():
    pod = _pod()
    pod["spec"]["securityContext"]["runAsUser"] = 1000
    pod["spec"]["initContainers"] = [{"name": "fetch", "image": "busybox:1.37"}]
    assert paths_of(pod) == [
        "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
        "spec.initContainers[0].securityContext.capabilities.drop",
        "spec.initContainers[0].resources",
    ]


def test_net_bind_service_may_be_added_and_host_ports_may_not():
    pod = _pod()
    pod["spec"]["securityContext"]["runAsUser"] = 1000
    container = pod["spec"]["containers"][0]
    container["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert problems_of(pod) == []
    container["ports"] = [{"containerPort": 80, "hostPort": 80}]
    assert paths_of(pod) == ["spec.containers[0].ports[0].hostPort"]


@pytest.mark.parametrize(("kind", "base"), [("RayCluster", "spec"), ("RayJob", "spec.rayClusterSpec"),
                                            ("RayService", "spec.rayClusterConfig")])
def test_token_auth_is_required_in_every_ray_cluster_spec(kind, base):
    doc = by_kind(kind)
    cluster = doc["spec"] if kind == "RayCluster" else doc["spec"][base.split(".")[1]]
    cluster["authOptions"] = {"mode": "disabled"}
    assert problems_of(doc) == [
        (f"{base}.authOptions.mode", "authOptions.mode must be 'token', got 'disabled'")]
    del cluster["authOptions"]
    assert paths_of(doc) == [f"{base}.authOptions"]


def test_rayjob_on_an_existing_cluster_has_no_cluster_spec_to_check():
    job = by_kind("RayJob")
    del job["spec"]["rayClusterSpec"]
    job["spec"]["clusterSelector"] = {"ray.io/cluster": "demo"}
    assert problems_of(job) == []


def test_head_service_type_is_checked():
    cluster = by_kind("RayCluster")
    cluster["spec"]["headGroupSpec"]["headService"] = {"spec": {"type": "NodePort"}}
    assert paths_of(cluster) == ["spec.headGroupSpec.headService.spec.type"]


@pytest.mark.parametrize(("port", "exposed"), [(6379, True), (10001, True), (8265, True), (8000, False)])
def test_load_balancer_may_expose_serve_but_no_ray_port(port, exposed):
    service = by_kind("Service")
    service["spec"]["type"] = "LoadBalancer"
    service["spec"]["ports"] = [{"name": "p", "port": 80, "targetPort": port}]
    assert paths_of(service) == (["spec.ports[0].targetPort"] if exposed else [])


def test_rayservice_serve_service_may_not_expose_ray_ports():
    service = by_kind("RayService")
    service["spec"]["serveService"] = {"spec": {"type": "LoadBalancer", "ports": [{"port": 8265}]}}
    assert paths_of(service) == ["spec.serveService.spec.ports[0].port"]


@pytest.mark.parametrize(("name", "flagged"), [
    ("HF_TOKEN", True), ("db_password", True), ("AWS_SECRET_ACCESS_KEY", True), ("WANDB_API_KEY", True),
    ("EPOCHS", False),
])
def test_secret_like_env_names_need_value_from(name, flagged):
    job = by_kind("TrainJob")
    job["spec"]["trainer"]["env"] = [{"name": name, "value": "x"}]
    assert paths_of(job) == (["spec.trainer.env[0].value"] if flagged else [])


def test_secret_without_literal_data_passes():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}
    assert problems_of(secret) == []


def test_status_is_not_policed():
    pod = _pod()
    pod["spec"]["securityContext"]["runAsUser"] = 1000
    pod["status"] = {"containers": [{"name": "x", "securityContext": {"privileged": True}}]}
    assert problems_of(pod) == []
