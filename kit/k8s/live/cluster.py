"""Work with a real cluster: which one, apply and delete, waits that explain themselves, port-forward.

- :func:`detect` — ``local``, ``kind`` or ``cluster``, from the in-cluster service
  account or the kubeconfig's current context (read as YAML: no client needed);
- :func:`apply` / :func:`delete` — ``kubectl apply --server-side`` of built documents,
  files or kustomize directories, with errors turned into fixes;
- :func:`wait_for` — until a RayCluster / RayService / InferenceService is ready or a
  RayJob / TrainJob / Job has finished. On timeout or failure it raises with a report
  of the resource's conditions, its Kueue Workload, pod states, recent events, log
  tails and hints, and can write it all as a diagnostics bundle;
- :class:`PortForward` — ``kubectl port-forward`` on 127.0.0.1 as a managed subprocess.

Everything that talks to the API server goes through :class:`KubeAPI`, which returns
plain dicts shaped like the API's JSON; the rules and the formatting work on those
dicts, so tests feed them fake API responses.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.k8s.builders.kueue import QUEUE_LABEL
from kit.machine.processes import free_port, port_is_free

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
FIELD_MANAGER = "cnai-kit"

# --------------------------------------------------------------------------- which cluster


@dataclass(frozen=True)
class ClusterContext:
    """Where ``PROFILE`` work would go: the profile, the context's name and namespace, and why."""

    profile: str
    context: str | None
    namespace: str
    source: str

    def __str__(self) -> str:
        where = f"context {self.context!r}, namespace {self.namespace!r}" if self.context else "no cluster"
        return f"{self.profile}: {where} (from {self.source})"


def kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The kubeconfig files kubectl reads: ``$KUBECONFIG`` (a path list) or ``~/.kube/config``."""
    environ = os.environ if environ is None else environ
    if environ.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    return [Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"]


def _read_kubeconfig(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def detect(environ: Mapping[str, str] | None = None, service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> ClusterContext:
    """The profile this environment points at, as kubectl would see it.

    In a pod with a service account token: ``cluster``. Otherwise the kubeconfig's
    current context (the first file that sets one wins, as in kubectl): a ``kind-*``
    context is ``kind``, any other is ``cluster``; no kubeconfig or no context: ``local``.
    """
    environ = os.environ if environ is None else environ
    token = service_account_dir / "token"
    if environ.get("KUBERNETES_SERVICE_HOST") and token.exists():
        ns_file = service_account_dir / "namespace"
        namespace = ns_file.read_text().strip() if ns_file.exists() else "default"
        return ClusterContext("cluster", "in-cluster", namespace, f"service account token {token}")
    configs = [(path, _read_kubeconfig(path)) for path in kubeconfig_paths(environ)]
    current = next(((p, c["current-context"]) for p, c in configs if c.get("current-context")), None)
    if current is None:
        sources = ", ".join(str(p) for p, _ in configs)
        return ClusterContext("local", None, "default", f"no current context in {sources}")
    path, name = current
    entry = next((ctx for _, c in configs for ctx in c.get("contexts") or [] if ctx.get("name") == name), {})
    namespace = (entry.get("context") or {}).get("namespace") or "default"
    profile = "kind" if name.startswith("kind-") else "cluster"
    return ClusterContext(profile, name, namespace, f"current-context in {path}")


# --------------------------------------------------------------------------- apply and delete

Runner = Callable[..., subprocess.CompletedProcess]


class ClusterError(RuntimeError):
    """kubectl failed; the message has its output and, when known, the fix."""


#: kubectl error text -> what to do about it.
KUBECTL_HINTS: tuple[tuple[str, str], ...] = (
    (r"no matches for kind|ensure CRDs are installed",
     "the operator that defines this kind is not installed: run clusters/install-operators.sh"),
    (r"violates PodSecurity", "the namespace enforces Pod Security 'restricted': run `python -m kit validate` on "
                              "the manifest and fix the securityContext fields it names"),
    (r"exceeded quota", "the namespace's ResourceQuota is full: delete finished work or lower the requests"),
    (r"Unable to connect|connection refused|no such host|dial tcp",
     "no cluster reachable: start it (kind: `make test-cluster` or `kind create cluster`) or check your context"),
    (r"[Ff]orbidden|cannot (create|get|list|patch)", "RBAC: your user may not do this; ask an admin for a Role"),
    (r"namespaces? \"[^\"]+\" not found", "the namespace does not exist: apply clusters/base/namespace.yaml first"),
)


def kubectl_hint(output: str) -> str:
    """The fix for a kubectl error message, or an empty string."""
    for pattern, hint in KUBECTL_HINTS:
        if re.search(pattern, output):
            return hint
    return ""


def _sources(what: Any) -> tuple[list[str], str | None]:
    """kubectl file arguments and stdin text for documents, a file or a kustomize directory."""
    if isinstance(what, (str, Path)):
        path = Path(what)
        if path.is_dir() and (path / "kustomization.yaml").exists():
            return ["-k", str(path)], None
        return ["-f", str(path)] + (["--recursive"] if path.is_dir() else []), None
    from kit.k8s.builders import to_yaml

    return ["-f", "-"], to_yaml(what)


def apply_command(args: list[str], *, dry_run: str | None = None, kubectl: str = "kubectl") -> list[str]:
    """``kubectl apply --server-side`` with the kit's field manager; ``dry_run`` is ``server`` or ``client``."""
    command = [kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", *args]
    return [*command, f"--dry-run={dry_run}"] if dry_run else command


def delete_command(args: list[str], *, wait: bool = True, kubectl: str = "kubectl") -> list[str]:
    return [kubectl, "delete", "--ignore-not-found", f"--wait={'true' if wait else 'false'}", *args]


def _kubectl(command: list[str], stdin: str | None, run: Runner, timeout: float) -> str:
    try:
        result = run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ClusterError(f"{command[0]} not found: see https://kubernetes.io/docs/tasks/tools/") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`{' '.join(command)}` did not finish in {timeout:g} s") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout or "").strip()
        hint = kubectl_hint(output)
        raise ClusterError(f"`{' '.join(command)}` failed:\n{output}" + (f"\nFix: {hint}" if hint else ""))
    return result.stdout


def apply(what: Any, *, dry_run: str | None = None, run: Runner = subprocess.run, timeout: float = 120) -> str:
    """Apply documents (a dict or list of dicts), a file, or a kustomize directory, server-side."""
    args, stdin = _sources(what)
    return _kubectl(apply_command(args, dry_run=dry_run), stdin, run, timeout)


def delete(what: Any, *, wait: bool = True, run: Runner = subprocess.run, timeout: float = 300) -> str:
    """Delete what :func:`apply` created; what is already gone is not an error."""
    args, stdin = _sources(what)
    return _kubectl(delete_command(args, wait=wait), stdin, run, timeout)


# --------------------------------------------------------------------------- readiness rules

WAITING, READY, FAILED = "waiting", "ready", "failed"


@dataclass(frozen=True)
class Verdict:
    state: str  # waiting | ready | failed
    reason: str


def condition(resource: dict, type_: str) -> dict | None:
    """The status condition of ``type_``, if the controller has set it."""
    for cond in (resource.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def _is_true(resource: dict, type_: str) -> bool:
    cond = condition(resource, type_)
    return bool(cond) and cond.get("status") == "True"


def _message(resource: dict, type_: str) -> str:
    cond = condition(resource, type_) or {}
    return ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x) or type_


def raycluster_verdict(obj: dict) -> Verdict:
    status = obj.get("status") or {}
    state = status.get("state")
    if state == "ready":
        return Verdict(READY, f"ready, {status.get('readyWorkerReplicas', 0)} worker(s) ready")
    if state == "failed":
        return Verdict(FAILED, status.get("reason") or "state failed")
    return Verdict(WAITING, f"state {state or 'not reported yet'}")


def rayjob_verdict(obj: dict) -> Verdict:
    status = obj.get("status") or {}
    deployment, job = status.get("jobDeploymentStatus"), status.get("jobStatus")
    if job == "SUCCEEDED" and deployment in ("Complete", None):
        return Verdict(READY, "job SUCCEEDED")
    if deployment == "Failed" or job in ("FAILED", "STOPPED"):
        detail = status.get("message") or status.get("reason") or ""
        return Verdict(FAILED, f"deployment {deployment}, job {job}" + (f": {detail}" if detail else ""))
    return Verdict(WAITING, f"deployment {deployment or 'not reported yet'}, job {job or '-'}")


def finished_verdict(obj: dict) -> Verdict:
    """TrainJob and batch Job: conditions Complete / Failed."""
    if _is_true(obj, "Complete"):
        return Verdict(READY, "Complete")
    if _is_true(obj, "Failed"):
        return Verdict(FAILED, _message(obj, "Failed"))
    if _is_true(obj, "Suspended"):
        return Verdict(WAITING, "suspended (Kueue has not admitted it yet?)")
    return Verdict(WAITING, "running or pending")


def ready_condition_verdict(obj: dict) -> Verdict:
    """RayService and InferenceService: condition Ready."""
    if _is_true(obj, "Ready"):
        url = (obj.get("status") or {}).get("url")
        return Verdict(READY, f"Ready{f' at {url}' if url else ''}")
    if (obj.get("status") or {}).get("serviceStatus") == "Running":  # RayService before conditions existed
        return Verdict(READY, "serviceStatus Running")
    return Verdict(WAITING, _message(obj, "Ready") if condition(obj, "Ready") else "no Ready condition yet")


def _ray_cluster_selectors(obj: dict) -> list[str]:
    status = obj.get("status") or {}
    names = {status.get("rayClusterName")}
    for key in ("activeServiceStatus", "pendingServiceStatus"):
        names.add((status.get(key) or {}).get("rayClusterName"))
    return [f"ray.io/cluster={n}" for n in sorted(n for n in names if n)]


@dataclass(frozen=True)
class Kind:
    """How to read one kind: its API coordinates, when it is done, and which pods are its own."""

    group: str
    version: str
    plural: str
    verdict: Callable[[dict], Verdict]
    pod_selectors: Callable[[str, dict], list[str]]
    goal: str  # "ready" or "finished", for messages

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS: dict[str, Kind] = {
    "RayCluster": Kind("ray.io", "v1", "rayclusters", raycluster_verdict,
                       lambda name, obj: [f"ray.io/cluster={name}"], "ready"),
    "RayJob": Kind("ray.io", "v1", "rayjobs", rayjob_verdict,
                   lambda name, obj: [*_ray_cluster_selectors(obj), f"batch.kubernetes.io/job-name={name}"],
                   "finished"),
    "RayService": Kind("ray.io", "v1", "rayservices", ready_condition_verdict,
                       lambda name, obj: _ray_cluster_selectors(obj) or [f"ray.io/originated-from-cr-name={name}"],
                       "ready"),
    "TrainJob": Kind("trainer.kubeflow.org", "v1alpha1", "trainjobs", finished_verdict,
                     lambda name, obj: [f"jobset.sigs.k8s.io/jobset-name={name}"], "finished"),
    "InferenceService": Kind("serving.kserve.io", "v1beta1", "inferenceservices", ready_condition_verdict,
                             lambda name, obj: [f"serving.kserve.io/inferenceservice={name}"], "ready"),
    "Job": Kind("batch", "v1", "jobs", finished_verdict,
                lambda name, obj: [f"batch.kubernetes.io/job-name={name}"], "finished"),
}


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"no wait rule for kind {name!r}; known: {', '.join(KINDS)}") from None


