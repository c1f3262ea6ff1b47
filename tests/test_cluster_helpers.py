"""kit.k8s.live without an API server: profiles from fake kubeconfigs, kubectl commands, waits and
their reports from fake API responses, diagnostics bundles, and port-forward with a fake kubectl."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
import yaml

from kit import versions
from kit.errors import KitError
from kit.k8s.live import context, diagnostics, kinds, kubectl, portforward, waits
from kit.machine.processes import free_port, port_is_free


def _kubeconfig(tmp_path, name: str, current: str | None, namespace: str | None = None):
    context: dict = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    config = {"apiVersion": "v1", "kind": "Config", "contexts": [{"name": current or "x", "context": context}]}
    if current:
        config["current-context"] = current
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


# --------------------------------------------------------------------------- profile detection


def test_kind_context_is_the_kind_profile(tmp_path):
    path = _kubeconfig(tmp_path, "config", "kind-cnai-kit", "kit")
    found = context.detect({"KUBECONFIG": str(path)}, tmp_path / "no-sa")
    assert (found.profile, found.context, found.namespace) == ("kind", "kind-cnai-kit", "kit")


def test_other_context_is_cluster_and_first_current_context_wins(tmp_path):
    first = _kubeconfig(tmp_path, "a", None)
    second = _kubeconfig(tmp_path, "b", "prod-eu")
    found = context.detect({"KUBECONFIG": f"{first}:{tmp_path / 'missing'}:{second}"}, tmp_path / "no-sa")
    assert (found.profile, found.namespace) == ("cluster", "default") and str(second) in found.source


def test_no_kubeconfig_is_local(tmp_path):
    found = context.detect({"HOME": str(tmp_path)}, tmp_path / "no-sa")
    assert found.profile == "local" and found.context is None
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(":: not yaml ::\n  - [")
    assert context.detect({"HOME": str(tmp_path)}, tmp_path / "no-sa").profile == "local"


def test_service_account_means_in_cluster(tmp_path):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("t")
    (sa / "namespace").write_text("team-a\n")
    found = context.detect({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOME": str(tmp_path)}, sa)
    assert (found.profile, found.context, found.namespace) == ("cluster", "in-cluster", "team-a")
    # the variable alone (e.g. a pod without a token mounted) is not enough
    assert context.detect({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOME": str(tmp_path)}, tmp_path).profile == "local"


# --------------------------------------------------------------------------- apply / delete


class FakeRun:
    def __init__(self, returncode=0, stdout="", stderr=""):
        self.calls = []
        self.result = subprocess.CompletedProcess([], returncode, stdout, stderr)

    def __call__(self, command, **kwargs):
        self.calls.append((command, kwargs))
        return self.result


def test_apply_documents_goes_server_side_through_stdin():
    run = FakeRun(stdout="raycluster.ray.io/x serverside-applied\n")
    out = kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kit"}}, run=run)
    command, kwargs = run.calls[0]
    assert command[:3] == ["kubectl", "apply", "--server-side"] and "--field-manager=cnai-kit" in command
    assert command[-2:] == ["-f", "-"] and "name: kit" in kwargs["input"] and "serverside-applied" in out


def test_apply_a_kustomize_dir_and_delete_ignores_what_is_gone(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    run = FakeRun()
    kubectl.apply(tmp_path, dry_run="server", run=run)
    assert run.calls[0][0][-3:] == ["-k", str(tmp_path), "--dry-run=server"]
    kubectl.delete(tmp_path / "x.yaml", run=run)
    assert run.calls[1][0][:4] == ["kubectl", "delete", "--ignore-not-found", "--wait=true"]


@pytest.mark.parametrize(("stderr", "fix"), [
    ('error: resource mapping not found for name: "x" ... no matches for kind "RayCluster" in version "ray.io/v1"',
     "install-operators.sh"),
    ('Error from server (Forbidden): pods "x" is forbidden: violates PodSecurity "restricted:latest"',
     "python -m kit validate"),
    ("Unable to connect to the server: dial tcp 127.0.0.1:6443: connect: connection refused", "no cluster reachable"),
])
def test_kubectl_failures_carry_the_fix(stderr, fix):
    with pytest.raises(kubectl.ClusterError) as raised:
        kubectl.apply([{"kind": "x"}], run=FakeRun(1, stderr=stderr))
    assert fix in raised.value.fix and isinstance(raised.value, KitError)
    assert f"Fix: {raised.value.fix}" in raised.value.explain()


# --------------------------------------------------------------------------- readiness rules


def _cond(type_, status, reason="", message=""):
    return {"type": type_, "status": status, "reason": reason, "message": message}


@pytest.mark.parametrize(("kind", "status", "state"), [
    ("RayCluster", {"state": "ready", "readyWorkerReplicas": 2}, "ready"),
    ("RayCluster", {"state": "failed", "reason": "head pod crashed"}, "failed"),
    ("RayCluster", {}, "waiting"),
    ("RayJob", {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}, "ready"),
    ("RayJob", {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "message": "exit 1"}, "failed"),
    ("RayJob", {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, "waiting"),
    ("TrainJob", {"conditions": [_cond("Complete", "True")]}, "ready"),
    ("TrainJob", {"conditions": [_cond("Failed", "True", "BackoffLimitExceeded")]}, "failed"),
    ("TrainJob", {"conditions": [_cond("Suspended", "True")]}, "waiting"),
    ("Job", {"conditions": [_cond("Complete", "True")]}, "ready"),
    ("RayService", {"conditions": [_cond("Ready", "True")]}, "ready"),
    ("RayService", {"conditions": [_cond("Ready", "False", "WaitForServeDeploymentReady")]}, "waiting"),
    ("InferenceService", {"conditions": [_cond("Ready", "True")], "url": "http://m.kit"}, "ready"),
    ("InferenceService", {}, "waiting"),
])
def test_verdicts(kind, status, state):
    assert kinds.kind_of(kind).verdict({"status": status}).state == state


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: RayCluster, RayJob"):
        kinds.kind_of("Deployment")


# --------------------------------------------------------------------------- fake cluster


PENDING_POD = {
    "metadata": {"name": "kit-raycluster-cpu-worker-abc"},
    "spec": {},
    "status": {"phase": "Pending", "conditions": [_cond(
        "PodScheduled", "False", "Unschedulable", "0/1 nodes are available: 1 Insufficient cpu.")]},
}
PULLING_POD = {
    "metadata": {"name": "kit-raycluster-head-xyz"},
    "spec": {"nodeName": "cnai-kit-control-plane"},
    "status": {"phase": "Pending", "containerStatuses": [{
        "name": "ray-head", "ready": False, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "rayproject/ray:2.6"'}},
    }]},
}
CRASHING_POD = {
    "metadata": {"name": "trainer-node-0"},
    "spec": {"nodeName": "n1"},
    "status": {"phase": "Running", "containerStatuses": [{
        "name": "node", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    }]},
}


class FakeAPI:
    """Answers like the API server would, from dicts; records log requests."""

    def __init__(self, resource=None, pods=(), events=(), workloads=(), logs=None, states=None):
        self.resource, self.pods_list, self.events_list = resource, list(pods), list(events)
        self.workloads_list, self.log_text = list(workloads), logs or {}
        self.states = list(states or [])  # successive statuses returned by get()

    def get(self, kind, name, namespace):
        if self.states:
            self.resource = {**(self.resource or {}), "status": self.states.pop(0)}
        return self.resource

    def list(self, kind, namespace):
        if kind != "RayCluster":
            raise RuntimeError("the server could not find the requested resource")
        return [self.resource]

    def pods(self, namespace, selector):
        return self.pods_list

    def events(self, namespace):
        return self.events_list

    def workloads(self, namespace):
        return self.workloads_list

    def log_tail(self, namespace, pod, container, lines):
        return self.log_text.get(f"{pod}/{container}", "")


def _raycluster(status=None, queue="kit-queue"):
    meta = {"name": "kit-raycluster", "namespace": "kit", "labels": {versions.QUEUE_LABEL: queue}}
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": meta, "status": status or {}}


def _event(name, reason, message, kind="Pod", type_="Warning", when="2030-01-01T00:00:01Z", count=1):
    return {"type": type_, "reason": reason, "message": message, "count": count, "lastTimestamp": when,
            "involvedObject": {"kind": kind, "name": name}}


WORKLOAD = {"metadata": {"name": "raycluster-kit-raycluster-1",
                         "ownerReferences": [{"kind": "RayCluster", "name": "kit-raycluster"}]},
            "status": {"conditions": [_cond("QuotaReserved", "False", "Pending",
                                            "couldn't assign flavors to pod set head: insufficient quota for cpu "
                                            "in flavor default-flavor, request > maximum capacity (24 > 16)")]}}


def _fake_clock():
    now = [0.0]
    return (lambda: now[0]), (lambda seconds: now.__setitem__(0, now[0] + seconds))


def test_timeout_report_explains_pods_events_quota_and_logs(tmp_path):
    api = FakeAPI(
        _raycluster({"state": "unhealthy"}),
        pods=[PENDING_POD, PULLING_POD, CRASHING_POD],
        events=[_event("kit-raycluster-cpu-worker-abc", "FailedScheduling",
                       "0/1 nodes are available: 1 Insufficient cpu.", count=4, when="2030-01-01T00:00:05Z"),
                _event("unrelated-pod", "BackOff", "not ours"),
                _event("kit-raycluster", "CreatedHeadPod", "Created head pod", kind="RayCluster", type_="Normal")],
        workloads=[WORKLOAD, {"metadata": {"name": "other", "ownerReferences": [{"kind": "RayJob", "name": "x"}]}}],
        logs={"trainer-node-0/node": "epoch 1\nKilled\n"},
    )
    clock, sleep = _fake_clock()
    with pytest.raises(waits.WaitTimeout) as raised:
        waits.wait_for("RayCluster", "kit-raycluster", "kit", timeout=30, api=api, poll=5, clock=clock,
                         sleep=sleep, progress=None, diagnostics_dir=tmp_path)
    report = raised.value.report
    assert report.startswith("RayCluster/kit-raycluster in 'kit' not ready after 30 s (last status: state unhealthy)")
    assert "Kueue workload raycluster-kit-raycluster-1:" in report and "insufficient quota for cpu" in report
    assert "pod kit-raycluster-cpu-worker-abc: Pending  not scheduled  [Unschedulable: 0/1 nodes" in report
    assert "ray-head ImagePullBackOff (Back-off pulling image" in report
    assert "node CrashLoopBackOff, 3 restarts (last: OOMKilled, exit 137)" in report
    assert "Warning FailedScheduling Pod/kit-raycluster-cpu-worker-abc: 0/1 nodes are available: 1 Insufficient " \
           "cpu. (x4)" in report
    assert "not ours" not in report and report.index("CreatedHeadPod") < report.index("FailedScheduling")
    assert "log tail trainer-node-0/node (last 2 lines):\n  | epoch 1\n  | Killed" in report
    for fix in ("an image cannot be pulled", "ran out of memory", "no node has room", "Kueue holds the workload"):
        assert fix in report
    bundle = raised.value.bundle
    assert bundle == tmp_path / "raycluster-kit-raycluster" and "diagnostics written to" in str(raised.value)
    assert (bundle / "report.txt").read_text().strip() == report
    assert (bundle / "logs" / "trainer-node-0__node.log").read_text() == "epoch 1\nKilled\n"
    assert yaml.safe_load((bundle / "resource.yaml").read_text())["metadata"]["name"] == "kit-raycluster"


def test_wait_returns_when_ready_and_reports_progress_once_per_change():
    api = FakeAPI(_raycluster(), states=[{"state": "pending"}, {"state": "pending"}, {"state": "ready"}])
    clock, sleep = _fake_clock()
    seen = []
    obj = waits.wait_for("RayCluster", "kit-raycluster", "kit", timeout=60, api=api, clock=clock, sleep=sleep,
                           progress=seen.append)
    assert obj["status"]["state"] == "ready"
    assert seen == ["RayCluster/kit-raycluster: state pending", "RayCluster/kit-raycluster: ready, 0 worker(s) "
                    "ready after 4 s"]


def test_failure_raises_at_once_with_the_reason():
    api = FakeAPI({"metadata": {"name": "j"}}, states=[{"jobDeploymentStatus": "Failed", "jobStatus": "FAILED",
                                                         "message": "Job entrypoint command failed with exit code 1"}])
    clock, sleep = _fake_clock()
    with pytest.raises(waits.WorkloadFailed, match="RayJob/j in 'kit' failed: deployment Failed, job FAILED: Job "
                                                     "entrypoint command failed"):
        waits.wait_for("RayJob", "j", "kit", timeout=600, api=api, clock=clock, sleep=sleep, progress=None)


def test_missing_resource_and_missing_workload_are_explained():
    missing = diagnostics.collect(FakeAPI(None), "TrainJob", "train", "kit")
    assert diagnostics.hints(missing) == ["TrainJob/train does not exist in namespace 'kit': was it applied, to this "
                                      "namespace?"]
    unqueued = diagnostics.collect(FakeAPI(_raycluster()), "RayCluster", "kit-raycluster", "kit")
    assert "is Kueue installed and does the LocalQueue 'kit-queue' exist" in diagnostics.hints(unqueued)[0]


def test_pod_security_refusal_in_events_is_explained():
    snap = diagnostics.collect(FakeAPI({"metadata": {"name": "hello"}}, events=[_event(
        "hello", "FailedCreate", 'pods "hello-x" is forbidden: violates PodSecurity "restricted:latest": '
        "allowPrivilegeEscalation != false", kind="Job")]), "Job", "hello", "kit")
    assert any("Pod Security 'restricted' refused" in fix for fix in diagnostics.hints(snap))


def test_collect_survives_api_errors():
    class Broken(FakeAPI):
        def events(self, namespace):
            raise PermissionError("events is forbidden: User cannot list resource")

    snap = diagnostics.collect(Broken(_raycluster({"state": "ready"}), workloads=[WORKLOAD]), "RayCluster",
                           "kit-raycluster", "kit")
    report = diagnostics.explain(snap, "headline")
    assert "note: could not read events: PermissionError: events is forbidden" in report


def test_diagnose_namespace_bundles_what_it_can_list(tmp_path, capsys):
    folders = diagnostics.diagnose_namespace("kit", tmp_path, api=FakeAPI(_raycluster({"state": "ready"})))
    assert folders == [tmp_path / "raycluster-kit-raycluster"]
    out = capsys.readouterr().out
    assert "RayJob: not listed (RuntimeError)" in out and "status: ready" in out


# --------------------------------------------------------------------------- port-forward


def test_port_forward_command_binds_loopback():
    forward = portforward.dashboard("kit-raycluster", "kit")
    assert forward.command() == ["kubectl", "port-forward", "--address", "127.0.0.1", "-n", "kit",
                                 "svc/kit-raycluster-head-svc", "8265:8265"]
    assert portforward.inference_endpoint("model", "kit").command()[-2:] == ["svc/model-predictor", "8080:80"]
    assert portforward.serve_endpoint("app", "kit").command()[-1] == "8000:8000"


def test_busy_local_port_falls_back_to_a_free_one():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not port_is_free(port)
        assert free_port(port) != port


def _fake_kubectl(tmp_path, body: str):
    script = tmp_path / "kubectl"
    script.write_text("#!/bin/bash\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


def test_port_forward_runs_and_stops_a_managed_kubectl(tmp_path):
    kubectl = _fake_kubectl(tmp_path, """\
        echo "Forwarding from 127.0.0.1:${!#%%:*} -> ${!###*:}"
        exec sleep 60
        """)
    forward = portforward.PortForward("svc/x", 8265, "kit", local_port=free_port(18265), kubectl=kubectl)
    with forward:
        assert forward.start() == forward.url  # idempotent
        pid = forward.process.pid
        assert forward.url.startswith("http://127.0.0.1:")
    assert forward.process is None
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


def test_port_forward_failure_shows_kubectl_output(tmp_path):
    kubectl = _fake_kubectl(tmp_path, 'echo \'Error from server (NotFound): services "x" not found\'; exit 1\n')
    forward = portforward.PortForward("svc/x", 8265, "kit", local_port=free_port(18266), kubectl=kubectl)
    with pytest.raises(portforward.PortForwardError, match='services "x" not found'):
        forward.start(timeout=5)
    assert forward.process is None


# --------------------------------------------------------------------------- the one kubeconfig reader


def test_kubeconfig_list_merges_like_kubectl(tmp_path):
    first = _kubeconfig(tmp_path, "a", "kind-first", "ns-a")
    second = _kubeconfig(tmp_path, "b", "second", "ns-b")
    merged = context.read_kubeconfig({"KUBECONFIG": f"{tmp_path / 'missing'}:{first}:{second}"})
    assert (merged.current_context, merged.source, merged.namespace) == ("kind-first", first, "ns-a")
    assert merged.existing == [first, second] and set(merged.contexts) == {"kind-first", "second"}


def test_load_client_config_without_kubeconfig_raises_a_fix(tmp_path):
    with pytest.raises(kubectl.ClusterError) as raised:
        context.load_client_config({"KUBECONFIG": str(tmp_path / "missing")})
    assert "KUBECONFIG" in raised.value.fix


def test_doctor_reads_a_kubeconfig_list_like_kubectl(monkeypatch, tmp_path):
    """A $KUBECONFIG list: the first file that sets current-context wins, as in kubectl (the client alone
    would take the last one's)."""
    from kit.machine import doctor

    def config(name: str, context: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(f"""\
            apiVersion: v1
            kind: Config
            clusters: [{{name: {context}, cluster: {{server: "https://127.0.0.1:9"}}}}]
            users: [{{name: {context}, user: {{token: not-a-secret}}}}]
            contexts: [{{name: {context}, context: {{cluster: {context}, user: {context}}}}}]
            current-context: {context}
            """))
        return str(path)

    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{config('a', 'kind-first')}:{config('b', 'second')}")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    [check] = doctor.check_cluster(timeout=2)
    assert "'kind-first' is not reachable" in check.detail


# --------------------------------------------------------------------------- python -m kit cluster (in-process)


def test_cluster_profile_command_names_the_context(tmp_path, monkeypatch, capsys):
    from kit.cli import main

    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, "config", "kind-cnai-kit", "kit")))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["cluster", "profile"]) == 0
    assert "kind: context 'kind-cnai-kit', namespace 'kit'" in capsys.readouterr().out


def test_cluster_wait_command_fails_with_report_and_fix_not_a_traceback(monkeypatch, capsys):
    from kit.cli import main

    failed = FakeAPI({"metadata": {"name": "j"}, "status": {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED"}},
                     pods=[PENDING_POD])
    monkeypatch.setattr(waits, "KubeAPI", lambda: failed)
    assert main(["cluster", "wait", "RayJob", "j", "-n", "kit"]) == 1
    err = capsys.readouterr().err
    assert "RayJob/j in 'kit' failed" in err and "\nFix: " in err and "Traceback" not in err
    assert main(["cluster", "wait", "Deployment", "x"]) == 2  # not a kind the kit waits on: a usage error
