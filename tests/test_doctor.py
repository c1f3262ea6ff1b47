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


def _cli_with(monkeypatch, capsys, checks: list[doctor.Check], *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(doctor, "run_checks", lambda: checks)
    status = main(["doctor", *argv])
    return status, capsys.readouterr().out


def test_cli_exit_status_is_1_exactly_when_a_check_fails(monkeypatch, capsys):
    ok = doctor.Check("python", doctor.OK, "3.11")
    warn = doctor.Check("cpus", doctor.WARN, "1 CPU", "ask for 2")
    info = doctor.Check("cluster", doctor.INFO, "none: the local profile will be used")
    fail = doctor.Check("memory", doctor.FAIL, "0.5 GiB", "more memory")
    assert _cli_with(monkeypatch, capsys, [ok, warn, info])[0] == 0  # warnings do not block
    status, out = _cli_with(monkeypatch, capsys, [ok, fail, warn])
    assert status == 1
    assert "1 problem(s) block the curriculum" in out


def test_cli_json_reports_each_check_and_readiness(monkeypatch, capsys):
    checks = [doctor.Check("python", doctor.OK, "3.11"), doctor.Check("memory", doctor.FAIL, "0.5 GiB", "more")]
    status, out = _cli_with(monkeypatch, capsys, checks, "--json")
    report = json.loads(out)
    assert status == 1 and report["ready"] is False
    assert report["checks"] == [
        {"name": "python", "status": doctor.OK, "detail": "3.11", "fix": ""},
        {"name": "memory", "status": doctor.FAIL, "detail": "0.5 GiB", "fix": "more"},
    ]
    assert report["resources"]["cpu_slots"] >= 1
    status, out = _cli_with(monkeypatch, capsys, checks[:1], "--json")
    assert status == 0 and json.loads(out)["ready"] is True


def test_the_real_checks_pass_for_this_python_and_these_packages():
    """This venv was installed from the lock with a supported Python: those two checks must say OK."""
    by_name = {c.name: c for c in doctor.run_checks()}
    assert by_name["python"].status == doctor.OK
    assert by_name["packages"].status == doctor.OK, by_name["packages"]
    assert {"cpus", "memory", "ray token auth", "kubectl"} <= set(by_name)


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


def test_kind_node_version_is_read_from_the_pinned_image(monkeypatch):
    monkeypatch.setitem(versions.IMAGES, "kind-node", "kindest/node:v1.31.4@sha256:0123abcd")
    assert doctor.kind_node_kubernetes() == (1, 31)


def test_kubectl_too_far_from_the_kind_node_is_a_warning_with_the_versions_to_install(monkeypatch):
    monkeypatch.setitem(versions.IMAGES, "kind-node", "kindest/node:v1.31.4@sha256:0123abcd")
    old = doctor.check_kubectl(lambda name: "/usr/bin/kubectl", _kubectl("1", "28+", "v1.28.4"))
    assert old.status == doctor.WARN and "one minor version of skew" in old.detail
    assert "install kubectl v1.30-v1.32 for make test-cluster" in old.fix
    for minor in ("30", "31", "32+"):
        near = doctor.check_kubectl(lambda name: "/usr/bin/kubectl", _kubectl("1", minor, f"v1.{minor}"))
        assert near.status == doctor.OK, minor
    far = doctor.check_kubectl(lambda name: "/usr/bin/kubectl", _kubectl("1", "33", "v1.33.0"))
    assert far.status == doctor.WARN
    missing = doctor.check_kubectl(lambda name: None)
    assert missing.status == doctor.INFO
    garbled = doctor.check_kubectl(lambda name: "/usr/bin/kubectl",
                                   lambda *a, **kw: subprocess.CompletedProcess(a, 0, "not json", ""))
    assert garbled.status == doctor.OK and "unknown version" in garbled.detail
