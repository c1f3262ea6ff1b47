"""The kit's security properties, asserted on the generated ``clusters/`` and on ``kit deploy plan``'s files:
network policies (evaluated like a CNI would), the learners' RBAC, API tokens only where the API is called,
the cluster-local InferenceService, the restricted autoscaler sidecar, and images pinned by digest."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from manifest_fixtures import load

from kit import versions
from kit.cli import main
from kit.config.serve import ServeConfig
from kit.deploy import layout, operators
from kit.deploy import plan as deploy
from kit.k8s import traverse
from kit.k8s.builders import core, pods, rbac, serving
from kit.k8s.live import kinds
from kit.k8s.validation.policy import check_policy
from kit.k8s.validation.problems import format_path

SOURCES = ("clusters", "plan")


def _clusters_docs() -> list[dict]:
    return [doc for folder in ("base", "standalone") for path in sorted((layout.CLUSTERS / folder).glob("*.yaml"))
            if path.name != "kustomization.yaml" for doc in load(path)]


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory) -> Path:
    """What ``python -m kit deploy plan`` writes (it exits 1, writing nothing, when the plan is invalid)."""
    out = tmp_path_factory.mktemp("plan")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", "/nonexistent")
        assert main(["deploy", "plan", "--profile", "kind", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module", params=SOURCES)
def source(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def docs(source, plan_dir) -> list[dict]:
    """The documents of clusters/base and clusters/standalone, or of the plan's files."""
    if source == "clusters":
        return _clusters_docs()
    return [doc for path in sorted(plan_dir.glob("*.yaml")) for doc in load(path)]


def _of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


# --------------------------------------------------------------------------- network policies, evaluated


@dataclass
class Peer:
    """A pod (namespace and labels) or, with ``ip``, an address outside the pod network."""

    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "the evaluator knows matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(rule_peer: dict, policy_namespace: str, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        cidr = ipaddress.ip_network(rule_peer["ipBlock"]["cidr"])
        return peer.ip is not None and ipaddress.ip_address(peer.ip) in cidr
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        if not _selects(rule_peer["namespaceSelector"], {"kubernetes.io/metadata.name": peer.namespace}):
            return False
    elif peer.namespace != policy_namespace:
        return False
    return _selects(rule_peer.get("podSelector", {}), peer.labels)


