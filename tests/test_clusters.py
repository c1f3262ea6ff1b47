"""clusters/ is what the kit generates, every manifest in it is valid, and every overlay builds."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kit import versions
from kit.cli import main
from kit.deploy import layout as clusters
from kit.k8s.builders import core, kueue, runtime
from kit.k8s.validation import validate

ROOT = clusters.CLUSTERS
KUSTOMIZE_DIRS = ["base", *(f"overlays/{name}" for name in clusters.OVERLAYS)]
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def _kustomize(relative: str) -> list[dict]:
    result = subprocess.run(["kubectl", "kustomize", str(ROOT / relative)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {relative} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _by_identity(docs: list[dict]) -> dict:
    return {clusters.identity(doc): doc for doc in docs}


def test_committed_clusters_dir_is_what_the_kit_generates():
    problems = clusters.check()
    assert not problems, "clusters/ is out of date: run `python -m kit manifests write`\n" + "\n".join(problems)


def test_check_reports_edits_strays_and_missing_files(tmp_path, capsys):
    clusters.write(tmp_path)
    assert clusters.check(tmp_path) == []
    (tmp_path / "base" / "job.yaml").write_text("edited: true\n")
    (tmp_path / "base" / "stray.yaml").write_text("{}\n")
    (tmp_path / "kind-config.yaml").unlink()
    problems = "\n".join(clusters.check(tmp_path))
    assert "base/job.yaml: differs" in problems and "stray.yaml: not generated" in problems
    assert "kind-config.yaml: missing" in problems
    assert main(["manifests", "check", "--root", str(tmp_path)]) == 1
    assert "Fix: run `python -m kit manifests write`" in capsys.readouterr().err
    assert main(["manifests", "check", "--json", "--root", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["current"] is False and len(report["problems"]) == 3
    assert main(["manifests", "write", "--root", str(tmp_path)]) == 0
    assert clusters.check(tmp_path) == [] and not (tmp_path / "base" / "stray.yaml").exists()
    assert main(["manifests", "check", "--json", "--root", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["current"] is True


@pytest.mark.parametrize("folder", ["base", "standalone"])
def test_every_generated_manifest_passes_validation_and_policy(folder):
    files = sorted(p for p in (ROOT / folder).glob("*.yaml") if p.name != "kustomization.yaml")
    builders = clusters.BASE if folder == "base" else clusters.STANDALONE
    assert [p.name for p in files] == sorted(builders)  # exactly the generated files, each validated below
    problems = validate.validate_paths(files)
    assert problems == [], "\n".join(map(str, problems))


@needs_kubectl
@pytest.mark.parametrize("relative", KUSTOMIZE_DIRS)
def test_kubectl_kustomize_builds_and_the_result_is_valid(relative):
    docs = _kustomize(relative)
    problems = validate.validate_documents(docs, f"kubectl kustomize {relative}")
    assert problems == [], "\n".join(map(str, problems))


@needs_kubectl
@pytest.mark.parametrize("overlay", sorted(clusters.OVERLAYS))
def test_overlay_builds_exactly_what_the_builders_make_for_its_sizing(overlay):
    built = _by_identity(_kustomize(f"overlays/{overlay}"))
    expected = _by_identity(clusters.expected_overlay(overlay))
    assert built.keys() == expected.keys()
    for key, doc in expected.items():
        assert built[key] == doc, f"{key} differs after kustomize"


def test_overlays_differ_where_they_should():
    kind = _by_identity(clusters.expected_overlay("local-kind"))
    gpu = _by_identity(clusters.expected_overlay("gpu"))
    rc = ("ray.io/v1", "RayCluster", clusters.NAMESPACE, "kit-raycluster")
    assert kind[rc]["spec"]["workerGroupSpecs"][0]["replicas"] == 1
    assert [g["groupName"] for g in gpu[rc]["spec"]["workerGroupSpecs"]] == ["cpu", "gpu"]
    flavor = ("kueue.x-k8s.io/v1beta2", "ResourceFlavor", "", clusters.GPU_FLAVOR)
    assert flavor in gpu and flavor not in kind


def test_json_patch_covers_add_remove_replace_and_escapes_keys():
    old = {"a": 1, "gone": True, "labels": {"x/y": "1"}, "items": [1, 2]}
    new = {"a": 2, "labels": {"x/y": "2", "new~key": "v"}, "items": [1, 2, 3]}
    assert clusters.json_patch(old, new) == [
        {"op": "remove", "path": "/gone"},
        {"op": "replace", "path": "/a", "value": 2},
        {"op": "replace", "path": "/labels/x~1y", "value": "2"},
        {"op": "add", "path": "/labels/new~0key", "value": "v"},
        {"op": "add", "path": "/items/-", "value": 3},
    ]
    assert clusters.json_patch([1, 2, 3], [1]) == [{"op": "replace", "path": "", "value": [1]}]


def _all_text() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in sorted(ROOT.rglob("*")) if p.is_file()]


def test_no_floating_image_tags_anywhere_in_clusters():
    for path, text in _all_text():
        assert ":latest" not in text, path
        for image in re.findall(r"image:\s*(\S+)", text):
            assert ":" in image.split("/")[-1] or "@sha256:" in image, f"{path}: unpinned image {image}"


def test_ray_images_and_versions_match_the_kit_ray_version():
    ray_images = [image for _, text in _all_text() for image in re.findall(r"(rayproject/ray\S*)", text)]
    installed = versions.installed_version("ray")  # the client's Ray: clusters must run the same
    assert ray_images
    assert {image.split(":")[1].split("-")[0] for image in ray_images} == {installed}, ray_images
    ray_versions = {v for _, text in _all_text() for v in re.findall(r"rayVersion:\s*'?([\d.]+)", text)}
    assert ray_versions == {installed}


def test_kind_config_pins_the_node_image_by_digest():
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    assert {node["image"] for node in config["nodes"]} == {versions.IMAGES["kind-node"]}
    assert "@sha256:" in versions.IMAGES["kind-node"]


def test_restricted_runtime_differs_from_upstream_only_where_security_needs_it():
    upstream = runtime.upstream_torch_distributed()
    ours = runtime.torch_distributed_restricted()
    assert validate.validate_documents([upstream]), "upstream's runtime is expected to fail the policy"
    assert validate.validate_documents([ours]) == []
    assert ours["spec"]["mlPolicy"] == upstream["spec"]["mlPolicy"]
    assert ours["metadata"]["labels"] == upstream["metadata"]["labels"]
    up_job = upstream["spec"]["template"]["spec"]["replicatedJobs"][0]
    our_job = ours["spec"]["template"]["spec"]["replicatedJobs"][0]
    assert our_job["name"] == up_job["name"] and our_job["template"]["metadata"] == up_job["template"]["metadata"]
    up_node = up_job["template"]["spec"]["template"]["spec"]["containers"][0]
    our_node = our_job["template"]["spec"]["template"]["spec"]["containers"][0]
    assert (our_node["name"], our_node["image"]) == (up_node["name"], up_node["image"])
    assert up_node["image"] == versions.IMAGES["pytorch"]


# --------------------------------------------------------------------------- builders


def test_namespace_enforces_restricted_and_quota_counts_gpus():
    ns = core.namespace("team")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    quota = core.resource_quota("team", "4", "8Gi", gpus=1)["spec"]["hard"]
    assert quota["requests.nvidia.com/gpu"] == "1" and quota["limits.memory"] == "8Gi"


def test_gpu_job_requests_gpus_and_tolerates_gpu_nodes():
    job = core.batch_job("train", "team", ["python", "train.py"], gpus=1, queue="q")
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu" and pod["restartPolicy"] == "Never"
    assert job["metadata"]["labels"] == {versions.QUEUE_LABEL: "q"}
    with pytest.raises(ValueError, match="parallelism"):
        core.batch_job("x", "team", ["true"], parallelism=0)


def test_resource_groups_refuse_a_resource_in_two_groups():
    groups = kueue.resource_groups({"cpu-flavor": {"cpu": 4, "memory": "8Gi"}, "gpu": {"nvidia.com/gpu": 2}})
    assert [g["coveredResources"] for g in groups] == [["cpu", "memory"], ["nvidia.com/gpu"]]
    with pytest.raises(ValueError, match="'cpu' is covered by two resource groups"):
        kueue.resource_groups({"a": {"cpu": 4, "memory": "8Gi"}, "b": {"cpu": 2}})


def test_simulated_admission_is_all_or_nothing_and_fifo_lets_small_ones_pass():
    big = core.batch_job("big", "ns", ["true"], cpu="2", parallelism=3)
    small = core.batch_job("small", "ns", ["true"], cpu="1")
    results = kueue.simulate_admission({"cpu": 4, "memory": "8Gi"}, [small, big, small | {"metadata": {"name": "s2"}}])
    assert [(r.name, r.admitted) for r in results] == [("small", True), ("big", False), ("s2", True)]
    assert "cpu needs 6, 3 free" in results[1].reason
    assert kueue.quantity("500m") == 0.5 and kueue.quantity("2Gi") == 2 * 2**30


def test_queue_label_of_builders_is_the_one_validation_and_diagnostics_read():
    from kit.k8s.builders import ray
    from kit.k8s.live import diagnostics

    queued = ray.raycluster(name="q", namespace="kit", queue="kit-queue")
    assert validate.validate_documents([queued], queue="kit-queue", policy=False) == []
    [problem] = validate.validate_documents([queued], queue="other", policy=False)
    assert problem.path == f'metadata.labels["{versions.QUEUE_LABEL}"]'
    snap = diagnostics.Snapshot("RayCluster", "q", "kit", resource=queued)
    assert any("no Kueue Workload" in hint for hint in diagnostics.hints(snap))


# --------------------------------------------------------------------------- install script
# (tests/test_operators.py checks clusters/install-operators.sh)


BASH = shutil.which("bash") or "/bin/bash"


# --------------------------------------------------------------------------- the real-cluster lane


def test_test_cluster_lane_is_wired_but_not_part_of_make_test():
    script = ROOT / "test-cluster.sh"
    assert script.stat().st_mode & 0o100, "clusters/test-cluster.sh must be executable"
    assert subprocess.run([BASH, "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "trap finish EXIT" in text and "kind delete cluster" in text and "-p PROFILE kind" in text
    assert "clusters/install-operators.sh" in text and "kit cluster diagnostics" in text
    makefile = (ROOT.parent / "Makefile").read_text()
    assert "test-cluster: $(STAMP)\n\tPY=$(VPY) clusters/test-cluster.sh" in makefile
    assert "test-cluster" not in makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]


def test_test_cluster_lane_stops_early_naming_missing_tools():
    result = subprocess.run([BASH, str(ROOT / "test-cluster.sh")], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/nonexistent", "PY": sys.executable})
    assert result.returncode == 2 and "make test-cluster needs: docker kind kubectl helm git" in result.stderr


def test_validate_command_builds_each_kustomization_and_passes_on_clusters(capsys):
    assert main(["validate", str(clusters.CLUSTERS)]) == 0
    out = capsys.readouterr().out
    assert "all valid" in out and "set aside 1 kind cluster config" in out


def test_a_broken_kustomization_is_a_problem(tmp_path):
    from kit.k8s.validation import loading

    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    [loaded, loose] = loading.load_sets([tmp_path])[0]
    assert "kustomize build failed" in loaded.problems[0].message and not loose.documents


def test_a_rayjob_s_size_is_its_config_s_workers_and_the_sizing_only_a_default():
    size = clusters.OVERLAYS["local-kind"]

    def counts(job: dict) -> tuple[int, int]:
        argv = shlex.split(job["spec"]["entrypoint"])
        replicas = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"]
        return replicas, json.loads(argv[argv.index("--config") + 1])["workers"]

    assert counts(clusters.rayjob(size)) == (size.ray_workers, size.ray_workers) == (1, 1)
    assert counts(clusters.rayjob(size, {"workers": 3})) == (3, 3)  # the config wins, the sizing does not cap it


def _claims(docs: list[dict]) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc["spec"] for doc in docs if doc["kind"] == "PersistentVolumeClaim"}


@needs_kubectl
@pytest.mark.parametrize(("relative", "mode"), [("base", "ReadWriteMany"), ("overlays/gpu", "ReadWriteMany"),
                                                ("overlays/local-kind", "ReadWriteOnce")])
def test_shared_volumes_are_read_write_many_except_on_kind(relative, mode):
    claims = _claims(_kustomize(relative))
    assert sorted(claims) == ["kit-checkpoints", "kit-models"]
    assert all(spec["accessModes"] == [mode] for spec in claims.values()), claims
    assert all("storageClassName" not in spec for spec in claims.values())  # the cluster's default unless patched


@needs_kubectl
def test_a_kustomize_patch_sets_the_storage_class(tmp_path):
    """What the README tells a multi-node cluster's owner to write: one patch, both claims."""
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(ROOT / "base", tmp_path)],
        "patches": [{"target": {"kind": "PersistentVolumeClaim"},
                     "patch": "- {op: add, path: /spec/storageClassName, value: efs-sc}"}]}))
    result = subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    claims = _claims([doc for doc in yaml.safe_load_all(result.stdout) if doc])
    assert {spec["storageClassName"] for spec in claims.values()} == {"efs-sc"}


