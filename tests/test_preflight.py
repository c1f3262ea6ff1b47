"""``python -m kit cluster preflight``: every check judged against recorded API answers.

``tests/fixtures/preflight/healthy/`` is a whole cluster as the API server returns it (DeploymentList,
CustomResourceDefinitionList, ValidatingWebhookConfigurationList, NodeList, PodList, StorageClassList,
ResourceQuotaList, a Namespace, a SelfSubjectAccessReview); every other folder is one failure and holds
only the answers that differ from the healthy cluster (an error answer is the ``Status`` body the API sends).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kit import versions
from kit.deploy import layout, operators
from kit.deploy import plan as stage09
from kit.k8s.builders import core
from kit.k8s.live import preflight as pf
from kit.k8s.live import preflight_access as access
from kit.k8s.live import preflight_capacity as capacity
from kit.k8s.live import preflight_operators as ops
from kit.k8s.live import preflight_storage as storage
from kit.k8s.live.preflight import FAIL, OK, WARN, Answer

FIXTURES = Path(__file__).parent / "fixtures" / "preflight"
NS = versions.NAMESPACE
#: API path -> the recorded answer's file name.
GETS = {
    "/apis/apps/v1/deployments": "deployments",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions": "crds",
    ops.WEBHOOK_CONFIGURATIONS: "validatingwebhookconfigurations",
    capacity.NODES: "nodes",
    capacity.PODS: "pods",
    storage.STORAGE_CLASSES: "storageclasses",
    f"/api/v1/namespaces/{NS}/resourcequotas": "resourcequotas",
    f"/api/v1/namespaces/{NS}": "namespace",
}


def _answer(body: dict[str, Any]) -> Answer:
    """A recorded body as the API server sends it: a ``Status`` carries its HTTP code."""
    return Answer(int(body["code"]), body) if body.get("kind") == "Status" else Answer(200, body)


class RecordedAPI:
    """:class:`kit.k8s.live.preflight.ClusterAPI` answering from fixture folders (the first that has a file wins,
    then ``healthy``); a dry run without a recording is admitted (201, the object back), as the API server does."""

    def __init__(self, *scenarios: str) -> None:
        self.folders = [FIXTURES / name for name in (*scenarios, "healthy")]
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def recorded(self, name: str) -> Any:
        for folder in self.folders:
            if (folder / f"{name}.json").exists():
                return json.loads((folder / f"{name}.json").read_text())
        return None

    def get_json(self, path: str) -> Answer:
        return _answer(self.recorded(GETS[path]))  # an unknown path is a KeyError: the checks asked something new

    def post_json(self, path: str, body: dict[str, Any]) -> Answer:
        self.posts.append((path, body))
        if path == access.REVIEWS:
            asked = body["spec"]["resourceAttributes"]
            for review in self.recorded("access") or []:
                if review["spec"]["resourceAttributes"] == asked:
                    return Answer(201, review)
            allowed = self.recorded("selfsubjectaccessreview-allowed")
            return Answer(201, {**allowed, "spec": body["spec"]})
        assert path.endswith("?dryRun=All"), path
        plural = path.partition("?")[0].rsplit("/", 1)[-1]
        found = self.recorded(f"dryrun-{plural}")
        return _answer(found) if found is not None else Answer(201, body)


def steps_for(size: layout.Sizing) -> list[tuple[str, list[dict]]]:
    plan = stage09.build_plan(size)
    return [(step.name, step.documents) for step in plan.steps]


RWX_BASE = replace(layout.BASE_SIZE, shared_access_mode="ReadWriteMany")
RWO_BASE = replace(layout.BASE_SIZE, shared_access_mode="ReadWriteOnce")


def run(*scenarios: str, size: layout.Sizing = RWX_BASE,
        steps: list[tuple[str, list[dict]]] | None = None) -> dict[tuple[str, str], pf.Check]:
    checks = pf.run(RecordedAPI(*scenarios), steps or steps_for(size), NS, operators.OPERATORS)
    by_name = {(check.area, check.name): check for check in checks}
    assert len(by_name) == len(checks), "every line of the report names a different thing"
    return by_name


# --------------------------------------------------------------------------- a healthy cluster


def test_a_healthy_cluster_passes_every_check():
    checks = run()
    assert not pf.problems(checks.values()), "\n".join(map(str, checks.values()))
    assert [c for c in checks.values() if c.status == WARN] == []
    for operator in operators.OPERATORS:
        assert checks[("operators", f"{operator.key} version")].detail.startswith(versions.OPERATORS[operator.key])
        assert checks[("operators", f"{operator.key} CRDs")].detail == f"{len(operator.crds)} Established"
    assert ("operators", "kuberay webhook") not in checks  # the pinned install has none
    # the Deployment is found where it runs, whatever namespace the install put it in
    assert "ray-system/kuberay-operator" in checks[("operators", "kuberay controllers")].detail
    # cert-manager's version comes from its label, the others' from their image tag
    assert "label app.kubernetes.io/version" in checks[("operators", "cert-manager version")].detail
    assert "quay.io/kuberay/operator:v1.7.0" in checks[("operators", "kuberay version")].detail
    # a webhook that denies the probe answers as surely as one that admits it
    assert "judged a dry-run TrainJob" in checks[("operators", "kubeflow-trainer webhook")].detail
    assert "admitted a dry-run InferenceService" in checks[("operators", "kserve webhook")].detail
    assert "efs.csi.aws.com" in checks[("storage", "claim kit-models")].detail
    assert checks[("capacity", "headroom")].detail.startswith("all ")  # exact sums: the capacity tests below
    trainjob = checks[("access", "TrainJob")]
    assert trainjob.detail == "may create and patch trainjobs.trainer.kubeflow.org in namespace kit"
    assert checks[("access", "ClusterQueue")].detail.endswith("clusterqueues.kueue.x-k8s.io cluster-wide")


def test_the_probes_go_to_the_plan_namespace_and_store_nothing():
    api = RecordedAPI()
    pf.run(api, steps_for(RWX_BASE), NS, operators.OPERATORS)
    probes = [path for path, _ in api.posts if path != access.REVIEWS]
    assert probes == [f"/apis/cert-manager.io/v1/namespaces/{NS}/issuers?dryRun=All",  # in install order
                      f"/apis/batch/v1/namespaces/{NS}/jobs?dryRun=All",
                      f"/apis/{versions.TRAINER_API_VERSION}/namespaces/{NS}/trainjobs?dryRun=All",
                      f"/apis/{versions.KSERVE_API_VERSION}/namespaces/{NS}/inferenceservices?dryRun=All"]


def test_before_the_namespace_exists_probes_use_default_and_the_plans_own_quota_counts():
    api = RecordedAPI("fresh")
    checks = {(c.area, c.name): c for c in pf.run(api, steps_for(RWX_BASE), NS, operators.OPERATORS)}
    assert all("/namespaces/default/" in path for path, _ in api.posts if path != access.REVIEWS)
    quota = checks[("capacity", "quota compute")]
    assert quota.status == OK and "the plan's own" in quota.detail


def test_probe_objects_match_the_pinned_crds():
    """A probe the CRD schema rejects would never reach the validating webhook it is meant to test."""
    from kit.k8s.validation.validate import validate_documents

    probes = [ops.PROBES[key].build(NS) for key in ("kueue", "kubeflow-trainer", "kserve")]
    assert validate_documents(probes, "probes", policy=False) == []
    assert probes[0]["metadata"]["labels"] == {versions.QUEUE_LABEL: versions.LOCAL_QUEUE}


def test_free_capacity_is_allocatable_minus_unfinished_pods_on_ready_uncordoned_nodes():
    api = RecordedAPI()
    nodes = {n.name: n for n in capacity.nodes_with_free(api.get_json(capacity.NODES), api.get_json(capacity.PODS))}
    assert set(nodes) == {"cp-1", "worker-1", "worker-2"}  # worker-3 is NotReady
    # worker-1: coredns 100m, cert-manager 10m, kuberay 100m, kserve 100m + 10m; the Succeeded pod is ignored
    assert nodes["worker-1"].free.cpu_millis == 7910 - 320
    # worker-2: coredns, kueue, trainer, and a notebook whose 3-cpu init container is its effective request
    assert nodes["worker-2"].free.cpu_millis == 7910 - (100 + 500 + 100 + 3000)
    plan_pod = capacity.PlanPod("Job/x", capacity.Requests.parse("1", "1Gi"), {}, False)
    assert not capacity.may_run_on(plan_pod, nodes["cp-1"])  # the control plane's NoSchedule taint


# --------------------------------------------------------------------------- operators


def test_a_missing_operator_fails_with_the_install_command():
    checks = run("operator-missing")
    fix = "run `clusters/install-operators.sh --only kueue`"
    for name, detail in (("kueue controllers", "not installed: no Deployment kueue-system/kueue-controller-manager"),
                         ("kueue CRDs", "missing: resourceflavors.kueue.x-k8s.io"),
                         ("kueue webhook", "no validating webhook vjob.kb.io is registered")):
        check = checks[("operators", name)]
        assert check.status == FAIL and check.detail.startswith(detail) and check.fix == fix
    assert ("operators", "kueue version") not in checks
    assert checks[("operators", "kuberay controllers")].status == OK


def test_wrong_versions_and_unready_crds_fail():
    checks = run("wrong-version")
    kuberay = checks[("operators", "kuberay version")]
    assert kuberay.status == FAIL
    assert kuberay.detail == ("kuberay-operator runs v1.6.0 (quay.io/kuberay/operator:v1.6.0); "
                              "the kit pins v1.7.0")
    assert "kserve-controller-manager runs latest" in checks[("operators", "kserve version")].detail
    trainer = checks[("operators", "kubeflow-trainer CRDs")]
    assert trainer.status == FAIL and trainer.detail == "not Established: trainjobs.trainer.kubeflow.org"
    kueue = checks[("operators", "kueue CRDs")]
    assert kueue.status == FAIL and kueue.detail == "localqueues.kueue.x-k8s.io serves v1beta1, not v1beta2"
    assert checks[("operators", "cert-manager version")].status == OK


def test_a_webhook_that_times_out_or_refuses_is_not_answering():
    checks = run("webhook-down")
    trainer, kserve = checks[("operators", "kubeflow-trainer webhook")], checks[("operators", "kserve webhook")]
    assert trainer.status == kserve.status == FAIL
    assert trainer.detail.startswith("not answering: Internal error occurred: failed calling webhook")
    assert "context deadline exceeded" in trainer.detail and "connection refused" in kserve.detail
    assert "kubectl get pods,endpoints" in trainer.fix
    assert checks[("operators", "kueue webhook")].status == OK


@pytest.mark.parametrize(("answer", "status", "words"), [
    (Answer(201, {"kind": "TrainJob"}), OK, "admitted"),
    (Answer(422, {"message": 'admission webhook "x" denied the request: no'}), OK, "judged"),
    (Answer(500, {"message": 'Internal error occurred: failed calling webhook "x": no endpoints available'}), FAIL,
     "not answering"),
    (Answer(403, {"message": "forbidden"}), WARN, "cannot probe: you may not create"),
    (Answer(404, {"message": "the server could not find the requested resource"}), WARN, "is not served"),
    (Answer(503, {"message": "etcdserver: request timed out"}), FAIL, "HTTP 503"),
])
def test_judge_probe(answer, status, words):
    check = ops.judge_probe("kubeflow-trainer", "TrainJob", answer)
    assert check.status == status and words in check.detail


def test_an_image_pinned_by_digest_alone_is_a_warning_not_a_verdict():
    deployments = RecordedAPI().get_json("/apis/apps/v1/deployments")
    for item in deployments.body["items"]:
        if item["metadata"]["name"] == "kuberay-operator":
            item["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/kuberay/operator@sha256:" + "ab" * 32
    kuberay = next(o for o in operators.OPERATORS if o.key == "kuberay")
    version = ops.check_controllers(kuberay, deployments)[1]
    assert version.status == WARN and version.detail.startswith("no kuberay image tag or version label")


def test_a_stopped_controller_fails():
    deployments = RecordedAPI().get_json("/apis/apps/v1/deployments")
    for item in deployments.body["items"]:
        if item["metadata"]["name"] == "kueue-controller-manager":
            item["status"]["availableReplicas"] = 0
    kueue = next(o for o in operators.OPERATORS if o.key == "kueue")
    check = ops.check_controllers(kueue, deployments)[0]
    assert check.status == FAIL and check.detail == "not running: kueue-system/kueue-controller-manager 0/1 available"
    assert check.fix.startswith("`kubectl -n kueue-system describe deployment kueue-controller-manager`")


# --------------------------------------------------------------------------- storage


def test_rwx_claims_on_a_block_storage_default_fail():
    checks = run("rwo-storage")
    for claim in ("kit-models", "kit-checkpoints"):
        check = checks[("storage", f"claim {claim}")]
        assert check.status == FAIL
        assert check.detail.startswith("ReadWriteMany on gp2 (kubernetes.io/aws-ebs)")
        assert "ReadWriteMany class" in check.fix


def test_rwo_claims_warn_on_several_nodes_and_pass_on_kind():
    several = run("rwo-storage", size=RWO_BASE)[("storage", "claim kit-models")]
    assert several.status == WARN and "on a 2-node cluster" in several.detail  # tainted cp-1, NotReady worker-3
    kind = run("kind", size=RWO_BASE)[("storage", "claim kit-models")]
    assert kind.status == WARN  # the healthy cluster still has two workers
    one_node = storage.check_claim(storage.claims(steps_for(RWO_BASE)[1][1])[0],
                                   RecordedAPI("kind").get_json(storage.STORAGE_CLASSES).items(), 1)
    assert one_node.status == OK and one_node.detail == "ReadWriteOnce on standard (rancher.io/local-path)"
    assert run("kind")[("storage", "claim kit-models")].status == FAIL  # local-path refuses ReadWriteMany


def test_storage_class_lookup():
    classes = RecordedAPI().get_json(storage.STORAGE_CLASSES).items()
    claim = {"kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
             "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "fast"}}
    missing = storage.check_claim(claim, classes, 1)
    assert missing.status == FAIL and missing.detail == "StorageClass 'fast' does not exist" and "gp3" in missing.fix
    no_default = storage.check_claim({**claim, "spec": {"accessModes": ["ReadWriteMany"]}}, classes[:1], 1)
    assert no_default.status == FAIL and "is-default-class" in no_default.fix
    assert storage.rwx_support("example.com/nfs-provisioner")[0] is True
    assert storage.rwx_support("example.com/mystery")[0] is None
    unknown = {"metadata": {"name": "m", "annotations": {storage.DEFAULT_CLASS: "true"}}, "provisioner": "x.io/m"}
    assert storage.check_claim({**claim, "spec": {"accessModes": ["ReadWriteMany"]}}, [unknown], 2).status == WARN


# --------------------------------------------------------------------------- capacity


def _server(name: str, replicas: int, cpu: str, memory: str) -> dict:
    container = {"name": "main", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}}}


#: A small plan with round numbers (the stage 09 plan's sums change with its sizing): a quota, a queued Job
#: of 4 pods that finishes, then 2 servers that keep running.
SMALL_PLAN = [("platform", [core.resource_quota(NS, "16", "64Gi")]),
              ("train", [core.batch_job("train", NS, ["true"], cpu="1", memory="2Gi", parallelism=4,
                                        queue=versions.LOCAL_QUEUE)]),
              ("serve", [_server("serve", 2, "1", "1Gi")])]


def test_the_small_plan_fits_the_healthy_cluster_at_once():
    checks = run(steps=SMALL_PLAN)
    assert checks[("capacity", "headroom")].detail == "all 6 pods fit at once (6 cpu, 10.00 GiB)"
    assert checks[("capacity", "quota compute")].detail == "every step fits (it limits cpu, gpu, memory, pods)"


def test_not_enough_headroom_or_quota_fails():
    checks = run("no-headroom", steps=SMALL_PLAN)
    nodes, headroom = checks[("capacity", "nodes")], checks[("capacity", "headroom")]
    assert nodes.detail.startswith("2 Ready and uncordoned")  # worker-2 is cordoned
    # worker-1: 1100m and about 1.7 GiB left after the operators and a 2500m / 5 GiB notebook: no 2 GiB pod fits
    assert headroom.status == FAIL
    assert headroom.detail == ("step train needs 4 cpu, 8.00 GiB for 4 pods; no node has room for "
                               "4 × Job/train (1 cpu, 2.00 GiB)")
    assert "--profile kind" in headroom.fix
    quota = checks[("capacity", "quota compute")]
    assert quota.status == FAIL  # 14 of 16 cpu used
    assert quota.detail == "step train needs 4 cpu, 8.00 GiB: cpu over what is left (cpu 2, 0 gpu, memory 44Gi)"


def test_fitting_only_step_by_step_warns():
    """One node with 5180m free: the 4 job pods fit, then the 2 servers, but not all 6 at once (placed largest
    first, the last server is the one left over)."""
    headroom = run("tight", steps=SMALL_PLAN)[("capacity", "headroom")]
    assert headroom.status == WARN
    assert headroom.detail == ("the 6 pods (6 cpu, 10.00 GiB) do not fit at once (1 × Deployment/serve (1 cpu, "
                               "1.00 GiB) left over), but each step fits while the servers run")


def test_the_quota_counts_pods_too():
    full = [("serve", [_server("serve", 15, "10m", "16Mi")])]  # 20 pods allowed, none used yet
    assert run(steps=full)[("capacity", "quota compute")].status == OK
    checks = run(steps=[("serve", [_server("serve", 21, "10m", "16Mi")])])
    assert checks[("capacity", "quota compute")].detail == "step serve runs 21 pods, 20 left"


def test_gpu_pods_tolerate_gpu_nodes_through_kueues_flavor():
    gpu = replace(layout.OVERLAYS["gpu"], shared_access_mode="ReadWriteMany")
    checks = run("gpu", size=gpu)
    assert checks[("capacity", "headroom")].status == OK
    assert checks[("capacity", "quota compute")].status == OK
    assert run(size=gpu)[("capacity", "headroom")].status == FAIL  # no GPU node in the healthy cluster


# --------------------------------------------------------------------------- access


def test_forbidden_kinds_fail_with_the_role_to_ask_for():
    checks = run("forbidden")
    trainjob = checks[("access", "TrainJob")]
    assert trainjob.status == FAIL
    assert trainjob.detail == "may not create, patch trainjobs.trainer.kubeflow.org in namespace kit"
    assert trainjob.fix.startswith("ask the organiser for a Role allowing create and patch")
    assert checks[("access", "InferenceService")].detail.startswith("may not patch ")
    queue = checks[("access", "ClusterQueue")]
    assert queue.status == FAIL and "ClusterRole" in queue.fix and "platform step" in queue.fix
    assert checks[("access", "RayJob")].status == OK


def test_access_reviews_ask_for_each_kind_and_verb():
    api = RecordedAPI()
    documents = [doc for _, docs in steps_for(RWX_BASE) for doc in docs]
    access.check_access(api, documents)
    asked = [body["spec"]["resourceAttributes"] for path, body in api.posts]
    assert {"verb": "create", "group": "", "resource": "namespaces"} in asked
    assert {"verb": "patch", "group": "networking.k8s.io", "resource": "networkpolicies", "namespace": NS} in asked
    assert {"verb": "create", "group": "", "resource": "persistentvolumeclaims", "namespace": NS} in asked
    assert len(asked) == 2 * len(access.targets(documents))
    assert access.resource_of("Ingress", "networking.k8s.io/v1") == ("networking.k8s.io", "ingresses")


def test_a_learner_without_cluster_wide_reads_gets_warnings_not_false_failures():
    checks = run("learner")
    for name in ("Deployments", "CRDs"):  # one line each, not one per operator
        assert checks[("operators", name)].status == WARN
    assert ("operators", "kueue controllers") not in checks
    assert checks[("operators", "cert-manager webhook")].status == WARN  # may not create an Issuer
    assert checks[("operators", "kueue webhook")].status == OK  # probed even without reading registrations
    assert checks[("storage", "storage classes")].status == WARN
    assert checks[("capacity", "nodes")].status == WARN
    assert checks[("capacity", "quota compute")].status == OK
    failed = {name for (area, name), check in checks.items() if check.status == FAIL}
    assert failed == {"Namespace", "ResourceFlavor", "ClusterQueue", "ClusterTrainingRuntime"}


# --------------------------------------------------------------------------- report and command line


def test_report_and_json():
    checks = list(run("webhook-down").values())
    text = pf.format_report(checks, "cluster: context 'x'")
    assert text.splitlines()[0] == "preflight of cluster: context 'x'"
    assert "Fix: check the webhook's pods" in text and text.endswith("then run the preflight again.")
    data = pf.summary(checks, "x")
    assert data["ready"] is False and {c["status"] for c in data["checks"]} == {OK, FAIL}
    assert pf.format_report(list(run().values()), "x").endswith("Ready: nothing blocks the plan (0 warning(s)).")


def test_cli_exit_codes(monkeypatch, capsys):
    from kit.cli import main

    scenario: list[str] = []
    monkeypatch.setattr(pf, "LiveAPI", lambda: RecordedAPI(*scenario))
    assert main(["cluster", "preflight", "--profile", "cluster", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ready"] is True
    scenario.append("wrong-version")
    assert main(["cluster", "preflight", "--overlay", "local-kind"]) == 1
    out = capsys.readouterr().out
    assert "for the stage 09 plan sized for overlay local-kind" in out and "[FAIL] operators" in out
    assert main(["cluster", "preflight", "--overlay", "nope"]) == 2


# --------------------------------------------------------------------------- the live API, against a local server


@pytest.fixture
def api_server(tmp_path, monkeypatch):
    """A loopback HTTP server answering like the API server, and a kubeconfig pointing at it."""
    import http.server
    import threading

    seen: list[tuple[str, str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            seen.append(("GET", self.path, None))
            if self.path.startswith("/api/v1/nodes"):
                self._reply(200, RecordedAPI().recorded("nodes"))
            else:
                self._reply(403, RecordedAPI("learner").recorded("deployments"))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(("POST", self.path, body))
            self._reply(500, RecordedAPI("webhook-down").recorded("dryrun-trainjobs"))

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "local",
              "clusters": [{"name": "local", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
              "users": [{"name": "me", "user": {"token": "t0ken"}}],
              "contexts": [{"name": "local", "context": {"cluster": "local", "user": "me"}}]}
    (tmp_path / "config").write_text(json.dumps(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield seen, server
    server.shutdown()


def test_live_api_turns_http_answers_into_answers(api_server):
    seen, _ = api_server
    api = pf.LiveAPI(timeout=5)
    nodes = api.get_json("/api/v1/nodes?fieldSelector=status.phase!=Succeeded,status.phase!=Failed")
    assert nodes.ok and [n["metadata"]["name"] for n in nodes.items()][:2] == ["cp-1", "worker-1"]
    assert seen[0][1] == "/api/v1/nodes?fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed"
    forbidden = api.get_json("/apis/apps/v1/deployments")
    assert forbidden.status == 403 and "cannot list resource" in forbidden.message and forbidden.items() == []
    probe = ops.PROBES["kubeflow-trainer"]
    answer = api.post_json(probe.path(NS), probe.build(NS))
    assert answer.status == 500 and "failed calling webhook" in answer.message
    assert seen[-1][:2] == ("POST", f"/apis/{versions.TRAINER_API_VERSION}/namespaces/{NS}/trainjobs?dryRun=All")
    assert seen[-1][2]["metadata"]["name"] == ops.PROBE_NAME


def test_live_api_without_an_answer_is_a_cluster_error(api_server):
    from kit.k8s.live.kubectl import ClusterError

    _, server = api_server
    api = pf.LiveAPI(timeout=2)
    server.shutdown()
    server.server_close()
    with pytest.raises(ClusterError, match="no answer from the API server") as error:
        api.get_json("/api/v1/nodes")
    assert error.value.fix
