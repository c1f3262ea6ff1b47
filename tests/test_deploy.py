"""kit.deploy.plan: stage 09's plan, its files and commands, the cluster verbs (with fake kubectl/API) and the
local rehearsal of the pods' own commands (real processes)."""

from __future__ import annotations

import json
import os
import re

import httpx
import pytest
import yaml

from kit import versions
from kit.cli import main
from kit.config.train import ConfigError
from kit.deploy import layout as clusters
from kit.deploy import plan as deploy
from kit.k8s import traverse
from kit.serve import predictor
from kit.train import artifact

STEPS = ["platform", "storage", "rayjob", "trainjob", "rayservice", "inferenceservice"]


@pytest.fixture(scope="module")
def plan() -> deploy.Plan:
    return deploy.build_plan(train_config={"dataset": "digits", "hidden": 16, "epochs": 1}, model_epochs=2)


def test_plan_orders_platform_model_training_serving(plan):
    assert [s.name for s in plan.steps] == STEPS
    assert [s.file_name for s in plan.steps][:2] == ["00-platform.yaml", "01-storage.yaml"]
    assert plan.step("platform").waits == []
    assert plan.step("rayjob").waits == [("RayJob", "kit-ray-train")]
    assert plan.step("trainjob").waits == [("TrainJob", "kit-train")]
    assert plan.step("rayservice").endpoint.command()[-2:] == ["svc/kit-digits-serve-svc", "8000:8000"]
    assert plan.step("inferenceservice").endpoint.command()[-2:] == ["svc/digits-predictor", "8080:80"]
    with pytest.raises(ValueError, match="step 'trainjob' serves nothing"):
        deploy.predict_in_cluster(plan.step("trainjob"), [[0.0] * 64])
    assert [s.name for s in plan.workloads()] == STEPS[1:]
    with pytest.raises(KeyError, match=r"no step 'nope'.*platform, storage"):
        plan.step("nope")


def test_the_model_is_written_and_waited_for_before_any_server_starts(plan):
    """The storage step's wait is the Job that writes the model; every server step comes after it, and its pods
    wait for the model themselves too (for `kubectl apply -k` of everything at once)."""
    from kit.k8s.builders import serving

    names = [step.name for step in plan.steps]
    model_job = plan.step("storage").waits
    assert model_job == [("Job", f"publish-{serving.MODEL_NAME}")]
    [job] = [d for d in plan.step("storage").documents if d["kind"] == "Job"]
    assert serving.MODEL_PATH in job["spec"]["template"]["spec"]["containers"][0]["command"]
    servers = [step for step in plan.steps if step.endpoint is not None]
    assert [s.name for s in servers] == ["rayservice", "inferenceservice"]
    assert all(names.index(s.name) > names.index("storage") for s in servers)
    for step in servers:
        waits = [c["name"] for _, pod in traverse.pod_specs(step.documents[0]) for c in pod.get("initContainers", [])]
        assert waits and set(waits) == {"wait-for-model"}, step.name


@pytest.mark.parametrize("profile", ["local", "kind", "cluster"])
def test_plan_is_valid_for_every_profile(profile):
    assert deploy.validate(deploy.build_plan(clusters.sizing_for(profile))) == []


def test_gpu_sizing_plan_is_valid_and_uses_the_gpu_image():
    plan = deploy.build_plan(clusters.OVERLAYS["gpu"])
    assert deploy.validate(plan) == []
    assert plan.step("trainjob").documents[0]["spec"]["trainer"]["image"] == versions.IMAGES["kit-gpu"]


def test_image_parameter_replaces_the_kit_image_everywhere():
    mine = f"registry.example.com/team/kit:0.1.0-ray{versions.RAY}-cpu"
    text = json.dumps(deploy.build_plan(clusters.sizing_for("cluster", mine)).documents())
    assert mine in text and versions.IMAGES["kit"] not in text
    assert clusters.sizing_for("kind") == clusters.OVERLAYS["local-kind"]