def _server_pods(docs: list[dict]) -> list[tuple[str, dict]]:
    """(name, pod spec) of every pod of the RayService and the InferenceService."""
    pods = []
    for doc in docs:
        if doc["kind"] == "RayService":
            cluster = doc["spec"]["rayClusterConfig"]
            groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
            pods += [(f"RayService {g.get('groupName', 'head')}", g["template"]["spec"]) for g in groups]
        elif doc["kind"] == "InferenceService":
            pods.append(("InferenceService predictor", doc["spec"]["predictor"]))
    return pods


@needs_kubectl
@pytest.mark.parametrize("relative", KUSTOMIZE_DIRS)
def test_every_server_pod_waits_for_the_model_first(relative):
    pods = _server_pods(_kustomize(relative))
    assert len(pods) == 3
    for name, pod in pods:
        [wait] = pod["initContainers"]
        assert wait["name"] == "wait-for-model", name
        assert wait["command"][:2] == ["python", "-c"] and wait["command"][3] == "/models/digits", name
        [mount] = wait["volumeMounts"]
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["persistentVolumeClaim"]["claimName"] == "kit-models" and mount["readOnly"], name


def _ray_pods(docs: list[dict]) -> list[tuple[str, dict]]:
    from kit.k8s import traverse

    pods = []
    for doc in docs:
        for _, cluster in traverse.ray_cluster_specs(doc):
            groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
            pods += [(f"{doc['kind']}/{doc['metadata']['name']}", g["template"]["spec"]) for g in groups]
    return pods


