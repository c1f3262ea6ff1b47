"""``kit.k8s.validation.validate`` and ``kit.k8s.validation.crds``: every check is shown to pass and to fail."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import jsonschema
import kubernetes_validate.utils
import pytest
from manifest_fixtures import FIXTURES, INVALID, VALID, by_kind, load

from kit.cli import main
from kit.errors import KitError
from kit.k8s import traverse
from kit.k8s.validation import crds
from kit.k8s.validation.admission.kuberay import SUBMISSION_MODES
from kit.k8s.validation.dryrun import server_dry_run
from kit.k8s.validation.problems import Problem, format_path
from kit.k8s.validation.rules import split_image
from kit.k8s.validation.validate import validate_documents, validate_paths
from kit.paths import REPO_ROOT
from kit.versions import IMAGES, KUBERNETES_VERSION, RAY

# --------------------------------------------------------------------------- valid fixtures


def test_valid_fixtures_pass_with_policy():
    assert validate_paths([VALID]) == []


def test_valid_fixtures_cover_every_kind_the_kit_uses():
    kinds = {doc["kind"] for path in VALID.glob("*.yaml") for doc in load(path)}
    assert kinds >= {
        "RayCluster", "RayJob", "RayService", "TrainJob", "ClusterTrainingRuntime", "PyTorchJob",
        "InferenceService", "ResourceFlavor", "ClusterQueue", "LocalQueue", "Namespace", "ResourceQuota",
        "Service",
    }


def test_valid_fixtures_use_the_apis_the_guide_pins():
    versions = {doc["kind"]: doc["apiVersion"] for path in VALID.glob("*.yaml") for doc in load(path)}
    assert versions["RayCluster"] == "ray.io/v1"
    assert versions["LocalQueue"] == versions["ClusterQueue"] == "kueue.x-k8s.io/v1beta2"
    assert versions["TrainJob"] == "trainer.kubeflow.org/v1alpha1"
    assert versions["InferenceService"] == "serving.kserve.io/v1beta1"


# --------------------------------------------------------------------------- one failing fixture per rule

INVALID_CASES = [
    ("unknown-field-deep.yaml", "spec.headGroupSpec.template.spec.containers[0].volumeMount",
     "unknown field 'volumeMount'"),
    ("wrong-type.yaml", "spec.workerGroupSpecs[0].replicas", "expected integer, got string 'two'"),
    ("int-or-string-wrong.yaml", "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota",
     "expected integer or string, got boolean"),
    ("nullable-wrong.yaml", "status.lastUpdateTime", "expected string or null"),
    ("missing-required.yaml", "spec.workerGroupSpecs[0].groupName", "missing required field 'groupName'"),
    ("empty.yaml", "", "empty file"),
    ("missing-kind.yaml", "kind", "missing required field 'kind'"),
    ("missing-name.yaml", "metadata.name", "missing required field 'name'"),
    ("unknown-kind.yaml", "kind", "unknown kind 'RayClustr'"),
    ("unknown-apiversion.yaml", "apiVersion", "unknown apiVersion 'ray.io/v2' for RayCluster"),
    ("builtin-unknown-field.yaml", "datas", "unknown field 'datas'"),
    ("builtin-unknown-kind.yaml", "kind", "unknown kind 'Deploymnet'"),
    ("builtin-unknown-apiversion.yaml", "apiVersion", "serves it as policy/v1"),
    ("bad-submission-mode.yaml", "spec.submissionMode", "expected one of K8sJobMode, HTTPMode"),
    ("ttl-without-shutdown.yaml", "spec.ttlSecondsAfterFinished", "shutdownAfterJobFinishes: true"),
    ("queue-label-missing.yaml", 'metadata.labels["kueue.x-k8s.io/queue-name"]',
     "missing label kueue.x-k8s.io/queue-name"),
    ("min-greater-than-max.yaml", "spec.workerGroupSpecs[0].minReplicas",
     "minReplicas (3) must be <= maxReplicas (2)"),
    ("replicas-out-of-bounds.yaml", "spec.workerGroupSpecs[0].replicas", "must be between minReplicas (1)"),
    ("image-latest.yaml", "spec.containers[0].image", "uses the :latest tag"),
    ("image-no-tag.yaml", "spec.containers[0].image", "has no tag"),
    ("kit-image-ray-mismatch.yaml", "spec.containers[0].image", f"was not built on Ray {RAY}"),
    ("ray-version-mismatch.yaml", "spec.headGroupSpec.template.spec.containers[0].image",
     f"does not match the kit's Ray version {RAY}"),
    ("ray-version-field.yaml", "spec.rayVersion", f"does not match the kit's Ray version {RAY}"),
    ("duplicate.yaml", "metadata.name", "defined twice"),
    ("duplicate-key.yaml", "", "duplicate key 'epochs'"),
    ("bad-format.yaml", "spec.ttlSecondsAfterFinished", "2147483648 is not a valid int32"),
]


@pytest.mark.parametrize(("name", "path", "message"), INVALID_CASES, ids=[case[0] for case in INVALID_CASES])
def test_each_invalid_fixture_fails_for_its_rule_only(name, path, message):
    problems = validate_paths([INVALID / name])
    assert len(problems) == 1, "\n".join(map(str, problems))
    assert problems[0].path == path
    assert message in problems[0].message
    assert problems[0].file == str(INVALID / name)


def test_every_invalid_fixture_has_a_case():
    assert {p.name for p in INVALID.glob("*.yaml")} == {case[0] for case in INVALID_CASES}


def test_problem_reads_as_file_resource_path_message():
    problem = validate_paths([INVALID / "wrong-type.yaml"])[0]
    assert str(problem) == (f"{INVALID / 'wrong-type.yaml'}: RayCluster/wrong-type: "
                            "spec.workerGroupSpecs[0].replicas: expected integer, got string 'two'")


# --------------------------------------------------------------------------- schema conversion


def test_conversion_rejects_undeclared_fields_unless_preserved():
    schema = crds.to_json_schema({
        "type": "object",
        "properties": {
            "strict": {"type": "object", "properties": {"a": {"type": "string"}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "marker": {"type": "object"},
        },
    })
    assert schema["additionalProperties"] is False
    assert schema["properties"]["strict"]["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["free"]
    assert schema["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["marker"]["additionalProperties"] is False  # the API server prunes its fields


def test_conversion_translates_kubernetes_extensions():
    schema = crds.to_json_schema({
        "type": "object",
        "description": "dropped",
        "x-kubernetes-validations": [{"rule": "self.a > 0"}],
        "properties": {
            "quantity": {"anyOf": [{"type": "integer"}, {"type": "string"}],
                         "x-kubernetes-int-or-string": True, "pattern": "^[0-9]+(Gi|Mi)?$"},
            "when": {"type": "string", "format": "date-time", "nullable": True},
            "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
            "count": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "object": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
        },
    })
    props = schema["properties"]
    assert "description" not in schema and "x-kubernetes-validations" not in schema
    assert props["quantity"] == {"type": ["integer", "string"], "pattern": "^[0-9]+(Gi|Mi)?$"}
    assert props["when"]["type"] == ["string", "null"] and props["when"]["format"] == "date-time"
    assert props["mode"]["enum"] == ["a", "b", None]
    assert props["count"] == {"type": "integer", "exclusiveMinimum": 0}
    assert props["tags"]["uniqueItems"] is True
    assert set(props["object"]["properties"]) == {"apiVersion", "kind", "metadata", "spec"}
    validator = jsonschema.Draft202012Validator(schema)
    embedded = {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"x": 1}}
    assert validator.is_valid({"quantity": 3, "when": None, "mode": None, "count": 1, "object": embedded})
    assert validator.is_valid({"quantity": "3Gi"})
    assert not validator.is_valid({"quantity": "lots"})
    assert not validator.is_valid({"count": 0})
    assert not validator.is_valid({"tags": ["a", "a"]})


def test_converted_crd_is_a_valid_json_schema():
    schema = crds.load_index().json_schema("kueue.x-k8s.io/v1beta2", "LocalQueue")
    jsonschema.Draft202012Validator.check_schema(schema)


def test_index_knows_every_pinned_crd_and_skips_non_crd_files():
    index = crds.load_index()
    assert set(index.files) == {
        ("ray.io", "RayCluster"), ("ray.io", "RayJob"), ("ray.io", "RayService"),
        ("trainer.kubeflow.org", "TrainJob"), ("trainer.kubeflow.org", "TrainingRuntime"),
        ("trainer.kubeflow.org", "ClusterTrainingRuntime"), ("kubeflow.org", "PyTorchJob"),
        ("kueue.x-k8s.io", "LocalQueue"), ("kueue.x-k8s.io", "ClusterQueue"),
        ("kueue.x-k8s.io", "ResourceFlavor"), ("kueue.x-k8s.io", "Cohort"),
        ("kueue.x-k8s.io", "WorkloadPriorityClass"),
        ("serving.kserve.io", "InferenceService"), ("serving.kserve.io", "ServingRuntime"),
        ("serving.kserve.io", "ClusterServingRuntime"), ("serving.kserve.io", "LLMInferenceService"),
        ("monitoring.coreos.com", "PrometheusRule"), ("monitoring.coreos.com", "ServiceMonitor"),
        ("monitoring.coreos.com", "PodMonitor"),
    }  # runtime.torch-distributed.yaml is a ClusterTrainingRuntime, not a CRD
    assert index.served_versions("kueue.x-k8s.io", "LocalQueue") == ["v1beta1", "v1beta2"]


def test_int_or_string_accepts_both():
    queue = by_kind("ClusterQueue")
    resources = queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    for value in (16, "16", "64Gi"):
        resources[0]["nominalQuota"] = value
        assert validate_documents([queue]) == [], value


def test_nullable_accepts_null():
    cluster = by_kind("RayCluster")
    cluster["status"] = {"lastUpdateTime": None}
    assert validate_documents([cluster]) == []


def test_preserve_unknown_fields_is_honoured():
    """KServe's InferenceService ``status`` is the only place the CRDs keep unknown fields."""
    service = by_kind("InferenceService")
    service["status"] = {"anything": {"goes": [1, 2]}}
    assert validate_documents([service]) == []
    service["spec"]["anything"] = 1
    assert [p.path for p in validate_documents([service])] == ["spec.anything"]


