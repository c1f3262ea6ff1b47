"""``python -m kit advise``: the worked examples' recommendations and reasons, their manifests, the contradictions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from kit.advise import examples, figures, manifests, report, rules, workload
from kit.advise.rules import Contradiction, Plan
from kit.advise.workload import WorkloadError, from_mapping
from kit.cli import main as cli


@pytest.fixture(scope="module")
def readme_figures(tmp_path_factory) -> dict[str, figures.Figure]:
    """The README's figures (no benchmark JSON in an empty directory): the same numbers on every machine."""
    return figures.measured(tmp_path_factory.mktemp("no-bench"))


@pytest.fixture(scope="module")
def plans(readme_figures) -> dict[str, Plan]:
    return {name: rules.advise(examples.example(name), readme_figures) for name in examples.EXAMPLES}


@pytest.fixture(scope="module")
def rendered(plans) -> dict[str, dict[str, list[dict]]]:
    """Each example's manifests, validated strictly and checked against the nodes (raises otherwise)."""
    files = {name: manifests.render(plan) for name, plan in plans.items()}
    for name, plan in plans.items():
        manifests.check(files[name], plan)
    return files


def _only(plan: Plan, topic: str) -> rules.Recommendation:
    found = plan.topic(topic)
    assert len(found) == 1, [r.choice for r in found]
    return found[0]


def _docs(files: dict[str, list[dict]], kind: str) -> list[dict]:
    return [d for docs in files.values() for d in docs if d["kind"] == kind]


def test_at_least_eight_examples_are_listed():
    assert len(examples.EXAMPLES) >= 8
    listing = examples.listing()
    for name in ("laptop-learner", "binder-user", "hackathon-10-teams", "single-gpu-finetune",
                 "multi-node-gpu-training", "latency-critical-serving", "nightly-batch-inference",
                 "small-llm-service"):
        assert name in listing


def test_every_recommendation_has_a_reason_and_a_source(plans):
    for name, plan in plans.items():
        assert plan.recommendations, name
        for r in plan.recommendations:
            assert r.choice and len(r.reason) > 20 and r.source, (name, r)
        assert plan.estimate["label"].startswith("ESTIMATE") and plan.estimate["assumptions"], name


def test_laptop_and_binder_train_in_process_and_write_nothing(plans, rendered):
    for name in ("laptop-learner", "binder-user"):
        plan = plans[name]
        launcher = _only(plan, "launcher")
        assert plan.launcher == "in-process" and "in-process" in launcher.choice
        assert "0.99x" in launcher.reason and "52.0 s for Ray Train" in launcher.reason  # the measured figures
        assert "a second worker does not pay" in launcher.reason
        assert "README.md Figures, Training" in launcher.source
        assert rendered[name] == {} and plan.estimate["usd"] == 0
        assert _only(plan, "queues").choice.startswith("none")
    binder = plans["binder-user"].workload
    assert (binder.node_cpus, binder.node_memory_gb) == (1.0, 2.0)  # Binder's container, cited in figures.BINDER