def test_validation_catches_a_broken_step(plan):
    broken = deploy.build_plan()
    del broken.step("rayjob").documents[0]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
    problems = deploy.validate(broken)
    assert len(problems) == 1 and "kueue.x-k8s.io/queue-name" in problems[0].path
    assert "RayJob/kit-ray-train" in str(problems[0]) and "missing label" in problems[0].message


def test_the_training_resources_carry_the_same_config(plan):
    rayjob = deploy.train_config_of(plan.step("rayjob").documents[0])
    trainjob = deploy.train_config_of(plan.step("trainjob").documents[0])
    assert (rayjob.hidden, rayjob.epochs) == (trainjob.hidden, trainjob.epochs) == (16, 1)
    with pytest.raises(ValueError, match="InferenceService carries no training config"):
        deploy.train_config_of(plan.step("inferenceservice").documents[0])


def test_write_puts_each_step_in_its_file(plan, tmp_path):
    paths = deploy.write(plan, tmp_path, instances=[[0.0] * 64])
    assert [p.name for p in paths] == [s.file_name for s in plan.steps] + ["request.json"]
    for step in plan.steps:
        assert list(yaml.safe_load_all((tmp_path / step.file_name).read_text())) == step.documents
    assert json.loads((tmp_path / "request.json").read_text()) == {"instances": [[0.0] * 64]}


def test_commands_apply_wait_query_and_delete_in_order(plan, tmp_path):
    lines = deploy.commands(plan, tmp_path)
    applies = [line for line in lines if line.startswith("kubectl apply --server-side")]
    assert [line.rsplit("/", 1)[-1] for line in applies] == [s.file_name for s in plan.steps]
    waits = [line for line in lines if line.startswith("python -m kit cluster wait")]
    assert [line.split()[5:7] for line in waits] == [list(w) for s in plan.steps for w in s.waits]
    assert any("svc/kit-digits-serve-svc 8000:8000" in line for line in lines)
    assert any("svc/digits-predictor 8080:80" in line for line in lines)  # no root needed for port 8080
    curls = [line for line in lines if line.startswith("curl")]
    assert len(curls) == 2 and all(line.endswith("/v1/models/digits:predict") for line in curls)
    deletes = [line for line in lines if line.startswith("kubectl delete")]
    assert [line.rsplit("/", 1)[-1] for line in deletes] == [s.file_name for s in reversed(plan.workloads())]
    only = deploy.commands(plan, tmp_path, step="trainjob")
    assert len(only) == 3 and "kubectl delete" not in "\n".join(only)


def test_deploy_applies_then_waits_for_each_resource(plan, tmp_path):
    calls = []
    step = plan.step("rayservice")
    results = deploy.deploy(step, "kit", apply=lambda docs: calls.append(("apply", docs)) or "applied",
                            wait=lambda kind, name, ns, **kw: calls.append(("wait", kind, name, ns, kw)) or {"ok": 1},
                            diagnostics=tmp_path)
    assert results == [{"ok": 1}]
    assert calls[0] == ("apply", step.documents)
    assert calls[1] == ("wait", "RayService", "kit-digits", "kit",
                        {"timeout": step.timeout_s, "diagnostics_dir": tmp_path})


def test_a_failed_wait_stops_the_deployment(plan):
    def wait(kind, name, namespace, **kw):
        raise TimeoutError(f"{kind}/{name} not ready: image pull back-off")

    with pytest.raises(TimeoutError, match="RayJob/kit-ray-train not ready"):
        deploy.deploy(plan.step("rayjob"), apply=lambda docs: "", wait=wait)


def test_cleanup_deletes_workloads_newest_first_and_keeps_the_platform(plan):
    deleted = []
    assert deploy.cleanup(plan, delete=lambda docs: deleted.append(docs[0]["kind"]) or "") == STEPS[:0:-1]
    assert deleted == ["InferenceService", "RayService", "TrainJob", "RayJob", "PersistentVolumeClaim"]  # storage


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(500, text="Internal Server Error"), "answered HTTP 500: Internal Server Error"),
    (httpx.Response(200, json={"labels": [1]}), "answered without 'predictions'"),
    (httpx.Response(200, text="<html>"), "answered without 'predictions'"),
])
def test_predict_says_what_came_back(monkeypatch, response, message):
    monkeypatch.setattr(httpx, "post", lambda *a, **kw: response)
    with pytest.raises(deploy.PredictError, match=message):
        deploy.predict("http://127.0.0.1:1", [[0.0] * 64])


