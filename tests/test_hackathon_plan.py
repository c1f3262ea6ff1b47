"""kit hackathon init/plan/apply/delete: event files, the plan's strict validation, JupyterHub values, kubectl."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import pytest
import yaml

from kit.cli import main as cli
from kit.deploy import sizing
from kit.hackathon import event as ev
from kit.hackathon import jupyterhub, plan, teams
from kit.k8s.builders import core


@pytest.fixture(scope="module")
def event_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("event") / "event.yaml"
    assert cli(["hackathon", "init", "--teams", "3", "--out", str(path)]) == 0
    data = yaml.safe_load(path.read_text())
    data["teams"][0]["members"] = ["alice@example.org", "ann"]
    data["teams"][1]["members"] = ["bob@example.org"]
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def gpu_event(event_file):
    data = yaml.safe_load(event_file.read_text())
    data["resources"] = {"cpu": "4", "memory": "16Gi", "gpu": 1}
    return ev.from_mapping(data, "gpu test")


def test_init_shares_what_kind_leaves_between_the_teams_and_the_scorer(event_file):
    event = ev.Event.load(event_file)
    assert event.team_names == ["team-01", "team-02", "team-03"]
    servers = ev.Resources("100m", "512Mi").requests * 6  # three teams of two (init's default), one server each
    left = sizing.budget(sizing.DOCKER_DESKTOP, kind=True).available - servers
    share = event.resources.requests
    assert share == ev.team_share(3, sizing.DOCKER_DESKTOP, kind=True, members=2).requests
    assert (share * 4).fits(left) and not (share * 4 + ev.Resources("50m", "64Mi").requests * 4).fits(left)
    assert set(event.scoring) == {"accuracy", "latency", "cost"} and sum(event.scoring.values()) > 0


def test_init_refuses_to_overwrite_and_a_cluster_too_small_for_the_teams(event_file, capsys):
    assert cli(["hackathon", "init", "--out", str(event_file)]) == 1
    assert "pass --force" in capsys.readouterr().err
    with pytest.raises(ev.EventError, match="nothing for 40 teams"):
        ev.team_share(40, sizing.DOCKER_DESKTOP, kind=True)
    with pytest.raises(ev.EventError, match="12 notebook servers take"):
        ev.team_share(4, sizing.DOCKER_DESKTOP, kind=True, members=3)
    gpu_pool = ev.team_share(8, sizing.parse_capacity("64cpu,256Gi,8gpu"), kind=False, members=4)
    assert gpu_pool.gpu == 1  # GPUs go to the teams, not to the scorer


def test_plan_writes_files_that_validate_strictly(event_file, tmp_path, capsys):
    from kit.k8s.validation.validate import validate_paths

    assert cli(["hackathon", "plan", "--event", str(event_file), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "isolation: checked (3 teams" in out and "validation:" in out
    names = sorted(p.name for p in (tmp_path / plan.MANIFESTS).iterdir())
    assert names == ["shared.yaml", "team-01.yaml", "team-02.yaml", "team-03.yaml"]
    assert validate_paths([tmp_path / plan.MANIFESTS]) == []
    text = (tmp_path / plan.VALUES_FILE).read_text()
    values = yaml.safe_load(text)
    assert jupyterhub.check(values) == [] and values == jupyterhub.values(ev.Event.load(event_file))
    assert "&id" not in text and "kit-team-namespaces: |" in text  # readable: no anchors, the hook as a block


def test_each_team_gets_its_namespace_quota_policies_rbac_and_queues(event_file):
    event = ev.Event.load(event_file)
    built = plan.build(event)
    for team in event.teams:
        docs = built.teams[team.name]
        kinds = sorted({d["kind"] for d in docs})
        assert kinds == ["ClusterQueue", "LimitRange", "LocalQueue", "Namespace", "NetworkPolicy",
                         "PersistentVolumeClaim", "ResourceQuota", "Role", "RoleBinding", "ServiceAccount"]
        claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")  # stage 11 publishes models there
        assert claim["metadata"]["name"] == "kit-models" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
        labels = docs[0]["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == teams.POD_SECURITY_VERSION
        assert all(d["metadata"].get("namespace") == team.name for d in docs if d["kind"] not in (
            "Namespace", "ClusterQueue"))
        deny = next(d for d in docs if d["metadata"]["name"] == "default-deny")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        cq = next(d for d in docs if d["kind"] == "ClusterQueue")
        assert cq["spec"]["cohortName"] == event.name and cq["spec"]["fairSharing"] == {"weight": "1"}
        cpu = cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]
        assert cpu["nominalQuota"] == cpu["borrowingLimit"] == event.resources.cpu
        binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "kit-learner")
        assert {s["name"] for s in binding["subjects"]} == {teams.TEAM_ACCOUNT, *team.members}
    shared_kinds = [d["kind"] for d in built.shared]
    assert shared_kinds.count("Cohort") == 1 and "ClusterRoleBinding" in shared_kinds  # the hub's, not a team's
    priorities = {d["metadata"]["name"]: d["value"] for d in built.shared if d["kind"] == "WorkloadPriorityClass"}
    assert priorities[teams.SCORING_PRIORITY] > priorities[teams.TEAM_PRIORITY]


def test_strict_validation_catches_a_broken_plan(event_file):
    built = plan.build(ev.Event.load(event_file))
    cq = next(d for d in built.teams["team-02"] if d["kind"] == "ClusterQueue")
    cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["lendingLimit"] = "64"
    deny = next(d for d in built.teams["team-03"] if d["metadata"]["name"] == "default-deny")
    deny["spec"]["policyType"] = deny["spec"].pop("policyTypes")
    checked = plan.check(built)
    assert not checked.ok
    text = "\n".join(checked.problems)
    assert "ClusterQueue/team-02" in text and "lendingLimit" in text
    assert "NetworkPolicy/default-deny: spec.policyType: unknown field" in text


def _bad(data, key, value):
    data = copy.deepcopy(data)
    parent = data
    parts = key.split(".")
    for part in parts[:-1]:
        parent = parent[int(part)] if part.isdigit() else parent[part]
    parent[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return data


@pytest.mark.parametrize(("key", "value", "message"), [
    ("colour", "blue", "unknown key(s) colour in the event file"),
    ("resources.gpus", 1, "unknown key(s) gpus in resources"),
    ("teams.0.name", "Team A", "teams[0].name 'Team A' is not a DNS-1123 label"),
    ("teams.1.name", "team-01", "team 'team-01' appears twice"),
    ("teams.0.name", "kube-system", "is a system or operator namespace"),
    ("teams.1.members", ["ann"], "'ann' is in team 'team-01' and team 'team-02'"),
    ("resources.cpu", "-1", "resources.cpu is '-1'"),
    ("resources.memory", "lots", "resources: "),
    ("scoring", {"accuracy": 0, "latency": 0, "cost": 0}, "the scoring weights sum to 0"),
    ("scoring.latency", -0.5, "scoring.latency is negative"),
    ("end", "2020-01-01T00:00:00+00:00", "is not after start"),
    ("start", "next tuesday", "start 'next tuesday' is not an ISO date-time"),
    ("scorer_namespace", "team-02", "scorer_namespace 'team-02' is also a team's name"),
    ("jupyterhub.cull_idle_seconds", "soon", "jupyterhub.cull_idle_seconds"),
    ("teams", [], "teams must be a non-empty list"),
    ("jupyterhub.memory_guarantee", "64Gi", "a notebook server's guarantee (100m cpu, 64Gi) is more than"),
    ("api_server_cidr", "the-api-server", "api_server_cidr 'the-api-server' is not an address range"),
])
def test_a_bad_event_file_names_the_field_and_the_fix(event_file, tmp_path, capsys, key, value, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_bad(yaml.safe_load(event_file.read_text()), key, value)))
    with pytest.raises(ev.EventError) as caught:
        ev.Event.load(path)
    assert message in caught.value.message and caught.value.fix
    assert cli(["hackathon", "plan", "--event", str(path), "--out", str(tmp_path / "plan")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Fix:" in err and "Traceback" not in err
    assert not (tmp_path / "plan").exists()


def test_a_missing_event_file_says_how_to_write_one(tmp_path, capsys):
    assert cli(["hackathon", "plan", "--event", str(tmp_path / "none.yaml")]) == 1
    assert "python -m kit hackathon init" in capsys.readouterr().err


def test_jupyterhub_values_put_each_user_in_their_team_with_cpu_and_gpu_profiles(gpu_event):
    values = jupyterhub.values(gpu_event)
    assert jupyterhub.check(values) == []
    assert values["custom"]["kit"]["teamNamespaces"] == {"alice@example.org": "team-01", "ann": "team-01",
                                                         "bob@example.org": "team-02"}
    single = values["singleuser"]
    assert single["extraEnv"]["KIT_PROFILE"] == "cluster"
    assert single["storage"]["extraVolumes"][0]["persistentVolumeClaim"]["claimName"] == "kit-models"
    assert single["storage"]["extraVolumeMounts"][0]["mountPath"] == "/models"
    assert f"{single['image']['name']}:{single['image']['tag']}" == gpu_event.jupyterhub.image
    assert [p["slug"] for p in single["profileList"]] == ["cpu", "gpu"]
    assert single["profileList"][1]["kubespawner_override"]["extra_resource_limits"] == {core.GPU_RESOURCE: "1"}
    assert single["cpu"] == {"guarantee": 0.1, "limit": 4.0} and single["memory"]["limit"] == "16384M"
    assert values["cull"]["enabled"] and values["cull"]["timeout"] == gpu_event.jupyterhub.cull_idle_seconds
    assert "c.KubeSpawner.pre_spawn_hook" in values["hub"]["extraConfig"]["kit-team-namespaces"]
    compile(values["hub"]["extraConfig"]["kit-team-namespaces"], "extraConfig", "exec")  # valid Python
    pods = jupyterhub.implied_pods(values)
    assert len(pods) == 2 and all(p["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
                                  for p in pods)


def test_a_gpu_event_plans_a_gpu_flavor_and_validates(gpu_event):
    built = plan.build(gpu_event)
    checked = plan.check(built)
    assert checked.ok, checked.explain()
    flavors = {d["metadata"]["name"] for d in built.shared if d["kind"] == "ResourceFlavor"}
    assert flavors == {"default-flavor", teams.GPU_FLAVOR}
    scorer_cq = next(d for d in built.shared if d["kind"] == "ClusterQueue")
    assert [g["coveredResources"] for g in scorer_cq["spec"]["resourceGroups"]] == [["cpu", "memory"]]


def test_cpu_only_events_get_no_gpu_profile(event_file):
    values = jupyterhub.values(ev.Event.load(event_file))
    assert [p["slug"] for p in values["singleuser"]["profileList"]] == ["cpu"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda v: v["singleuser"].update(bogus=True), "singleuser: Additional properties are not allowed ('bogus'"),
    (lambda v: v["singleuser"]["cpu"].update(limit="two"), "singleuser.cpu.limit: 'two' is not of type"),
    (lambda v: v["cull"].update(timeout="1h"), "cull.timeout"),
    (lambda v: v["singleuser"]["cloudMetadata"].update(blockWithIptables=True), "runAsUser must not be 0"),
    (lambda v: v["hub"]["config"]["KubeSpawner"]["container_security_context"].pop("capabilities"), "ALL"),
])
def test_a_broken_value_fails(event_file, change, expected):
    values = jupyterhub.values(ev.Event.load(event_file))
    change(values)
    found = jupyterhub.check(values)
    assert any(expected in line for line in found), found


def test_missing_chart_files_name_the_file_and_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(jupyterhub.CHART_DIR_ENV, str(tmp_path))
    (tmp_path / "values.yaml").write_text("{}\n")
    with pytest.raises(jupyterhub.ChartNotFoundError, match=r"values\.schema\.yaml") as caught:
        jupyterhub.chart_dir()
    assert "helm pull jupyterhub" in caught.value.fix and "--version 4.4.0" in caught.value.fix


def test_helm_merge_replaces_lists_merges_maps_and_null_removes():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert jupyterhub.merge(base, {"a": {"c": [3]}, "d": None}) == {"a": {"b": 1, "c": [3]}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_apply_and_delete_without_a_cluster_fail_with_the_fix(event_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "plan"
    assert cli(["hackathon", "plan", "--event", str(event_file), "--out", str(out)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for action in ("apply", "delete"):
        assert cli(["hackathon", action, "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert f"no cluster to {action} the plan on" in err and "Fix: point kubectl" in err
    assert cli(["hackathon", "apply", "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("kubectl apply --server-side") and lines[0].endswith("manifests/shared.yaml")
    assert cli(["hackathon", "delete", "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("kubectl delete --ignore-not-found") and lines[-1].endswith("shared.yaml")
    assert cli(["hackathon", "apply", "--out", str(tmp_path / "elsewhere")]) == 1
    assert "no plan in" in capsys.readouterr().err


def test_the_hackathon_command_lists_its_subcommands(capsys):
    assert cli(["hackathon"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in ("init", "plan", "apply", "delete"))
    assert cli(["hackathon", "frobnicate"]) == 2


def test_written_files_read_back_as_the_same_event(event_file, tmp_path):
    event = ev.Event.load(event_file)
    assert ev.Event.load(event.dump(tmp_path / "again.yaml")) == event
    assert Path(tmp_path / "again.yaml").read_text().startswith("# A hackathon event file")


def test_the_guides_sizing_table_is_what_init_computes():
    """Every row of HACKATHON.md's sizing table: the `init` flags it shows give the share it shows."""
    guide = (Path(__file__).resolve().parent.parent / "HACKATHON.md").read_text()
    table = guide.split("<!-- sizing table: rows checked by tests/test_hackathon_plan.py -->")[1]
    rows = [line for line in table.split("<!-- end of sizing table -->")[0].splitlines()
            if line.startswith("| ") and "`--teams" in line]
    assert len(rows) >= 5
    parser = argparse.ArgumentParser()
    for flag, kind in (("--teams", int), ("--members", int), ("--capacity", str)):
        parser.add_argument(flag, type=kind)
    parser.add_argument("--cloud", action="store_true")
    for row in rows:
        _, flags, share = [cell.strip() for cell in row.strip("|").split("|")]
        args = parser.parse_args(flags.strip("`").split())
        capacity = sizing.parse_capacity(args.capacity) if args.capacity else sizing.DOCKER_DESKTOP
        got = ev.team_share(args.teams, capacity, kind=not args.cloud, members=args.members)
        assert share == f"{got.cpu} cpu, {got.memory} memory, {got.gpu} gpu", row



def test_plan_refuses_to_write_a_plan_that_breaks_isolation(event_file, tmp_path, monkeypatch, capsys):
    built = plan.build

    def leaky(event):
        result = built(event)
        result.teams["team-01"] = [d for d in result.teams["team-01"] if d["kind"] != "NetworkPolicy"]
        return result

    monkeypatch.setattr(plan, "build", leaky)
    assert cli(["hackathon", "plan", "--event", str(event_file), "--out", str(tmp_path / "plan")]) == 1
    err = capsys.readouterr().err
    assert "isolation:\n" in err and "can connect to team-01/" in err and "nothing written" in err
    assert not (tmp_path / "plan").exists()