@needs_kubectl
@pytest.mark.parametrize("relative", KUSTOMIZE_DIRS)
def test_ray_pods_have_an_in_memory_dev_shm_big_enough_for_the_object_store(relative):
    from kit.k8s.requests import Requests

    pods = _ray_pods(_kustomize(relative))
    assert {name.split("/")[0] for name, _ in pods} == {"RayCluster", "RayJob", "RayService"}
    for name, pod in pods:
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm"]
            shm = volumes[mount["name"]]["emptyDir"]
            assert shm["medium"] == "Memory", name
            memory = Requests.parse(0, container["resources"]["limits"]["memory"]).memory_bytes
            # Ray's object store: 30% of the memory it sees, at most 95% of /dev/shm
            assert 0.3 * memory <= 0.95 * Requests.parse(0, shm["sizeLimit"]).memory_bytes <= memory, name


@pytest.mark.parametrize("overlay", ["base", *sorted(clusters.OVERLAYS)])
def test_resource_quota_holds_the_kueue_quota_and_the_unqueued_servers_at_peak(overlay):
    from kit.deploy import sizing
    from kit.k8s import requests

    docs = clusters.expected_overlay(overlay) if overlay != "base" else \
        [d for docs in clusters.build(clusters.BASE, clusters.BASE_SIZE).values() for d in docs]
    [quota] = [d["spec"]["hard"] for d in docs if d["kind"] == "ResourceQuota"]
    namespace = requests.Requests.parse(quota["requests.cpu"], quota["requests.memory"],
                                        quota[f"requests.{core.GPU_RESOURCE}"])
    servers = requests.requests_of(docs, peak=True)[requests.UNQUEUED]
    assert servers.cpu_millis > 0  # the InferenceService is not queued
    assert (sizing.kueue_quota(docs) + servers).fits(namespace)
    # and every queued workload fits the ClusterQueue on its own: Kueue never admits one that does not
    assert [w.name for w in requests.workloads(docs) if w.queued and not w.requests.fits(sizing.kueue_quota(docs))] \
        == []