def test_predict_names_an_unreachable_server():
    with pytest.raises(deploy.PredictError, match=re.escape("POST http://127.0.0.1:9/v1/models/digits:predict failed")):
        deploy.predict("http://127.0.0.1:9", [[0.0] * 64], timeout=2)


def test_localize_moves_only_paths_under_a_mount():
    assert deploy._localize(["--out", "/models/digits", "/modelsX", "/models"], {"/models": "/tmp/m"}) == [
        "--out", "/tmp/m/digits", "/modelsX", "/tmp/m"]


def test_rehearsal_refuses_what_it_cannot_run(plan):
    with pytest.raises(ValueError, match="no rehearsal for RayJob"):
        deploy.rehearse_job(plan.step("rayjob").documents[0], {})
    trainjob = json.loads(json.dumps(plan.step("trainjob").documents[0]))
    trainjob["spec"]["trainer"]["numNodes"] = 2
    with pytest.raises(ValueError, match="a rehearsal runs one node"):
        deploy.rehearse_training(trainjob)
    edited = json.loads(json.dumps(plan.step("trainjob").documents[0]))
    edited["spec"]["trainer"]["numProcPerNode"] = 2  # the config inside still says workers=1
    with pytest.raises(ConfigError, match=r"numProcPerNode=2 .* workers=1"):
        deploy.rehearse_training(edited)


def plan_epochs(plan) -> int:
    """The epochs the plan's model Job trains for (its --config argument)."""
    return json.loads(plan.step("storage").documents[-1]["spec"]["template"]["spec"]["containers"][0]["command"][-1])[
        "epochs"]


def test_rehearsed_model_job_and_server_answer_like_the_pods(plan, tmp_path):
    """The model Job's and the InferenceService's own commands, run here: the server loads what the Job wrote."""
    output = deploy.rehearse_job(plan.step("storage").documents[-1], {"/models": str(tmp_path)})
    assert output.splitlines()[-1].endswith("serving artifact in " + str(tmp_path / "digits"))
    assert artifact.verify(tmp_path / "digits").config.epochs == plan_epochs(plan)
    instances = predictor.sample_instances(3)
    with deploy.rehearse_server(plan.step("inferenceservice").documents[0], tmp_path / "digits") as server:
        predictions = deploy.predict(server.url, instances)
        assert server.url.startswith("http://127.0.0.1:")
    expected = predictor.Predictor(tmp_path / "digits").predict(instances)
    assert predictions == expected


def test_a_failing_job_command_reports_its_output(plan, tmp_path):
    job = json.loads(json.dumps(plan.step("storage").documents[-1]))
    job["spec"]["template"]["spec"]["containers"][0]["command"][-1] = '{"epochs": 0}'
    with pytest.raises(RuntimeError, match=r"(?s)exited with 2:.*TrainConfig.epochs: must be an integer > 0, got 0"):
        deploy.rehearse_job(job, {"/models": str(tmp_path)})
    assert not (tmp_path / "digits").exists()


def test_cluster_commands_are_valid_kit_cli(plan, tmp_path, capsys):
    wait = next(line for line in deploy.commands(plan, tmp_path) if line.startswith("python -m kit cluster wait"))
    assert main([*wait.split()[3:5], "--help"]) == 0
    assert "--diagnostics" in capsys.readouterr().out