# --------------------------------------------------------------------------- what the cluster says


@dataclass
class Snapshot:
    """Everything known about one resource at one moment, as API dicts."""

    kind: str
    name: str
    namespace: str
    resource: dict | None = None
    workloads: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # "pod/container" -> tail
    errors: list[str] = field(default_factory=list)  # what could not be read, and why


class KubeAPI:
    """The few reads the waits need, through the kubernetes client, returned as JSON-shaped dicts."""

    def __init__(self) -> None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            # Name the file: the client reads $KUBECONFIG only once, when it is imported.
            existing = [p for p in kubeconfig_paths() if p.exists()]
            config.load_kube_config(config_file=str(existing[0]) if existing else None)
        self._client = client
        self._api = client.ApiClient()
        self.core = client.CoreV1Api()
        self.custom = client.CustomObjectsApi()
        self.batch = client.BatchV1Api()

    def _plain(self, obj: Any) -> Any:
        return self._api.sanitize_for_serialization(obj)

    def get(self, kind: str, name: str, namespace: str) -> dict | None:
        from kubernetes.client.rest import ApiException

        spec = kind_of(kind)
        try:
            if kind == "Job":
                return self._plain(self.batch.read_namespaced_job(name, namespace))
            return self.custom.get_namespaced_custom_object(spec.group, spec.version, namespace, spec.plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str) -> list[dict]:
        spec = kind_of(kind)
        if kind == "Job":
            return self._plain(self.batch.list_namespaced_job(namespace)).get("items", [])
        return self.custom.list_namespaced_custom_object(spec.group, spec.version, namespace, spec.plural)["items"]

    def pods(self, namespace: str, selector: str) -> list[dict]:
        return self._plain(self.core.list_namespaced_pod(namespace, label_selector=selector)).get("items", [])

    def events(self, namespace: str) -> list[dict]:
        return self._plain(self.core.list_namespaced_event(namespace)).get("items", [])

    def workloads(self, namespace: str) -> list[dict]:
        return self.custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", namespace, "workloads")["items"]

    def log_tail(self, namespace: str, pod: str, container: str, lines: int) -> str:
        return self.core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=lines)