def allowed(policies: list[dict], direction: str, pod: Peer, other: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether ``pod`` may receive from (Ingress) or send to (Egress) ``other`` on ``port``."""
    selecting = [p for p in policies if p["metadata"]["namespace"] == pod.namespace
                 and direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod.labels)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(direction.lower(), []):
            peers = rule.get("from" if direction == "Ingress" else "to")
            ports = rule.get("ports")
            if (peers is None or any(_peer_matches(p, pod.namespace or "", other) for p in peers)) and (
                    ports is None or any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports)):
                return True
    return False


NS = versions.NAMESPACE
HEAD = Peer(NS, {"ray.io/node-type": "head", "ray.io/cluster": versions.RAY_CLUSTER})
WORKER = Peer(NS, {"ray.io/node-type": "worker", "ray.io/cluster": versions.RAY_CLUSTER})
PREDICTOR = Peer(NS, {"serving.kserve.io/inferenceservice": "digits"})
OPERATOR = Peer("ray-system", {"app.kubernetes.io/component": "kuberay-operator",
                               "app.kubernetes.io/name": "kuberay-operator"})
DNS = Peer("kube-system", {"k8s-app": "kube-dns"})
API_SERVER = Peer(None, ip="172.18.0.2")  # kind's control-plane node
INTERNET = Peer(None, ip="140.82.112.3")


def _autoscaling_head() -> Peer:
    cluster = load(layout.CLUSTERS / "standalone" / "raycluster-autoscaling.yaml")[0]
    return Peer(NS, {**cluster["spec"]["headGroupSpec"]["template"]["metadata"]["labels"], **HEAD.labels})


INGRESS = [
    (OPERATOR, HEAD, 8265, True),  # RayJob status, Serve REST API
    (OPERATOR, HEAD, 8000, True),  # Serve proxy health
    (OPERATOR, HEAD, 6379, False),
    (OPERATOR, WORKER, 8265, False),
    (Peer("ray-system", {"app": "something-else"}), HEAD, 8265, False),
    (Peer("kserve", {"control-plane": "kserve-controller-manager"}), PREDICTOR, 8080, False),
    (Peer("kubeflow-system", {}), WORKER, 29500, False),
    (Peer("kueue-system", {}), HEAD, 8265, False),
    (WORKER, HEAD, 6379, True),
    (Peer(NS, {"job-name": "hello"}), PREDICTOR, 8080, True),
]


@pytest.mark.parametrize(("client", "target", "port", "expected"), INGRESS)
def test_ingress_admits_the_namespace_and_only_the_kuberay_operator_on_the_head(docs, client, target, port,
                                                                                 expected):
    assert allowed(_of_kind(docs, "NetworkPolicy"), "Ingress", target, client, port) is expected


@pytest.mark.parametrize(("pod", "target", "port", "protocol", "expected"), [
    (WORKER, DNS, 53, "UDP", True), (PREDICTOR, DNS, 53, "TCP", True), (WORKER, HEAD, 6379, "TCP", True),
    (WORKER, INTERNET, 443, "TCP", False), (PREDICTOR, API_SERVER, 6443, "TCP", False),
    (HEAD, API_SERVER, 443, "TCP", False), (WORKER, Peer("kserve", {}), 443, "TCP", False),
    (WORKER, Peer("kube-system", {"k8s-app": "other"}), 53, "UDP", False),
])
def test_egress_is_dns_and_the_namespace(docs, pod, target, port, protocol, expected):
    assert allowed(_of_kind(docs, "NetworkPolicy"), "Egress", pod, target, port, protocol) is expected


def test_only_pods_that_call_the_api_reach_the_api_server(docs):
    head = _autoscaling_head()
    policies = _of_kind(docs, "NetworkPolicy")
    assert allowed(policies, "Egress", head, API_SERVER, 6443) and allowed(policies, "Egress", head, API_SERVER, 443)
    assert not allowed(policies, "Egress", head, API_SERVER, 10250)


def test_operator_ports_are_the_head_ports_kuberay_looks_up_by_name():
    """FetchHeadServiceURL finds the dashboard by the port name ``dashboard``; updateHeadPodServeLabel the Serve
    proxy by ``serve`` (KubeRay v1.7.0 utils.DashboardPortName / ServingPortName)."""
    service = layout.rayservice(layout.BASE_SIZE)
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    named = {port["name"]: port["containerPort"] for port in head["ports"]}
    assert (named["dashboard"], named["serve"]) == core.RAY_OPERATOR_PORTS


def test_the_policy_admits_the_namespace_the_installer_puts_kuberay_in():
    assert f"wait_rollout {core.KUBERAY_NAMESPACE} kuberay-operator" in operators.install_script()


# --------------------------------------------------------------------------- learners' RBAC


def _rules(docs: list[dict], kind: str) -> list[dict]:
    return [rule for doc in _of_kind(docs, kind) for rule in doc["rules"]]


def _grants(rules: list[dict], group: str, resource: str) -> set[str]:
    return {verb for rule in rules if group in rule["apiGroups"] and resource in rule["resources"]
            and "resourceNames" not in rule for verb in rule["verbs"]}


def test_learners_may_apply_and_delete_every_workload_the_plan_applies(docs):
    rules = _rules(docs, "Role")
    workloads = deploy.build_plan(layout.sizing_for("kind")).workloads()
    plurals = {kind: resource.plural for kind, resource in versions.API_RESOURCES.items()}
    plurals["PersistentVolumeClaim"] = "persistentvolumeclaims"
    for doc in (doc for step in workloads for doc in step.documents):
        group = doc["apiVersion"].rpartition("/")[0]
        plural = plurals[doc["kind"]]
        assert _grants(rules, group, plural) >= {"create", "patch", "delete", "get", "list", "watch"}, doc["kind"]


def test_learners_may_read_what_the_waits_and_diagnostics_read(docs):
    rules = _rules(docs, "Role")
    for kind in kinds.KINDS:
        resource = versions.API_RESOURCES[kind]
        assert _grants(rules, resource.group, resource.plural) >= set(rbac.READ), kind
    for resource in ("pods", "pods/log", "events", "services"):
        assert _grants(rules, "", resource) == set(rbac.READ)
    assert _grants(rules, versions.KUEUE_GROUP, "workloads") == set(rbac.READ)
    assert _grants(rules, "", "pods/portforward") == {"get", "create"}


def test_learners_get_nothing_more(docs):
    role_rules = _rules(docs, "Role")
    every = [rule for doc in docs if doc["kind"] in ("Role", "ClusterRole") for rule in doc["rules"]]
    assert all("*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"] for rule in every)
    assert {verb for rule in every for verb in rule["verbs"]} <= {*rbac.WRITE}
    forbidden = {"roles", "rolebindings", "networkpolicies", "resourcequotas", "limitranges", "namespaces",
                 "pods/exec", "serviceaccounts", "localqueues/status"}
    assert not forbidden & {resource for rule in every for resource in rule["resources"]}
    secrets = [rule for rule in role_rules if "secrets" in rule["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                        "resourceNames": [versions.RAY_CLUSTER]}]
    assert _grants(role_rules, versions.KUEUE_GROUP, "localqueues") == set(rbac.READ)


def test_the_only_cluster_wide_grant_reads_cluster_training_runtimes(docs):
    (cluster_role,) = _of_kind(docs, "ClusterRole")
    assert cluster_role["rules"] == [{"apiGroups": [versions.TRAINER_GROUP], "resources": ["clustertrainingruntimes"],
                                      "verbs": rbac.READ}]
    (role_binding,) = _of_kind(docs, "RoleBinding")
    (cluster_binding,) = _of_kind(docs, "ClusterRoleBinding")
    assert role_binding["metadata"]["namespace"] == NS and role_binding["roleRef"]["kind"] == "Role"
    assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert role_binding["subjects"] == cluster_binding["subjects"] == [
        {"kind": "Group", "name": "kit-learners", "apiGroup": "rbac.authorization.k8s.io"}]


@pytest.mark.parametrize(("spec", "expected"), [
    ("ServiceAccount:jupyter", {"kind": "ServiceAccount", "name": "jupyter", "namespace": "team-a"}),
    ("User:ada@example.org", {"kind": "User", "name": "ada@example.org", "apiGroup": "rbac.authorization.k8s.io"}),
])
def test_learners_are_a_parameter(spec, expected):
    docs = rbac.learner_access("team-a", spec)
    assert [doc["subjects"] for doc in docs if "subjects" in doc] == [[expected], [expected]]
    assert docs[3]["metadata"]["name"] == f"{rbac.RUNTIME_READER}-team-a"


@pytest.mark.parametrize("spec", ["kit-learners", "Robot:x", "Group:"])
def test_a_bad_learner_subject_says_how_to_write_one(spec):
    with pytest.raises(rbac.SubjectError, match="names no Group") as error:
        rbac.subject(spec)
    assert "Group:NAME" in error.value.fix


# --------------------------------------------------------------------------- API tokens


def test_only_the_autoscaling_ray_head_mounts_an_api_token(source, docs):
    with_token = []
    for doc in docs:
        if doc["kind"] == "TrainJob":  # Trainer's runtimePatches cannot set it: the runtime does
            (runtime,) = [d for d in _of_kind(docs, "ClusterTrainingRuntime")
                          if d["metadata"]["name"] == doc["spec"]["runtimeRef"]["name"]]
            doc = runtime
        for path, pod in traverse.pod_specs(doc):
            assert isinstance(pod.get("automountServiceAccountToken"), bool), (doc["kind"], format_path(path))
            if pod["automountServiceAccountToken"]:
                with_token.append((doc["metadata"]["name"], format_path(path)))
    expected = [(f"{versions.RAY_CLUSTER}-autoscaling", "spec.headGroupSpec.template.spec")]
    assert sorted(set(with_token)) == (expected if source == "clusters" else [])


def test_api_label_marks_exactly_the_pods_with_a_token():
    service = serving.rayservice(ServeConfig(model_dir="/models/digits", autoscaling={"min_replicas": 1}))
    cluster = service["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]["template"]
    assert head["metadata"]["labels"] == {pods.API_ACCESS_LABEL: "true"}
    assert head["spec"]["automountServiceAccountToken"] is True
    assert all("metadata" not in group["template"] for group in cluster["workerGroupSpecs"])


# --------------------------------------------------------------------------- KServe, autoscaler sidecar


def test_inferenceservice_is_cluster_local(docs):
    (isvc,) = _of_kind(docs, "InferenceService")
    assert isvc["metadata"]["labels"] == {"networking.kserve.io/visibility": "cluster-local"}


def test_autoscaler_sidecar_is_restricted_in_every_autoscaling_cluster(source, docs):
    clusters = [(doc, spec) for doc in docs for _, spec in traverse.ray_cluster_specs(doc)]
    clusters.append((service := serving.rayservice(ServeConfig(model_dir="/m", autoscaling={"max_replicas": 2})),
                     service["spec"]["rayClusterConfig"]))
    autoscaling = [(doc, spec) for doc, spec in clusters if spec.get("enableInTreeAutoscaling")]
    assert len(autoscaling) == (2 if source == "clusters" else 1)
    for doc, spec in autoscaling:
        assert spec["autoscalerOptions"]["securityContext"] == pods.restricted_security_context()
        assert check_policy([doc]) == []


def _autoscaling_cluster() -> dict:
    return load(layout.CLUSTERS / "standalone" / "raycluster-autoscaling.yaml")[0]


@pytest.mark.parametrize(("change", "path", "message"), [
    (lambda s: (s["headGroupSpec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
                s["autoscalerOptions"]["securityContext"].pop("runAsNonRoot")),
     "spec.autoscalerOptions.securityContext.runAsNonRoot", "here or in the head pod's securityContext"),
    (lambda s: s["autoscalerOptions"]["securityContext"].update(seccompProfile={"type": "Unconfined"}),
     "spec.autoscalerOptions.securityContext.seccompProfile", "RuntimeDefault or Localhost"),
    (lambda s: s["autoscalerOptions"].update(resources={"requests": {"cpu": "1", "memory": "1Gi"}}),
     "spec.autoscalerOptions.resources.limits.cpu", "missing limits.cpu"),
    (lambda s: s["autoscalerOptions"]["securityContext"].update(privileged=True),
     "spec.autoscalerOptions.securityContext.privileged", "privileged containers are not allowed"),
])
def test_autoscaler_sidecar_rules(change, path, message):
    cluster = _autoscaling_cluster()
    change(cluster["spec"])
    found = {p.path: p.message for p in check_policy([cluster])}
    assert message in found[path] and found[path].startswith("autoscaler sidecar")


def test_no_sidecar_no_sidecar_rules():
    cluster = _autoscaling_cluster()
    cluster["spec"]["enableInTreeAutoscaling"] = False
    del cluster["spec"]["autoscalerOptions"]
    assert check_policy([cluster]) == []


# --------------------------------------------------------------------------- images pinned by digest

DIGEST = "sha256:" + "0123456789abcdef" * 4


def _all_pins() -> list[str]:
    images = {image for doc in _clusters_docs() for _, image in traverse.images(doc)}
    images |= {image for docs in layout.build(layout.BASE, layout.OVERLAYS["gpu"]).values() for doc in docs
               for _, image in traverse.images(doc)}
    return [f"{image}@{DIGEST}" for image in sorted(images)]


def test_a_render_with_every_image_pinned_is_valid(tmp_path):
    pins = _all_pins()
    assert main(["manifests", "write", "--root", str(tmp_path), *(f"--pin-image={pin}" for pin in pins)]) == 0
    assert main(["manifests", "check", "--root", str(tmp_path), *(f"--pin-image={pin}" for pin in pins)]) == 0
    assert layout.check(tmp_path)  # unpinned, it differs
    folders = [tmp_path / folder for folder in ("base", "overlays", "standalone")]
    workload_files = [path for folder in folders for path in folder.rglob("*.yaml")]
    assert len(workload_files) > 20
    for path in workload_files:  # kind-config.yaml pins kind's node image by its own digest
        for doc in yaml.safe_load_all(path.read_text()):
            images = [image for _, image in traverse.images(doc)] if isinstance(doc, dict) else []
            assert all(image.endswith("@" + DIGEST) for image in images), path
    # the validator's image rule accepts digests; the overlays kustomize (kubectl) from the pinned base
    targets = [tmp_path / "base", *(tmp_path / "overlays" / name for name in layout.OVERLAYS), tmp_path / "standalone"]
    assert main(["validate", *map(str, targets)]) == 0


def test_deploy_plan_pins_the_kit_image(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    image = layout.sizing_for("kind").kit_image
    pin = ["--pin-image", f"{image}@{DIGEST}"]
    assert main(["deploy", "plan", "--profile", "kind", "--out", str(tmp_path), *pin]) == 0
    written = [doc for path in sorted(tmp_path.glob("*.yaml")) for doc in load(path)]
    images = {image for doc in written for _, image in traverse.images(doc)}
    assert f"{image}@{DIGEST}" in images and image not in images


@pytest.mark.parametrize(("pin", "message"), [
    ("rayproject/ray:2.60.0-py311-cpu@sha256:abc", "is not IMAGE@sha256:<64 hex digits>"),
    ("rayproject/ray:2.60.0-py311-cpu", "is not IMAGE@sha256"),
    (f"rayproject/ray:2.59.0-py311-cpu@{DIGEST}", "no manifest uses rayproject/ray:2.59.0-py311-cpu"),
])
def test_a_bad_or_unused_pin_is_refused(pin, message):
    with pytest.raises(pods.ImagePinError) as error:
        layout.render(pods.parse_pins([pin]))
    assert message in error.value.message and error.value.fix
