"""``kit.k8s.validation.admission.core``: the API server's field validation of built-in kinds. Each rule rejects
one minimal manifest with its field path and message; the built-in objects the kit renders pass them all."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from manifest_fixtures import by_kind

from kit.cli import main as cli
from kit.hackathon import event as ev
from kit.hackathon import jupyterhub, plan
from kit.k8s.builders import core, rbac, serving
from kit.k8s.validation.admission import core as api
from kit.k8s.validation.validate import validate_documents

Doc = dict[str, Any]
WORKER = "spec.workerGroupSpecs[0].template.spec.containers[0].resources"


def _problems(*docs: Doc) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in validate_documents(list(docs), "core", policy=False)]


def _doc(kind: str, name: str = "x", namespace: str | None = "team-a", api_version: str = "v1", **fields: Any) -> Doc:
    metadata: Doc = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}


def _pod(requests: Doc | None = None, limits: Doc | None = None, init: bool = False) -> Doc:
    default = {"cpu": "1", "memory": "1Gi"}
    resources = {"requests": requests or default, "limits": limits or default}
    container = {"name": "main", "image": "python:3.11-slim", "resources": resources}
    spec = {"containers": [container]}
    if init:
        spec = {"initContainers": [container], "containers": [{"name": "main", "image": "python:3.11-slim"}]}
    return _doc("Pod", spec=spec)


def _with_metadata(**metadata: Any) -> Doc:
    doc = _doc("ServiceAccount")
    doc["metadata"].update(metadata)
    return doc


def _quota(**hard: Any) -> Doc:
    return _doc("ResourceQuota", spec={"hard": {"requests.cpu": "4", **hard}})


def _limits(**limit: Any) -> Doc:
    return _doc("LimitRange", spec={"limits": [{"type": "Container", **limit}]})


def _claim(**spec: Any) -> Doc:
    return _doc("PersistentVolumeClaim", spec={"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": "1Gi"}}, **spec})


def _raycluster_worker(resources: Doc) -> Doc:
    cluster = by_kind("RayCluster")
    cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"] = resources
    return cluster


def _rbac(kind: str, name: str) -> Doc:
    namespace = "team-a" if kind == "Role" else None
    return _doc(kind, name, namespace, api_version="rbac.authorization.k8s.io/v1", rules=[])


RFC1123_LABEL = "a lowercase RFC 1123 label"
NOT_QUANTITY = "is not a quantity: quantities must match the regular expression"
GPU = "nvidia.com/gpu"

CASES: list[tuple[str, Callable[[], Doc], str, str]] = [
    ("namespace-name-label", lambda: _doc("Namespace", "Team_A", None), "metadata.name",
     f"Namespace name 'Team_A': {RFC1123_LABEL}"),
    ("namespace-name-63", lambda: _doc("Namespace", "n" * 64, None), "metadata.name", "no more than 63 characters"),
    ("service-name-dns1035", lambda: _doc("Service", "1-svc", spec={"ports": [{"port": 80}]}), "metadata.name",
     "DNS-1035 label"),
    ("configmap-name-subdomain", lambda: _doc("ConfigMap", "My_Config"), "metadata.name",
     "(NameIsDNSSubdomain)"),
    ("generate-name-prefix", lambda: _doc("Job", api_version="batch/v1") | {"metadata": {"generateName": "Train-"}},
     "metadata.generateName", "RFC 1123 subdomain"),
    ("job-name-63", lambda: _doc("Job", "j" * 64, api_version="batch/v1"), "metadata.name",
     "Job name of 64 characters: the API server copies it into the label batch.kubernetes.io/job-name"),
    ("template-label", lambda: _doc("Job", api_version="batch/v1", spec={"template": {"metadata": {
        "labels": {"app": "web server"}}}}), "spec.template.metadata.labels.app", "label value 'web server'"),
    ("role-name-slash", lambda: _rbac("Role", "a/b"), "metadata.name", "may not contain '/' (ValidateRBACName)"),
    ("clusterrole-name-dots", lambda: _rbac("ClusterRole", ".."), "metadata.name", "may not be '..'"),
    ("namespace-field-label", lambda: _doc("ServiceAccount", namespace="Team.A"), "metadata.namespace",
     f"namespace 'Team.A': {RFC1123_LABEL}"),
    ("label-key", lambda: _with_metadata(labels={"team a": "x"}), 'metadata.labels["team a"]',
     "label key 'team a': name part must consist of"),
    ("label-key-prefix", lambda: _with_metadata(labels={"Kit.io/team": "x"}), 'metadata.labels["Kit.io/team"]',
     "prefix part a lowercase RFC 1123 subdomain"),
    ("label-value", lambda: _with_metadata(labels={"team": "a b"}), "metadata.labels.team",
     "label value 'a b': a valid label must be an empty string or"),
    ("label-value-63", lambda: _with_metadata(labels={"team": "t" * 64}), "metadata.labels.team",
     "must be no more than 63 characters"),
    ("annotation-key", lambda: _with_metadata(annotations={"-note": "x"}), 'metadata.annotations["-note"]',
     "annotation key '-note'"),
    ("annotations-size", lambda: _with_metadata(annotations={"note": "x" * (256 * 1024)}), "metadata.annotations",
     "may not be more than 262144 bytes"),
    ("finalizer", lambda: _with_metadata(finalizers=["cleanup"]), "metadata.finalizers[0]",
     "neither a standard finalizer name nor is it fully qualified"),
    ("quota-quantity", lambda: _quota(**{"limits.memory": "4GB"}), 'spec.hard["limits.memory"]',
     f"'4GB' {NOT_QUANTITY}"),
    ("quota-resource-name", lambda: _quota(gpus="1"), "spec.hard.gpus", "must be a standard resource for quota"),
    ("quota-integer", lambda: _quota(pods="1500m"), "spec.hard.pods", "pods must be an integer"),
    ("quota-negative", lambda: _quota(**{"requests.memory": "-1Gi"}), 'spec.hard["requests.memory"]',
     "must be greater than or equal to 0"),
    ("request-above-limit", lambda: _pod({"cpu": "2", "memory": "1Gi"}), "spec.containers[0].resources.requests.cpu",
     "'2' must be less than or equal to cpu limit of 1"),
    ("init-request-above-limit", lambda: _pod({"cpu": "1", "memory": "2Gi"}, init=True),
     "spec.initContainers[0].resources.requests.memory", "must be less than or equal to memory limit of 1Gi"),
    ("container-quantity", lambda: _pod(limits={"cpu": "one", "memory": "1Gi"}),
     "spec.containers[0].resources.limits.cpu", f"'one' {NOT_QUANTITY}"),
    ("container-resource-name", lambda: _pod(limits={"cpu": "1", "memory": "1Gi", "gpu": "1"}),
     "spec.containers[0].resources.limits.gpu", "must be a standard resource for containers"),
    ("gpu-needs-a-limit", lambda: _pod({"cpu": "1", "memory": "1Gi", GPU: "1"}), "spec.containers[0].resources.limits",
     "Limit must be set for non overcommitable resources"),
    ("gpu-request-equals-limit", lambda: _pod({"cpu": "1", "memory": "1Gi", GPU: "1"},
                                              {"cpu": "1", "memory": "1Gi", GPU: "2"}),
     f'spec.containers[0].resources.requests["{GPU}"]', f"must be equal to {GPU} limit of 2"),
    ("gpu-integer", lambda: _pod(limits={"cpu": "1", "memory": "1Gi", GPU: "0.5"}),
     f'spec.containers[0].resources.limits["{GPU}"]', f"{GPU} must be an integer"),
    ("job-template", lambda: _doc("Job", api_version="batch/v1", spec={"template": {"spec": {
        "restartPolicy": "Never", **_pod({"cpu": "2", "memory": "1Gi"})["spec"]}}}),
     "spec.template.spec.containers[0].resources.requests.cpu", "must be less than or equal to cpu limit of 1"),
    ("custom-resource-pod-template", lambda: _raycluster_worker({"requests": {"cpu": "2", "memory": "1Gi"},
                                                                 "limits": {"cpu": "1", "memory": "1Gi"}}),
     f"{WORKER}.requests.cpu", "must be less than or equal to cpu limit of 1"),
    ("limitrange-default-above-max", lambda: _limits(default={"cpu": "2"}, max={"cpu": "1"}),
     "spec.limits[0].default.cpu", "default value 2 is greater than max value 1"),
    ("limitrange-request-above-default", lambda: _limits(default={"memory": "1Gi"}, defaultRequest={"memory": "2Gi"}),
     "spec.limits[0].defaultRequest.memory", "default request value 2Gi is greater than default limit value 1Gi"),
    ("limitrange-min-above-request", lambda: _limits(min={"cpu": "1"}, defaultRequest={"cpu": "500m"}),
     "spec.limits[0].defaultRequest.cpu", "min value 1 is greater than default request value 500m"),
    ("limitrange-min-above-default", lambda: _limits(min={"cpu": "1"}, default={"cpu": "500m"}),
     "spec.limits[0].default.cpu", "min value 1 is greater than default value 500m"),
    ("limitrange-gpu-default-request", lambda: _limits(default={GPU: "2"}, defaultRequest={GPU: "1"}),
     f'spec.limits[0].defaultRequest["{GPU}"]', "default value 2 must equal to defaultRequest value 1"),
    ("limitrange-claim-storage", lambda: _doc("LimitRange", spec={"limits": [{"type": "PersistentVolumeClaim"}]}),
     "spec.limits[0]", "either minimum or maximum storage value is required"),
    ("limitrange-min-above-max", lambda: _limits(min={"cpu": "2"}, max={"cpu": "1"}),
     "spec.limits[0].min.cpu", "min value 2 is greater than max value 1"),
    ("limitrange-quantity", lambda: _limits(default={"memory": "lots"}), "spec.limits[0].default.memory",
     NOT_QUANTITY),
    ("limitrange-type", lambda: _doc("LimitRange", spec={"limits": [{"type": "Node", "max": {"cpu": "1"}}]}),
     "spec.limits[0].type", "must be a standard limit type (Container, Pod, PersistentVolumeClaim)"),
    ("limitrange-pod-default", lambda: _doc("LimitRange", spec={"limits": [{"type": "Pod", "default": {"cpu": "1"}}]}),
     "spec.limits[0].default", "may not be specified when `type` is 'Pod'"),
    ("limitrange-ratio", lambda: _limits(maxLimitRequestRatio={"cpu": "500m"}),
     "spec.limits[0].maxLimitRequestRatio.cpu", "is less than 1"),
    ("claim-storage-required", lambda: _claim(resources={"requests": {}}), "spec.resources.requests.storage",
     "required"),
    ("claim-storage-positive", lambda: _claim(resources={"requests": {"storage": "0"}}),
     "spec.resources.requests.storage", "must be greater than zero"),
    ("claim-access-mode", lambda: _claim(accessModes=[]), "spec.accessModes", "at least 1 access mode is required"),
    ("configmap-key", lambda: _doc("ConfigMap", data={"conf/app.yaml": "x"}), 'data["conf/app.yaml"]',
     "a valid config key must consist of"),
]


@pytest.mark.parametrize(("case", "doc", "path", "message"), CASES, ids=[case[0] for case in CASES])
def test_each_rule_rejects_its_minimal_manifest(case, doc, path, message):
    problems = _problems(doc())
    assert len(problems) == 1, "\n".join(map(str, problems))
    assert problems[0][0] == path and message in problems[0][1], problems[0]


def test_the_reported_gap_is_closed():
    """The manifest that passed before: a Namespace named like a variable, a quota in words and GB."""
    problems = _problems(_doc("Namespace", "Team_A", None),
                         _doc("ResourceQuota", "q", spec={"hard": {"requests.cpu": "lots", "limits.memory": "4GB"}}))
    paths = [path for path, _ in problems]
    assert paths == ["metadata.name", 'spec.hard["limits.memory"]', 'spec.hard["requests.cpu"]']


def test_what_the_api_server_accepts_passes():
    """Edges that are valid upstream: RBAC names with ':' and capitals, a generateName ending in '-', a prefixed
    finalizer and label, GPU limits alone or equal to requests, quota names with a domain, count/ and hugepages."""
    gpu = {"cpu": "500m", "memory": "512Mi", GPU: 1}
    docs = [
        _rbac("ClusterRole", "system:Kit-Reader"), _rbac("Role", "kit.editor"),
        _doc("Job", api_version="batch/v1", spec={"template": {"spec": {"restartPolicy": "Never",
                                                                          **_pod(gpu, gpu)["spec"]}}})
        | {"metadata": {"generateName": "train-", "namespace": "team-a", "finalizers": ["kubernetes", "kit.io/x"],
                        "labels": {"kit.io/team": "", "app": "A.b_c-1"}, "annotations": {"Kit.IO/Note": "x" * 1000}}},
        _pod({"cpu": "250m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi", GPU: "2", "hugepages-2Mi": "0"}),
        _quota(**{"requests.nvidia.com/gpu": "2", "count/jobs.batch": "10", "requests.hugepages-2Mi": "1Gi",
                  "pods": 20, "services.loadbalancers": "0"}),
        _limits(min={"cpu": "100m"}, defaultRequest={"cpu": "250m"}, default={"cpu": "500m"}, max={"cpu": "2"},
                maxLimitRequestRatio={"cpu": "4"}),
        _doc("LimitRange", "pvc", spec={"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}}]}),
        _claim(), _doc("ConfigMap", data={"app.yaml": "x", ".hidden": "y", "A_b-1": "z"}),
    ]
    assert _problems(*docs) == []


def test_custom_resources_keep_their_operators_name_rules():
    """Only built-in kinds get the API server's name rules here: a custom resource's name is its operator's
    (KubeRay: a DNS-1035 label), and no second message for the same name."""
    cluster = by_kind("RayCluster")
    cluster["metadata"]["name"] = "7-ray"
    assert [path for path, _ in _problems(cluster)] == ["metadata.name"]
    assert api.object_problems(cluster) == []


# --------------------------------------------------------------------------- the kit's own output


def _kit_builtins(tmp_path) -> list[Doc]:
    path = tmp_path / "event.yaml"
    assert cli(["hackathon", "init", "--teams", "2", "--out", str(path)]) == 0
    data = yaml.safe_load(path.read_text())
    data["resources"] = {"cpu": "4", "memory": "16Gi", "gpu": 1}
    event = ev.from_mapping(data, "gpu event")
    docs = [core.namespace("kit"), core.resource_quota("kit", "4", "8Gi", gpus=2), core.limit_range("kit"),
            *core.network_policies("kit"), core.pod("probe", "kit", ["true"], gpus=1),
            core.batch_job("train", "kit", ["true"], gpus=1, queue="kit-queue"), *rbac.learner_access("kit"),
            serving.shared_claim("kit"), *plan.build(event).documents(),
            *jupyterhub.implied_pods(jupyterhub.values(event))]
    return [copy.deepcopy(doc) for doc in docs]


def test_the_kit_renders_what_the_api_server_admits(tmp_path):
    docs = _kit_builtins(tmp_path)
    kinds = {doc["kind"] for doc in docs}
    assert kinds >= {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "Pod", "Job", "Role", "RoleBinding",
                     "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "PersistentVolumeClaim"}
    found = {(doc["kind"], doc["metadata"].get("name")): api.object_problems(doc) + api.pod_problems(doc)
             for doc in docs}
    assert {key: problems for key, problems in found.items() if problems} == {}
    gpu_pods = [doc for doc in docs if doc["kind"] == "Pod" and GPU in str(doc)]
    assert gpu_pods, "a GPU pod is among the kit's output, so the extended-resource rules were exercised"