def _owned_by(obj: dict, kind: str, name: str) -> bool:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("kind") == kind and o.get("name") == name for o in owners)


def collect(api: Any, kind: str, name: str, namespace: str, *, log_lines: int = 20, max_logs: int = 3) -> Snapshot:
    """Read the resource, its Kueue Workload, its pods, their events and log tails; never raise."""
    snap = Snapshot(kind, name, namespace)

    def attempt(what: str, read: Callable[[], Any], default: Any) -> Any:
        try:
            return read()
        except Exception as error:  # diagnostics must survive a missing CRD or a forbidden list
            snap.errors.append(f"could not read {what}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
            return default

    snap.resource = attempt(f"{kind}/{name}", lambda: api.get(kind, name, namespace), None)
    obj = snap.resource or {}
    if QUEUE_LABEL in ((obj.get("metadata") or {}).get("labels") or {}):
        snap.workloads = [w for w in attempt("Kueue workloads", lambda: api.workloads(namespace), [])
                          if _owned_by(w, kind, name)]
    seen: set[str] = set()
    for selector in kind_of(kind).pod_selectors(name, obj):
        for pod in attempt(f"pods {selector}", lambda s=selector: api.pods(namespace, s), []):
            if pod["metadata"]["name"] not in seen:
                seen.add(pod["metadata"]["name"])
                snap.pods.append(pod)
    names = {name, *seen, *(w["metadata"]["name"] for w in snap.workloads)}
    ray_cluster = (obj.get("status") or {}).get("rayClusterName")
    if ray_cluster:
        names.add(ray_cluster)
    snap.events = [e for e in attempt("events", lambda: api.events(namespace), [])
                   if (e.get("involvedObject") or {}).get("name") in names]
    for pod, container in log_targets(snap.pods)[:max_logs]:
        key = f"{pod}/{container}"
        snap.logs[key] = attempt(f"log of {key}", lambda p=pod, c=container: api.log_tail(namespace, p, c, log_lines),
                                 "")
    return snap


# --------------------------------------------------------------------------- formatting (pure)


def _container_statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def _state_text(state: dict) -> tuple[str, str]:
    """(short state, detail) of a container state dict."""
    for key in ("waiting", "terminated"):
        if state.get(key):
            inner = state[key]
            reason = inner.get("reason") or key
            if key == "terminated":
                reason += f", exit {inner.get('exitCode')}"
            return reason, inner.get("message") or ""
    return ("running" if state.get("running") else "unknown"), ""


def pod_line(pod: dict) -> str:
    """One line per pod: phase, node, and what is wrong with its containers or its scheduling."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    parts = [f"pod {name}: {status.get('phase', 'Unknown')}"]
    node = (pod.get("spec") or {}).get("nodeName")
    parts.append(f"on {node}" if node else "not scheduled")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            parts.append(f"[{cond.get('reason')}: {_short(cond.get('message', ''))}]")
    for cs in _container_statuses(pod):
        state, detail = _state_text(cs.get("state") or {})
        text = f"{cs['name']} {state}"
        if cs.get("restartCount"):
            last, _ = _state_text(cs.get("lastState") or {})
            text += f", {cs['restartCount']} restarts (last: {last})"
        if detail:
            text += f" ({_short(detail)})"
        if state != "running" or cs.get("restartCount") or not cs.get("ready", True):
            parts.append(text)
    return "  ".join(parts)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _event_time(event: dict) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def event_lines(events: Iterable[dict], limit: int = 15) -> list[str]:
    """The newest ``limit`` events, oldest first: type, reason, object, message and count."""
    ordered = sorted(events, key=_event_time)[-limit:]
    lines = []
    for e in ordered:
        obj = e.get("involvedObject") or {}
        count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
        lines.append(f"{e.get('type', '?'):<7} {e.get('reason', '?')} {obj.get('kind', '?')}/{obj.get('name', '?')}: "
                     f"{_short(e.get('message', ''))}{count}")
    return lines


def condition_lines(obj: dict) -> list[str]:
    return [f"{c.get('type')}={c.get('status')}" + (f" {c.get('reason')}" if c.get("reason") else "")
            + (f": {_short(c['message'])}" if c.get("message") else "")
            for c in (obj.get("status") or {}).get("conditions") or []]


def log_targets(pods: list[dict]) -> list[tuple[str, str]]:
    """(pod, container) worth a log tail: failing containers first, then each pod's first container."""
    failing, others = [], []
    for pod in pods:
        name = pod["metadata"]["name"]
        statuses = _container_statuses(pod)
        bad = [cs["name"] for cs in statuses
               if cs.get("restartCount") or (cs.get("state") or {}).get("terminated")
               or ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"]
        if bad:
            failing += [(name, c) for c in bad]
        elif statuses and (cs := statuses[-1]).get("state", {}).get("running"):
            others.append((name, cs["name"]))
    return failing + others


#: (pattern found in pod states, events or Workload conditions) -> fix.
HINTS: tuple[tuple[str, str], ...] = (
    (r"ImagePullBackOff|ErrImagePull|InvalidImageName",
     "an image cannot be pulled: check its name and tag (kit.versions.IMAGES) and that the nodes reach the "
     "registry; on kind, preload it with `kind load docker-image IMAGE --name cnai-kit`"),
    (r"OOMKilled", "a container ran out of memory and was killed: raise its memory (requests = limits) or use less"),
    (r"CrashLoopBackOff|Error, exit", "a container keeps failing: read its log tail above "
                                      "(and `kubectl logs --previous POD -c CONTAINER`)"),
    (r"Insufficient (cpu|memory|nvidia.com/gpu)", "no node has room for a pod: lower its requests, add nodes, or "
                                                  "give Docker more CPUs/memory (kind)"),
    (r"untolerated taint", "pods do not tolerate a node taint: add the toleration (GPU nodes: nvidia.com/gpu)"),
    (r"didn't match Pod's node affinity/selector", "no node carries the labels in the pod's nodeSelector/affinity"),
    (r"violates PodSecurity", "Pod Security 'restricted' refused the pods: `python -m kit validate` the manifest and "
                              "fix the securityContext fields it names"),
    (r"exceeded quota", "the namespace's ResourceQuota refused the pods: free quota or lower the requests"),
    (r"insufficient quota|couldn't assign flavors", "Kueue holds the workload: its ClusterQueue lacks quota; shrink "
                                                    "the workload or raise the ClusterQueue's nominalQuota"),
    (r"LocalQueue .* doesn't exist|does not exist", "the LocalQueue named in kueue.x-k8s.io/queue-name does not exist "
                                                    "in this namespace: apply clusters/base/kueue.yaml"),
)


def hints(snap: Snapshot) -> list[str]:
    """Fixes for what the snapshot shows, most specific first, each once."""
    if snap.resource is None and not snap.errors:
        return [f"{snap.kind}/{snap.name} does not exist in namespace {snap.namespace!r}: was it applied, "
                "to this namespace?"]
    text = "\n".join([*(pod_line(p) for p in snap.pods), *event_lines(snap.events, limit=1000),
                      *(line for w in snap.workloads for line in condition_lines(w))])
    found = [fix for pattern, fix in HINTS if re.search(pattern, text)]
    labels = ((snap.resource or {}).get("metadata") or {}).get("labels") or {}
    if QUEUE_LABEL in labels and not snap.workloads and not snap.pods:
        found.append(f"no Kueue Workload for this {snap.kind}: is Kueue installed and does the LocalQueue "
                     f"{labels[QUEUE_LABEL]!r} exist in {snap.namespace!r}?")
    elif snap.resource is not None and not snap.pods and not found:
        found.append("no pods yet: the operator may not be running (`clusters/install-operators.sh --check`)")
    return found


def explain(snap: Snapshot, headline: str) -> str:
    """The self-explaining report: headline, conditions, Workload, pods, events, log tails, hints."""
    out = [headline]
    obj = snap.resource
    if obj is not None:
        verdict = kind_of(snap.kind).verdict(obj)
        out.append(f"status: {verdict.state} ({verdict.reason})")
        out += ["conditions:", *(f"  {line}" for line in condition_lines(obj) or ["(none)"])]
    for workload in snap.workloads:
        out += [f"Kueue workload {workload['metadata']['name']}:",
                *(f"  {line}" for line in condition_lines(workload) or ["(no conditions)"])]
    out += ["pods:", *(f"  {pod_line(p)}" for p in snap.pods or [])] if snap.pods else ["pods: none"]
    out += ["recent events:", *(f"  {line}" for line in event_lines(snap.events))] if snap.events else \
        ["recent events: none"]
    for key, tail in snap.logs.items():
        lines = tail.rstrip().splitlines()
        out += [f"log tail {key} (last {len(lines)} lines):", *(f"  | {line}" for line in lines)]
    out += [f"note: {error}" for error in snap.errors]
    fixes = hints(snap)
    if fixes:
        out += ["what to try:", *(f"  - {fix}" for fix in fixes)]
    return "\n".join(out)


def write_bundle(snap: Snapshot, directory: Path | str, report: str | None = None) -> Path:
    """Write the snapshot as files under ``directory/<kind>-<name>/``; return that folder."""
    folder = Path(directory) / f"{snap.kind.lower()}-{snap.name}"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "report.txt").write_text((report or explain(snap, f"{snap.kind}/{snap.name}")) + "\n")
    (folder / "resource.yaml").write_text(yaml.safe_dump(snap.resource, sort_keys=False))
    (folder / "workloads.yaml").write_text(yaml.safe_dump_all(snap.workloads, sort_keys=False))
    (folder / "pods.yaml").write_text(yaml.safe_dump_all(snap.pods, sort_keys=False))
    (folder / "events.txt").write_text("\n".join(event_lines(snap.events, limit=1000)) + "\n")
    for key, tail in snap.logs.items():
        (folder / "logs" / (key.replace("/", "__") + ".log")).write_text(tail)
    return folder


# --------------------------------------------------------------------------- waiting


class WaitError(RuntimeError):
    """A wait ended badly; ``report`` explains why, ``snapshot`` holds what was read."""

    def __init__(self, report: str, snapshot: Snapshot, bundle: Path | None = None) -> None:
        super().__init__(report + (f"\ndiagnostics written to {bundle}" if bundle else ""))
        self.report, self.snapshot, self.bundle = report, snapshot, bundle


class WaitTimeout(WaitError, TimeoutError):
    """The resource did not become ready (or finish) in time."""


class WorkloadFailed(WaitError):
    """The resource reached a failed state."""


def wait_for(kind: str, name: str, namespace: str = "default", timeout: float = 600, *, api: Any = None,
             poll: float = 2.0, diagnostics_dir: Path | str | None = None,
             progress: Callable[[str], None] | None = print, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> dict:
    """Wait until ``kind/name`` is ready (RayCluster, RayService, InferenceService) or finished (RayJob,
    TrainJob, Job); return the resource. Raise :class:`WaitTimeout` or :class:`WorkloadFailed` with a report."""
    spec = kind_of(kind)
    api = api if api is not None else KubeAPI()
    began = clock()
    last = ""
    while True:
        obj = api.get(kind, name, namespace)
        verdict = spec.verdict(obj) if obj is not None else Verdict(WAITING, "not created yet")
        if verdict.state == READY:
            if progress:
                progress(f"{kind}/{name}: {verdict.reason} after {clock() - began:.0f} s")
            return obj
        waited = clock() - began
        if verdict.state == FAILED or waited >= timeout:
            snap = collect(api, kind, name, namespace)
            if verdict.state == FAILED:
                headline, error = f"{kind}/{name} in {namespace!r} failed: {verdict.reason}", WorkloadFailed
            else:
                headline = (f"{kind}/{name} in {namespace!r} not {spec.goal} after {waited:.0f} s "
                            f"(last status: {verdict.reason})")
                error = WaitTimeout
            report = explain(snap, headline)
            bundle = write_bundle(snap, diagnostics_dir, report) if diagnostics_dir else None
            raise error(report, snap, bundle)
        if progress and verdict.reason != last:
            progress(f"{kind}/{name}: {verdict.reason}")
            last = verdict.reason
        sleep(min(poll, max(timeout - waited, 0.1)))


def diagnose_namespace(namespace: str, directory: Path | str, api: Any = None) -> list[Path]:
    """A bundle for every resource of every known kind in ``namespace`` (used by `make test-cluster`)."""
    api = api if api is not None else KubeAPI()
    folders = []
    for kind in KINDS:
        try:
            items = api.list(kind, namespace)
        except Exception as error:  # the operator of this kind may not be installed
            print(f"{kind}: not listed ({type(error).__name__})")
            continue
        for item in items:
            snap = collect(api, kind, item["metadata"]["name"], namespace)
            report = explain(snap, f"{kind}/{snap.name} in {namespace!r}")
            print(report, "\n", sep="")
            folders.append(write_bundle(snap, directory, report))
    return folders


# --------------------------------------------------------------------------- port-forward


class PortForwardError(RuntimeError):
    """kubectl port-forward did not start; the message has its output."""


@dataclass
class PortForward:
    """``kubectl port-forward`` to ``target`` (e.g. ``svc/x``) on loopback, started and stopped by the kit."""

    target: str
    remote_port: int
    namespace: str = "default"
    local_port: int | None = None
    address: str = "127.0.0.1"
    kubectl: str = "kubectl"
    process: subprocess.Popen | None = field(default=None, repr=False)

    def command(self, local_port: int | None = None) -> list[str]:
        local = local_port or self.local_port or self.remote_port
        return [self.kubectl, "port-forward", "--address", self.address, "-n", self.namespace, self.target,
                f"{local}:{self.remote_port}"]

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.local_port}"

    def start(self, timeout: float = 20.0) -> str:
        """Start forwarding (idempotent); return the local URL once kubectl says it is forwarding."""
        if self.process is not None and self.process.poll() is None:
            return self.url
        if self.local_port is None or not port_is_free(self.local_port, self.address):
            chosen = free_port(self.local_port or self.remote_port, self.address)
            if chosen != (self.local_port or self.remote_port):
                print(f"port {self.local_port or self.remote_port} is in use here; forwarding {chosen} instead")
            self.local_port = chosen
        if shutil.which(self.kubectl) is None:
            raise PortForwardError(f"{self.kubectl} not found: install kubectl")
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        atexit.register(self.stop)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True).start()
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line.rstrip())
            if line.startswith("Forwarding from"):
                return self.url
        self.stop()
        output = "\n".join(seen) or "(no output)"
        raise PortForwardError(f"`{' '.join(self.command())}` did not start forwarding:\n{output}\n"
                               f"Fix: {kubectl_hint(output) or 'check that the target exists and its pod is running'}")

    def stop(self) -> None:
        """Stop kubectl (and nothing else); safe to call twice."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> PortForward:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump(stream: Any, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def dashboard(raycluster: str, namespace: str) -> PortForward:
    """The Ray dashboard (and Jobs API) of a RayCluster: its head Service, port 8265."""
    return PortForward(f"svc/{raycluster}-head-svc", 8265, namespace)


def serve_endpoint(rayservice: str, namespace: str) -> PortForward:
    """A RayService's Serve HTTP endpoint: its serve Service, port 8000."""
    return PortForward(f"svc/{rayservice}-serve-svc", 8000, namespace)