@pytest.mark.parametrize("overlay", ["base", *sorted(clusters.OVERLAYS)])
def test_the_standing_raycluster_runs_the_kit_image_with_the_shared_volume(overlay):
    """PROFILE="kind"/"cluster" notebooks connect to this RayCluster: its pods need torch (the kit image; Ray
    Client ships the kit's code) and the volume KIT_SHARED_STORAGE names (Tune results, data, models)."""
    docs = clusters.expected_overlay(overlay) if overlay != "base" else \
        [d for docs in clusters.build(clusters.BASE, clusters.BASE_SIZE).values() for d in docs]
    [cluster] = [d for d in docs if d["kind"] == "RayCluster" and d["metadata"]["name"] == versions.RAY_CLUSTER]
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    for group in groups:
        pod = group["template"]["spec"]
        ray_container = pod["containers"][0]
        assert ray_container["image"].startswith(versions.IMAGES["kit"].rsplit("-", 1)[0]), ray_container["image"]
        [shared] = [v for v in pod["volumes"] if v["name"] == "shared"]
        assert shared["persistentVolumeClaim"]["claimName"] == "kit-checkpoints"
        assert {"name": "shared", "mountPath": versions.SHARED_MOUNT} in ray_container["volumeMounts"]
        assert {"name": versions.SHARED_STORAGE_ENV, "value": versions.SHARED_MOUNT} in ray_container["env"]