def test_hackathon_gets_a_cohort_of_ten_fair_queues(plans, rendered):
    plan, files = plans["hackathon-10-teams"], rendered["hackathon-10-teams"]
    assert plan.launcher == "rayjob" and "already uses Ray" in _only(plan, "launcher").reason
    # 32 CPUs less the operators' 1.2 (kit/deploy/sizing.py), shared by ten teams
    assert plan.team_quota.cpu_millis == (32_000 - 1_200) // 10
    queues = plan.topic("queues")
    assert "10 ClusterQueues" in queues[0].choice and "lent inside the cohort" in queues[0].reason
    assert "fair sharing" in queues[1].choice and "kueue.sigs.k8s.io/docs/concepts/fair_sharing" in queues[1].source
    cqs = _docs(files, "ClusterQueue")
    assert len(cqs) == 10 and {cq["spec"]["cohortName"] for cq in cqs} == {"hackathon"}
    assert all(cq["spec"]["fairSharing"] == {"weight": "1"} for cq in cqs)
    assert all(cq["spec"]["preemption"]["reclaimWithinCohort"] == "Any" for cq in cqs)
    cpu = cqs[0]["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]
    assert cpu == {"name": "cpu", "nominalQuota": "3080m", "borrowingLimit": "3080m"}
    assert [c["metadata"]["name"] for c in _docs(files, "Cohort")] == ["hackathon"]
    assert len(_docs(files, "RayJob")) == 10 and len(_docs(files, "Namespace")) == 10
    assert all(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
               for ns in _docs(files, "Namespace"))


def test_single_gpu_finetune_is_one_trainjob_node_with_one_gpu(plans, rendered):
    plan = plans["single-gpu-finetune"]
    assert (plan.launcher, plan.nodes, plan.workers, plan.worker.gpus) == ("trainjob", 1, 1, 1)
    memory = _only(plan, "memory")
    assert "16.0 GB" in memory.choice and "fits" in memory.choice and "arxiv.org/abs/1910.02054" in memory.source
    (job,) = _docs(rendered["single-gpu-finetune"], "TrainJob")
    trainer = job["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (1, 1)
    assert trainer["resourcesPerNode"]["requests"]["nvidia.com/gpu"] == "1"
    assert _docs(rendered["single-gpu-finetune"], "ClusterTrainingRuntime")


def test_multi_node_gpu_training_gangs_four_nodes_of_eight(plans, rendered):
    plan = plans["multi-node-gpu-training"]
    assert (plan.launcher, plan.nodes, plan.workers) == ("trainjob", 4, 32)
    assert "admits all nodes at once" in _only(plan, "launcher").reason
    (job,) = _docs(rendered["multi-node-gpu-training"], "TrainJob")
    assert (job["spec"]["trainer"]["numNodes"], job["spec"]["trainer"]["numProcPerNode"]) == (4, 8)
    claims = _docs(rendered["multi-node-gpu-training"], "PersistentVolumeClaim")
    assert claims and all(c["spec"]["accessModes"] == ["ReadWriteMany"] for c in claims)
    assert all(c["spec"]["storageClassName"] == "efs-sc" for c in claims)
    storage = plan.topic("storage")
    assert "ReadWriteMany" in storage[0].choice and "object storage" in storage[1].choice
    assert plan.estimate["gpu_hours"] == 24 * 32


def test_latency_critical_serving_uses_kserve_replicas_from_the_measured_cost(plans, rendered, readme_figures):
    plan = plans["latency-critical-serving"]
    serving = _only(plan, "serving")
    assert plan.server == "kserve" and "batching cannot help" in serving.reason
    per_request = readme_figures["serve"]["ms_per_request"]["kserve v1"] + 0.044
    per_replica = 1e3 / per_request - math.log(20) / 0.050
    assert plan.replicas == math.ceil(500 / per_replica) == 5 and plan.max_replicas == 10
    assert "mu - ln 20 / p95" in _only(plan, "replicas").reason
    (isvc,) = _docs(rendered["latency-critical-serving"], "InferenceService")
    assert (isvc["spec"]["predictor"]["minReplicas"], isvc["spec"]["predictor"]["maxReplicas"]) == (5, 10)
    assert _docs(rendered["latency-critical-serving"], "Job")  # the model the servers wait for


def test_nightly_batch_inference_is_a_queued_job_sized_to_the_window(plans, rendered):
    plan = plans["nightly-batch-inference"]
    rec = _only(plan, "batch inference")
    # 20 M rows x 2 ms per row (32 ms per batch of 16) = 11.1 worker-hours, in a 2-hour window
    assert plan.batch_workers == 6 and "11.11 worker-hours" in rec.reason and "command is yours" in rec.reason
    assert plan.server == "batch-job" and "serving.yaml" not in rendered["nightly-batch-inference"]


def test_small_llm_service_points_to_stage_12_and_writes_no_server(plans, rendered):
    plan = plans["small-llm-service"]
    serving = _only(plan, "serving")
    assert plan.server == "llm" and "stage 12" in serving.choice and "LLMInferenceService" in serving.choice
    assert plan.replicas == 2 and plan.server_pod.gpus == 1
    files = rendered["small-llm-service"]
    assert "serving.yaml" not in files
    assert any(f["metadata"]["name"] == "gpu" for f in _docs(files, "ResourceFlavor"))


def test_the_cli_writes_manifests_that_validate(tmp_path, capsys):
    from kit.k8s.validation.validate import validate_paths

    assert cli(["advise", "--example", "single-gpu-finetune", "--out", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"]["launcher"] == "trainjob" and len(report["manifests"]) == 5
    assert validate_paths([tmp_path]) == []
    assert all(yaml.safe_load_all(Path(p).read_text()) for p in report["manifests"])


def test_the_cli_lists_examples_and_explains_usage(capsys):
    assert cli(["advise", "--example", "list"]) == 0
    assert "hackathon-10-teams" in capsys.readouterr().out
    assert cli(["advise"]) == 2
    assert cli(["advise", "--example", "laptop-learner", "--train-hours", "1"]) == 0
    assert "[launcher] in-process" in capsys.readouterr().out


# --------------------------------------------------------------------------- contradictions


def _cluster(**extra) -> workload.Workload:
    return from_mapping({"where": "cluster", "nodes": 2, "node_cpus": 8, "node_memory_gb": 32, **extra})


def test_a_gpu_only_need_on_a_cluster_without_gpus(readme_figures, capsys):
    with pytest.raises(Contradiction, match="requires a GPU, but cluster has none") as info:
        rules.advise(_cluster(requires_gpu=True, train_hours=1), readme_figures)
    assert "gpu-pool" in info.value.fix
    assert cli(["advise", "--where", "cluster", "--nodes", "2", "--node-cpus", "8", "--node-memory-gb", "32",
                "--requires-gpu", "--train-hours", "1"]) == 1
    assert "Fix: run it where GPUs are" in capsys.readouterr().err


def test_a_latency_target_below_one_replica_at_any_batch_size(readme_figures):
    with pytest.raises(Contradiction, match="below what one replica can do at any batch size") as info:
        rules.advise(_cluster(serve_rps=100, p95_ms=3), readme_figures)
    assert "raise p95_ms to at least 6" in info.value.fix
    with pytest.raises(Contradiction, match="with random arrivals"):  # above the floor, below ln(20) x service time
        rules.advise(_cluster(serve_rps=100, p95_ms=12), readme_figures)
    with pytest.raises(Contradiction, match="below one request's own time"):
        rules.advise(from_mapping({**examples.EXAMPLES["small-llm-service"][1], "p95_ms": 500}), readme_figures)


def test_quotas_that_do_not_fit_the_nodes(readme_figures):
    with pytest.raises(Contradiction, match=r"10 team quotas of 4 cpu.*cpu short") as info:
        rules.advise(_cluster(teams=10, team_cpus=4, train_hours=1), readme_figures)
    assert "at most 1.48 cpu" in info.value.fix  # (16 - 1.2) / 10
    server = _cluster(serve_rps=10, p95_ms=500, model_params="2B", model_ms=10, node_memory_gb=8)
    with pytest.raises(Contradiction, match=r"the server pod asks .* stay Pending"):
        rules.advise(server, readme_figures)
    with pytest.raises(Contradiction, match="more than all 32 GPUs hold"):
        rules.advise(from_mapping({**examples.EXAMPLES["multi-node-gpu-training"][1], "model_params": "400B"}),
                     readme_figures)


# --------------------------------------------------------------------------- the input and the figures


@pytest.mark.parametrize(("data", "field"), [
    ({"wher": "laptop"}, "wher"),
    ({"where": "moon"}, "where"),
    ({"where": "cluster", "nodes": 2}, "node_cpus"),
    ({"where": "cluster", "nodes": 1, "node_cpus": 4, "node_memory_gb": 8, "model_params": "7B", "serve_rps": 1,
      "p95_ms": 100}, "model_ms"),
    ({"model_params": "seven"}, "model_params"),
    ({"where": "binder", "gpus": 1, "gpu_memory_gb": 16}, "gpus"),
    ({"serve_rps": 10}, "p95_ms"),
    ({"teams": 0}, "teams"),
    ({"gpus": 2}, "gpu_memory_gb"),
])
def test_bad_input_names_the_field(data, field):
    with pytest.raises(WorkloadError) as info:
        from_mapping(data)
    assert info.value.field == field and info.value.fix


def test_counts_and_files(tmp_path):
    assert from_mapping({"model_params": "7B"}).params == 7e9
    assert from_mapping({"model_mb": 400}).params == 1e8
    assert from_mapping({}).params == workload.KIT_MODEL_PARAMS
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(examples.EXAMPLES["hackathon-10-teams"][1]))
    assert workload.load(path) == examples.example("hackathon-10-teams")


def test_figures_come_from_the_bench_json_when_present(tmp_path, readme_figures):
    from kit.bench import serve as bench

    assert "absent here" in readme_figures["serve"].source
    rows = {label: {"throughput_rps": 200.0} for label in (bench.KSERVE_V1,)}
    hops = {bench.BASELINE: 5.0, bench.ONE_HOP: 8.0, bench.TWO_HOP: 20.0, bench.HANDLE: 3.0}
    (tmp_path / "serve.json").write_text(json.dumps({
        "machine": {"cpus": 16, "gpus": []}, "rows": rows, "ms_per_request": hops,
        "forward_ms": {"digits": {"1": 0.05, "16": 0.1}}, "explanations": {"digits": {"measured": 0.9}}}))
    found = figures.measured(tmp_path)
    assert found["serve"]["ms_per_request"]["kserve v1"] == 5.0 and "build/bench/serve.json" in found["serve"].source
    assert "on 16 CPUs" in found["serve"].source
    assert "absent here" in found["train"].source  # no train.json: the README's figure, said so
    (tmp_path / "train.json").write_text(json.dumps({
        "machine": {"cpus": 8}, "startup_s": {"in-process": 1.0, "torchrun": 5.0, "ray-train": 20.0},
        "ratio_ray_over_torchrun": 1.05, "speedup_2_over_1": 1.8}))
    (tmp_path / "ray.json").write_text(json.dumps({"machine": {"cpus": 8}, "rows": {
        "first notebook: import + start Ray": {"median": 9.0}, "next notebook: import + attach": {"median": 1.5}}}))
    found = figures.measured(tmp_path)
    assert found["train"]["speedup_2_over_1"] == 1.8 and "build/bench/train.json" in found["train"].source
    assert found["ray"]["next notebook: import + attach"] == 1.5
    plan = rules.advise(from_mapping({"where": "laptop", "train_hours": 1}), found)
    launcher = _only(plan, "launcher")  # where two workers measured faster, the decision follows the measurement
    assert plan.launcher == "torchrun" and "1.80x" in launcher.reason and "saving outweighs" in launcher.reason
    short = rules.advise(from_mapping({"where": "laptop", "train_hours": 0.001}), found)
    assert short.launcher == "in-process"  # 1.6 s saved does not repay 4 s more start-up
    (tmp_path / "train.json").write_text("{}")  # a partial file: the README's figure again
    assert "absent here" in figures.measured(tmp_path)["train"].source


def test_the_estimate_states_its_prices(readme_figures):
    plan = rules.advise(examples.example("single-gpu-finetune"), readme_figures)
    assert plan.estimate["gpu_hours"] == 4 and any("not a quote" in a for a in plan.estimate["assumptions"])
    priced = rules.advise(from_mapping({**examples.EXAMPLES["single-gpu-finetune"][1], "usd_per_gpu_hour": 2}),
                          readme_figures)
    assert priced.estimate["usd"] < plan.estimate["usd"] and any("given" in a for a in priced.estimate["assumptions"])


def test_servers_that_outgrow_a_laptop_cluster(readme_figures):
    kind = from_mapping({"where": "kind", "serve_rps": 20, "p95_ms": 200})
    with pytest.raises(Contradiction, match=r"4 replicas at the autoscaler's ceiling .*\(cpu short\)") as info:
        rules.advise(kind, readme_figures)  # two replicas of 2 cores at least, on Docker Desktop's 4 CPUs
    assert "Docker Desktop" in info.value.fix
    plan = rules.advise(from_mapping({"where": "kind", "train_hours": 1}), readme_figures)
    assert plan.launcher == "trainjob" and plan.worker.cpu_millis == plan.team_quota.cpu_millis  # no Ray head


def test_local_ray_is_shared_on_a_laptop(readme_figures):
    plan = rules.advise(from_mapping({"where": "laptop", "train_hours": 0.1, "uses_ray": True}), readme_figures)
    ray = _only(plan, "ray")
    assert "14.3 s" in ray.reason and "2.1 s" in ray.reason and "Local Ray start-up" in ray.source
    assert "ray" in report.cited(plan) and "serve" not in report.cited(plan)


def test_the_hackathon_estimate_counts_every_team(plans):
    estimate = plans["hackathon-10-teams"].estimate
    assert estimate["cpu_core_hours"] == 2 * 2 * 10  # 2 h x one 2-core worker x 10 teams
    assert "each of 10 teams" in estimate["covers"] and estimate["energy_kwh"] > 0


@pytest.mark.parametrize(("gpus", "uses_ray", "launcher", "why"), [
    (1, False, "in-process", "without torchrun's start-up (11.8 s)"),
    (2, False, "torchrun", "one process per GPU"),
    (4, True, "ray-train", "52.0 s start-up is the whole price"),
])
def test_a_workstation_picks_its_launcher_by_gpus_and_ray(gpus, uses_ray, launcher, why, readme_figures):
    w = from_mapping({"where": "workstation", "node_cpus": 16, "node_memory_gb": 64, "gpus": gpus,
                      "gpu_memory_gb": 24, "train_hours": 1, "uses_ray": uses_ray})
    plan = rules.advise(w, readme_figures)
    assert plan.launcher == launcher and why in _only(plan, "launcher").reason and plan.workers == gpus
    assert manifests.render(plan) == {}
