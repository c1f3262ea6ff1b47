"""The doctor: each check says what is wrong and how to fix it; exit status reflects blockers."""

from __future__ import annotations

import json
import socket
import subprocess

from kit import versions
from kit.cli import main
from kit.machine import doctor, resources


def test_python_outside_the_supported_range_blocks():
    assert doctor.check_python((3, 11)).status == doctor.OK
    for old_or_new in ((3, 9), (3, 13)):
        check = doctor.check_python(old_or_new)
        assert check.status == doctor.FAIL and "make lab PYTHON=" in check.fix


def test_package_mismatch_and_missing_are_named_with_a_fix():
    fake = dict(versions.PYTHON_PINS, ray="2.9.0")
    fake.pop("papermill")
    checks = doctor.check_packages(lambda name: fake.get(name))
    by_name = {c.name: c for c in checks}
    assert by_name["packages"].status == doctor.FAIL
    assert "2.9.0 installed, the kit is pinned to 2.60.0" in by_name["package ray"].detail
    assert "ray[train,tune,serve]==2.60.0" in by_name["package ray"].fix
    assert by_name["package papermill"].detail.startswith("missing")


def test_local_version_suffix_is_accepted():
    checks = doctor.check_packages(lambda name: "2.13.0+cpu" if name == "torch" else versions.PYTHON_PINS[name])
    assert [c.status for c in checks] == [doctor.OK]


def test_small_binder_pod_is_reported():
    binder = resources.Resources(
        cpus=0.5, memory_bytes=1 * resources.GiB, host_cpus=64, host_memory_bytes=256 * resources.GiB,
        gpus=0, gpu_names=(), cpu_source="cgroup CPU quota", memory_source="cgroup memory limit",
    )
    cpu, memory, gpus = doctor.check_resources(binder)
    assert cpu.status == doctor.WARN and "host has 64" in cpu.detail
    assert memory.status == doctor.FAIL and "cgroup memory limit" in memory.detail
    assert gpus.status == doctor.INFO


def test_port_in_use_is_detected_with_a_real_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert doctor.port_in_use(port)
    assert not doctor.port_in_use(port)
    checks = doctor.check_ports(in_use=lambda p: p == versions.PORTS["ray-dashboard"])
    busy = [c for c in checks if c.status == doctor.WARN]
    assert len(busy) == 1 and "8265" in busy[0].name and "lsof -i :8265" in busy[0].fix


def test_ray_auth_warnings(monkeypatch, tmp_path):
    token = tmp_path / "token"
    token.write_text("x")
    token.chmod(0o644)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    check = doctor.check_ray_auth()
    assert check.status == doctor.WARN and "readable by other users" in check.detail
    token.chmod(0o600)
    assert doctor.check_ray_auth().status == doctor.OK
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert doctor.check_ray_auth().status == doctor.WARN


def test_no_kubeconfig_means_local_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    [check] = doctor.check_cluster()
    assert check.status == doctor.INFO and "local profile will be used" in check.detail


def test_unreachable_cluster_is_reported_quickly(monkeypatch, tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: me, user: {token: not-a-secret}}]
contexts: [{name: kind-gone, context: {cluster: gone, user: me}}]
current-context: kind-gone
"""
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    [check] = doctor.check_cluster(timeout=2)
    assert check.status == doctor.INFO
    assert "'kind-gone' is not reachable" in check.detail and "local profile" in check.detail


def test_command_runs_the_real_checks_and_reports_json(capsys):
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if report["ready"] else 1)
    assert {c["name"] for c in report["checks"]} >= {"python", "packages", "cpus", "memory", "ray token auth"}
    assert report["resources"]["cpu_slots"] >= 1


def test_command_exit_status_follows_blocking_checks(monkeypatch, capsys):
    warning = doctor.Check("port 8265 (ray-dashboard)", doctor.WARN, "already in use", "stop it")
    monkeypatch.setattr(doctor, "run_checks", lambda: [warning])
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "already in use\n      fix: stop it" in out and "Ready: nothing blocks the curriculum (1 warning(s))" in out

    blocker = doctor.Check("memory", doctor.FAIL, "0.5 GiB usable", "ask for more")
    monkeypatch.setattr(doctor, "run_checks", lambda: [warning, blocker])
    assert main(["doctor"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("1 problem(s) block the curriculum: fix them, then re-run "
                                                     "the doctor.")
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ready"] is False
    assert [(c["name"], c["status"], c["fix"]) for c in report["checks"]] == [
        ("port 8265 (ray-dashboard)", "warn", "stop it"), ("memory", "fail", "ask for more")]


# --- the kind lane: what `make test-cluster` needs -------------------------------------


def _lane(tools: set[str], answers: dict[str, tuple[int, str]]):
    def run(command, **kwargs):
        code, out = answers.get(command[0], (0, ""))
        return subprocess.CompletedProcess(command, code, out, "")

    return doctor.check_kind_lane(which=lambda tool: f"/usr/bin/{tool}" if tool in tools else None, run=run)


def test_kind_lane_names_each_missing_tool_with_where_to_get_it():
    check = _lane({"kubectl"}, {})
    assert check.status == doctor.INFO and "needs docker, kind" in check.detail
    assert "docker: https://docs.docker.com" in check.fix and "kind: https://kind.sigs.k8s.io" in check.fix


def test_kind_lane_needs_a_running_docker_daemon_and_a_recent_kind():
    everything = {"docker", "kind", "kubectl"}
    assert "daemon does not answer" in _lane(everything, {"docker": (1, "")}).detail
    old = _lane(everything, {"docker": (0, "27.0.1"), "kind": (0, "kind v0.20.0 go1.20.4 linux/amd64")})
    assert old.status == doctor.WARN and f"older than {versions.KIND}" in old.detail
    ready = _lane(everything, {"docker": (0, "27.0.1"), "kind": (0, f"kind {versions.KIND} go1.24 linux/amd64")})
    assert ready.status == doctor.OK and "can run" in ready.detail


def _kubectl(major: str, minor: str, git: str):
    out = json.dumps({"clientVersion": {"major": major, "minor": minor, "gitVersion": git}})
    return lambda *a, **kw: subprocess.CompletedProcess(a, 0, out, "")


def test_kubectl_too_far_from_the_kind_node_is_a_warning_with_the_versions_to_install():
    node_major, node_minor = doctor.kind_node_kubernetes()
    assert f"v{node_major}.{node_minor}." in versions.IMAGES["kind-node"]
    old = doctor.check_kubectl(lambda name: "/usr/bin/kubectl",
                               _kubectl("1", f"{node_minor - 3}+", f"v1.{node_minor - 3}.4"))
    assert old.status == doctor.WARN and "one minor version of skew" in old.detail
    assert f"v1.{node_minor - 1}-v1.{node_minor + 1}" in old.fix
    near = doctor.check_kubectl(lambda name: "/usr/bin/kubectl", _kubectl("1", str(node_minor - 1), "v1.x"))
    assert near.status == doctor.OK
    missing = doctor.check_kubectl(lambda name: None)
    assert missing.status == doctor.INFO
    garbled = doctor.check_kubectl(lambda name: "/usr/bin/kubectl",
                                   lambda *a, **kw: subprocess.CompletedProcess(a, 0, "not json", ""))
    assert garbled.status == doctor.OK and "unknown version" in garbled.detail