@pytest.fixture
def no_cluster(monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")


def test_cli_plan_writes_the_files_and_prints_the_commands(tmp_path, no_cluster, capsys):
    assert main(["deploy", "plan", "--profile", "kind", "--out", str(tmp_path), "--step", "inferenceservice"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "05-inferenceservice.yaml").exists() and (tmp_path / "request.json").exists()
    assert "svc/digits-predictor 8080:80" in out and "03-trainjob.yaml" not in out.split("commands")[1]


def test_cli_plan_json_lists_steps_files_and_commands(tmp_path, no_cluster, capsys):
    assert main(["deploy", "plan", "--json", "--profile", "kind", "--out", str(tmp_path),
                 "--step", "rayjob", "--step", "inferenceservice"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["problems"] == [] and report["namespace"] == "kit"
    assert [s["name"] for s in report["steps"]] == ["rayjob", "inferenceservice"]
    assert report["steps"][0]["waits"] == ["RayJob/kit-ray-train"]
    assert sorted(os.path.basename(f) for f in report["files"]) == sorted(
        [*(p.name for p in tmp_path.glob("*.yaml")), "request.json"])
    assert any("svc/digits-predictor" in line for line in report["steps"][1]["commands"])


def test_cli_plan_refuses_an_invalid_plan_with_its_problems(tmp_path, no_cluster, monkeypatch, capsys):
    from kit.k8s.validation.problems import Problem

    broken = Problem("stage-09 plan", "RayJob/kit-ray-train", "metadata.labels", "no queue label")
    monkeypatch.setattr(deploy, "validate", lambda plan: [broken])
    assert main(["deploy", "plan", "--profile", "kind", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "the plan has 1 problem(s)" in captured.err and "no queue label" in captured.err
    assert "Fix:" in captured.err and "Traceback" not in captured.err and not list(tmp_path.iterdir())
    assert main(["deploy", "plan", "--json", "--profile", "kind", "--out", str(tmp_path)]) == 1
    assert json.loads(capsys.readouterr().out)["problems"][0]["message"] == "no queue label"


def test_cli_plan_prints_requests_against_capacity_and_refuses_a_plan_that_does_not_fit(tmp_path, no_cluster,
                                                                                         capsys):
    assert main(["deploy", "plan", "--profile", "kind", "--out", str(tmp_path), "--step", "storage"]) == 0
    out = capsys.readouterr().out
    assert "capacity                         4 cpu, 8.00 GiB" in out and ": fits" in out
    small = tmp_path / "small"
    assert main(["deploy", "plan", "--profile", "kind", "--capacity", "3cpu,8Gi", "--out", str(small)]) == 1
    err = capsys.readouterr().err
    assert "the plan needs more cpu than the cluster has left" in err and "Fix:" in err and "Traceback" not in err
    assert not small.exists()  # nothing written
    assert main(["deploy", "plan", "--json", "--profile", "kind", "--capacity", "3cpu,8Gi", "--out", str(small)]) == 1
    fit = json.loads(capsys.readouterr().out)["fit"]
    assert fit["fits"] is False and fit["short"] == ["cpu"] and fit["capacity"] == {"cpu": "3", "memory": "8Gi",
                                                                                   "gpus": 0}
    assert main(["deploy", "plan", "--profile", "cluster", "--capacity", "four", "--out", str(small)]) == 1
    assert "capacity part 'four'" in capsys.readouterr().err


def test_cli_plan_sets_the_storage_class_of_the_shared_volumes(tmp_path, no_cluster, capsys):
    assert main(["deploy", "plan", "--profile", "cluster", "--storage-class", "efs-sc", "--out", str(tmp_path)]) == 0
    assert "capacity" not in capsys.readouterr().out  # nothing to compare a real cluster with unless given
    claims = [d for d in yaml.safe_load_all((tmp_path / "01-storage.yaml").read_text())
              if d["kind"] == "PersistentVolumeClaim"]
    assert [(c["spec"]["storageClassName"], c["spec"]["accessModes"]) for c in claims] == \
        [("efs-sc", ["ReadWriteMany"])] * 2


def test_cli_names_a_wrong_step_and_an_unreachable_cluster_without_a_traceback(no_cluster, capsys):
    assert main(["deploy", "plan", "--step", "nope"]) == 2
    assert "no step 'nope'" in capsys.readouterr().err
    assert main(["deploy", "apply", "--profile", "kind", "--step", "trainjob"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "failed" in err and "Fix:" in err