def inference_endpoint(isvc: str, namespace: str) -> PortForward:
    """An InferenceService in Standard mode: its predictor Service, port 80."""
    return PortForward(f"svc/{isvc}-predictor", 80, namespace, local_port=8080)


# --------------------------------------------------------------------------- command line


def cli(argv: list[str]) -> int:
    """``python -m kit cluster profile | wait KIND NAME | diagnostics``."""
    parser = argparse.ArgumentParser(prog="python -m kit cluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("profile", help="which profile this environment points at, and why")
    wait = sub.add_parser("wait", help="wait until a resource is ready or finished; explain a timeout")
    wait.add_argument("kind", choices=sorted(KINDS))
    wait.add_argument("name")
    wait.add_argument("-n", "--namespace", default="default")
    wait.add_argument("--timeout", type=float, default=600)
    wait.add_argument("--diagnostics", type=Path, help="write a diagnostics bundle here on failure")
    diag = sub.add_parser("diagnostics", help="report on and bundle every kit resource in a namespace")
    diag.add_argument("-n", "--namespace", default="kit")
    diag.add_argument("--out", type=Path, default=Path("build/cluster-diagnostics"))
    args = parser.parse_args(argv)
    if args.action == "profile":
        print(detect())
        return 0
    if args.action == "wait":
        try:
            wait_for(args.kind, args.name, args.namespace, args.timeout, diagnostics_dir=args.diagnostics)
        except WaitError as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    folders = diagnose_namespace(args.namespace, args.out)
    print(f"{len(folders)} bundle(s) under {args.out}")
    return 0