def _custom_resources():
    return [doc for path in sorted(VALID.glob("*.yaml")) for doc in load(path) if "." in doc["apiVersion"]]


@pytest.mark.parametrize("doc", [d for d in _custom_resources() if traverse.pod_specs(d)],
                         ids=lambda d: d["kind"])
def test_unknown_field_is_rejected_in_every_pod_template_of_every_custom_kind(doc):
    doc = copy.deepcopy(doc)
    expected = []
    for path, pod in traverse.pod_specs(doc):
        pod["bogusField"] = 1
        expected.append(format_path((*path, "bogusField")))
    problems = validate_documents([doc], policy=False)
    assert sorted(p.path for p in problems) == sorted(expected)
    assert all("unknown field 'bogusField'" in p.message for p in problems)


def test_trainjob_trainer_is_strict():
    job = by_kind("TrainJob")
    job["spec"]["trainer"]["numNode"] = 2
    problems = validate_documents([job])
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        ("spec.trainer.numNode", "unknown field 'numNode'")]
    assert "numNodes" in problems[0].message  # the message lists what was expected


def test_metadata_of_custom_resources_is_object_meta():
    cluster = by_kind("RayCluster")
    cluster["metadata"]["label"] = {"a": "b"}
    assert [p.path for p in validate_documents([cluster])] == ["metadata.label"]


