"""``kit.k8s.validation.admission``: one minimal manifest per operator rule, failing for that rule only,
and the kit's own manifests passing them all."""

from __future__ import annotations

import pytest
from admission_cases import CASES, Doc, env_containers, formats, serving_runtime
from manifest_fixtures import by_kind

from kit import versions
from kit.k8s.builders import ray, serving, training
from kit.k8s.validation.admission import kserve, kuberay, names
from kit.k8s.validation.validate import validate_documents


def _problems(*docs: Doc) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in validate_documents(list(docs), "admission", policy=False)]


def _only(docs: list[Doc], path: str, message: str) -> None:
    problems = _problems(*docs)
    assert len(problems) == 1, "\n".join(map(str, problems))
    assert problems[0][0] == path and message in problems[0][1], problems[0]


# --------------------------------------------------------------------------- one rule, one manifest


@pytest.mark.parametrize(("case", "docs", "path", "message"), CASES, ids=[case[0] for case in CASES])
def test_each_rule_rejects_its_minimal_manifest(case, docs, path, message):
    _only(docs(), path, message)


def test_every_fixture_base_is_admitted():
    """The mutated fixtures start valid: each case above fails for its change only."""
    kinds = ("TrainJob", "ClusterTrainingRuntime", "RayCluster", "RayJob", "RayService", "ClusterQueue",
             "ResourceFlavor", "InferenceService")
    assert _problems(*(by_kind(kind) for kind in kinds), serving_runtime()) == []


def test_serving_runtimes_without_a_clash_are_admitted():
    """Another priority, another protocol, another namespace, or a disabled runtime: no clash."""
    other = [serving_runtime("b", supportedModelFormats=formats(2)), serving_runtime("c", protocolVersions=["v1"]),
             serving_runtime("d", disabled=True, containers=env_containers("PYTHONPATH"))]
    elsewhere = serving_runtime("e")
    elsewhere["metadata"]["namespace"] = "team-b"
    assert _problems(serving_runtime(), *other, elsewhere) == []


# --------------------------------------------------------------------------- the kit's own manifests


def test_kit_trainjob_uses_the_one_runtime_patch_manager_and_is_admitted():
    job = training.trainjob(namespace="kit", queue="kit-queue", runtime="torch-distributed")
    assert [p["manager"] for p in job["spec"]["runtimePatches"]] == [versions.RUNTIME_PATCH_MANAGER]
    assert names.domain_prefixed_path(versions.RUNTIME_PATCH_MANAGER) == []
    assert _problems(job) == []


def test_queued_autoscaling_ray_clusters_are_elastic_jobs():
    cluster = ray.raycluster(queue="kit-queue", autoscaling=True, max_workers=4)
    assert cluster["metadata"]["annotations"] == {versions.ELASTIC_JOB_ANNOTATION: "true"}
    assert _problems(cluster) == []
    assert "annotations" not in ray.raycluster(autoscaling=True, max_workers=4)["metadata"]


def test_kit_inferenceservice_storage_uri_is_checked():
    isvc = serving.inferenceservice(storage_uri="ftp://host/digits")
    assert [path for path, _ in _problems(isvc)] == ["spec.predictor.containers[0].env[0]"]


# --------------------------------------------------------------------------- helpers and edge cases


@pytest.mark.parametrize(("value", "ok"), [
    ("acme.io/foo", True), ("trainer.kubeflow.org/kubeflow-sdk", True), (versions.RUNTIME_PATCH_MANAGER, True),
    ("kit", False), ("/kit", False), ("acme.io/", False), ("ACME.io/x", False), ("acme.io/a b", False), ("", False),
])
def test_domain_prefixed_path(value, ok):
    assert (names.domain_prefixed_path(value) == []) is ok


@pytest.mark.parametrize(("text", "value"), [
    ("500m", "0.5"), ("2Gi", str(2 ** 31)), ("16", "16"), (4, "4"), ("1e3", "1000"), ("-1", "-1"), ("1n", "1E-9"),
])
def test_quantity(text, value):
    from decimal import Decimal
    assert names.quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["two", "1.2.3", "5Xi", True, None])
def test_not_a_quantity(text):
    assert names.quantity(text) is None


def test_token_auth_needs_ray_2_52():
    spec = by_kind("RayCluster")["spec"]
    assert kuberay.cluster_spec_problems(("spec",), spec, {}) == []
    spec["rayVersion"] = "2.51.0"
    assert kuberay.cluster_spec_problems(("spec",), spec, {}) == [
        (("spec", "rayVersion"), "authOptions needs rayVersion 2.52.0 or later; got '2.51.0'")]


def test_queued_rayjob_without_cluster_is_refused_by_kueue_and_kuberay():
    job = by_kind("RayJob")
    del job["spec"]["rayClusterSpec"]
    messages = [message for _, message in _problems(job)]
    assert len(messages) == 2
    assert any("required for Kueue-managed jobs" in m for m in messages)
    assert any("one of rayClusterSpec or clusterSelector" in m for m in messages)


@pytest.mark.parametrize(("uri", "ok"), [
    ("pvc://kit-models/digits", True), ("gs://b/m", True), ("hf://org/model", True), ("/mnt/models", True),
    ("https://acct.blob.core.windows.net/c/m", True), ("ftp://x/y", False), ("https://blob.core.windows.net", False),
])
def test_storage_uri_schemes(uri, ok):
    assert kserve.storage_uri_supported(uri) is ok


def test_elastic_annotation_lets_a_queued_cluster_autoscale():
    cluster = by_kind("RayCluster")
    cluster["spec"]["enableInTreeAutoscaling"] = True
    cluster["metadata"]["annotations"] = {versions.ELASTIC_JOB_ANNOTATION: "true"}
    assert _problems(cluster) == []