def test_document_that_is_not_a_mapping_is_a_problem():
    problems = validate_documents([["a", "b"]], source="list.yaml")
    assert [(p.file, p.message) for p in problems] == [
        ("list.yaml", "a document must be a mapping, got array")]


def test_no_documents_is_a_problem():
    assert [p.message for p in validate_documents([])] == ["no documents to validate"]


def test_directory_without_manifests_is_a_problem(tmp_path):
    assert [p.message for p in validate_paths([tmp_path])] == ["no *.yaml or *.yml files in this directory"]


def test_bad_yaml_is_a_problem(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("kind: [unclosed\n")
    assert validate_paths([bad])[0].message.startswith("not valid YAML")


def test_kubernetes_version_is_the_newest_kubernetes_validate_ships():
    assert kubernetes_validate.utils.latest_version() == KUBERNETES_VERSION


# --------------------------------------------------------------------------- semantic rules


@pytest.mark.parametrize("mode", SUBMISSION_MODES)
def test_every_kuberay_submission_mode_is_accepted(mode):
    job = by_kind("RayJob")
    job["spec"]["submissionMode"] = mode
    if mode == "SidecarMode":  # KubeRay: "SidecarMode doesn't support SubmitterPodTemplate"
        del job["spec"]["submitterPodTemplate"]
    assert validate_documents([job]) == []


def test_submission_modes_are_kuberay_v1_7_modes():
    assert set(SUBMISSION_MODES) == {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}


def test_ttl_needs_shutdown_true_not_just_present():
    job = by_kind("RayJob")
    job["spec"]["shutdownAfterJobFinishes"] = False
    del job["spec"]["suspend"], job["metadata"]["labels"]  # KubeRay and Kueue refuse those without shutdown too
    assert [p.path for p in validate_documents([job])] == ["spec.ttlSecondsAfterFinished"]


def test_replica_bounds_apply_to_rayjob_cluster_specs():
    job = by_kind("RayJob")
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplicas"] = 1
    problems = validate_documents([job])
    assert [p.path for p in problems] == ["spec.rayClusterSpec.workerGroupSpecs[0].minReplicas"]


@pytest.mark.parametrize("image", [IMAGES["ray"], IMAGES["ray-gpu"], f"docker.io/rayproject/ray:{RAY}",
                                   f"rayproject/ray-ml:{RAY}-py311-gpu"])
def test_ray_images_at_the_kit_version_pass(image):
    cluster = by_kind("RayCluster")
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = image
    assert validate_documents([cluster]) == []


@pytest.mark.parametrize("image", ["rayproject/ray:2.9.0", "rayproject/ray:latest", "rayproject/ray",
                                   f"rayproject/ray:{RAY}1-py311-cpu", "rayproject/ray@sha256:" + "a" * 64])
def test_ray_images_at_another_version_fail(image):
    cluster = by_kind("RayCluster")
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = image
    problems = validate_documents([cluster])
    assert [p.path for p in problems] == ["spec.headGroupSpec.template.spec.containers[0].image"]
    assert RAY in problems[0].message


def test_image_pinned_by_digest_passes_and_trainjob_images_are_checked():
    job = by_kind("TrainJob")
    job["spec"]["trainer"]["image"] = "pytorch/pytorch@sha256:" + "0" * 64
    assert validate_documents([job]) == []
    job["spec"]["trainer"]["image"] = "pytorch/pytorch:latest"
    assert [p.path for p in validate_documents([job])] == ["spec.trainer.image"]


@pytest.mark.parametrize(("image", "parts"), [
    ("python", ("python", None, None)),
    ("python:3.11-slim", ("python", "3.11-slim", None)),
    ("registry:5000/team/app", ("registry:5000/team/app", None, None)),
    ("registry:5000/team/app:1.0@sha256:ab", ("registry:5000/team/app", "1.0", "sha256:ab")),
])
def test_split_image(image, parts):
    assert split_image(image) == parts


def _queued_job(label=None, namespace="team-a"):
    job = by_kind("RayJob")
    job["metadata"]["namespace"] = namespace
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": label} if label else {}
    return job


def test_queue_label_not_required_without_queue_or_localqueue():
    assert validate_documents([_queued_job()]) == []


def test_queue_argument_requires_that_exact_label():
    assert validate_documents([_queued_job("team-a-queue")], queue="team-a-queue") == []
    problems = validate_documents([_queued_job("other")], queue="team-a-queue")
    assert [(p.path, p.message) for p in problems] == [
        ('metadata.labels["kueue.x-k8s.io/queue-name"]', "queue label is 'other', expected 'team-a-queue'")]
    assert "missing label" in validate_documents([_queued_job()], queue="team-a-queue")[0].message


def test_queue_label_must_name_a_localqueue_of_the_same_namespace():
    local_queue = by_kind("LocalQueue")
    assert validate_documents([local_queue, _queued_job("team-a-queue")]) == []
    assert "names no LocalQueue" in validate_documents([local_queue, _queued_job("nope")])[0].message
    assert "names no LocalQueue" in validate_documents(
        [local_queue, _queued_job("team-a-queue", namespace="team-b")])[0].message


def test_queue_rule_spans_files_given_together():
    """The valid directory's LocalQueue is in another file than the jobs it queues."""
    assert validate_paths([VALID], queue="team-a-queue") == []
    problems = validate_paths([VALID / "03-rayjob.yaml", VALID / "01-kueue.yaml"], queue="elsewhere")
    assert [p.resource for p in problems] == ["RayJob/train-once"]


# --------------------------------------------------------------------------- CRD directory


def test_kit_crd_dir_overrides_the_default(tmp_path, monkeypatch):
    shutil.copy(crds.find_crd_dir() / "kueue.x-k8s.io_resourceflavors.yaml", tmp_path)
    monkeypatch.setenv(crds.CRD_DIR_ENV, str(tmp_path))
    assert crds.find_crd_dir() == tmp_path
    assert validate_documents([by_kind("ResourceFlavor")]) == []
    problems = validate_documents([by_kind("RayCluster")], policy=False)
    assert [(p.path, "no CRD defines it" in p.message) for p in problems] == [("kind", True)]


def test_missing_crd_dir_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(crds.CRD_DIR_ENV, raising=False)
    monkeypatch.setattr(crds, "SHARED_CRD_DIR", tmp_path / "shared" / "crds")
    monkeypatch.setattr(crds, "FETCHED_CRD_DIR", tmp_path / "build" / "crds")
    with pytest.raises(crds.CRDDirNotFoundError) as error:
        crds.find_crd_dir()
    message = error.value.explain()
    assert isinstance(error.value, KitError) and "python -m kit crds fetch" in error.value.fix
    assert str(tmp_path / "shared" / "crds") in message
    assert str(tmp_path / "build" / "crds") in message
    assert "make crds" in message and "crds urls" in message and crds.CRD_DIR_ENV in message


def test_wrong_kit_crd_dir_is_not_silently_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(crds.CRD_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(crds.CRDDirNotFoundError, match="nowhere"):
        crds.find_crd_dir()
    assert main(["validate", str(VALID / "09-service.yaml")]) == 2
    assert "no CRD files" in capsys.readouterr().err


# --------------------------------------------------------------------------- command line


def test_cli_valid_directory_exits_0(capsys):
    assert main(["validate", str(VALID)]) == 0
    assert capsys.readouterr().out.strip().endswith("14 resources in 10 files: all valid")


def test_cli_invalid_file_exits_1_and_prints_each_problem(capsys):
    assert main(["validate", str(INVALID / "wrong-type.yaml"), str(INVALID / "empty.yaml")]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert "spec.workerGroupSpecs[0].replicas" in lines[1] and "empty file" in lines[0]
    assert lines[-1] == "2 problems in 1 resource in 2 files"


@pytest.mark.parametrize("argv", [[], ["--no-such-option", "x.yaml"], ["does/not/exist.yaml"]])
def test_cli_usage_errors_exit_2(argv, capsys):
    assert main(["validate", *argv]) == 2


def test_cli_json(capsys):
    assert main(["validate", "--json", str(INVALID / "image-latest.yaml")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["files"] == 1 and report["resources"] == 1
    assert report["problems"] == [{
        "file": str(INVALID / "image-latest.yaml"), "resource": "Pod/image-latest",
        "path": "spec.containers[0].image",
        "message": "image 'python:latest' uses the :latest tag; pin a version tag or digest"}]


def test_cli_no_policy_skips_policy(capsys):
    insecure = FIXTURES / "policy" / "host-path.yaml"
    assert main(["validate", str(insecure)]) == 1
    assert main(["validate", "--no-policy", str(insecure)]) == 0


def test_cli_help_exits_0(capsys):
    assert main(["validate", "--help"]) == 0
    assert "--server-dry-run" in capsys.readouterr().out


# --------------------------------------------------------------------------- server dry-run


def _completed(returncode: int, stdout: str = "", stderr: str = ""):
    return subprocess.CompletedProcess([], returncode, stdout, stderr)


def test_server_dry_run_without_cluster_says_so():
    def run(command, **kwargs):
        assert kwargs["stdin"] == subprocess.DEVNULL  # kubectl must never wait for a password
        return _completed(1, stderr="The connection to the server localhost:8080 was refused\n")

    problems = server_dry_run(["x.yaml"], kubectl="sh", run=run)  # any program on PATH stands in for kubectl
    assert [p.message for p in problems] == [
        "server dry-run: no cluster reachable (sh: The connection to the server localhost:8080 was refused)"]


def test_server_dry_run_reports_what_the_server_rejects():
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        if command[1] == "version":
            return _completed(0, stdout='{"serverVersion": {"gitVersion": "v1.35.0"}}')
        return _completed(1, stderr='Error from server: admission webhook "x" denied the request\n')

    problems = server_dry_run([str(VALID)], kubectl="sh", run=run)
    assert calls[1][1:] == ["apply", "--dry-run=server", "-f", str(VALID), "--recursive"]
    message = 'server dry-run: Error from server: admission webhook "x" denied the request'
    assert problems == [Problem(str(VALID), "-", "", message)]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_cli_server_dry_run_without_cluster_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["validate", "--server-dry-run", str(VALID / "09-service.yaml")]) == 1
    assert "server dry-run: no cluster reachable" in capsys.readouterr().out


def test_validating_the_clusters_imports_neither_torch_nor_ray():
    """Building and validating manifests stays light: `-X importtime` lists every module imported."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "kit", "validate", "clusters/"],
                         capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    modules = {line.rpartition("|")[2].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "kit.k8s.validation.validate" in modules  # the listing is complete enough to see the validator
    heavy = sorted(m for m in modules if m.split(".")[0] in ("torch", "ray"))
    assert heavy == [], f"validating manifests imported {heavy[:5]}"
