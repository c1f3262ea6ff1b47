"""Diagnostics: what the cluster says about one resource, as a report that explains itself.

:func:`collect` reads a resource, its Kueue Workload, its pods, their events and log tails
into a :class:`Snapshot` (never raising); :func:`explain` turns a snapshot into a report with
hints; :func:`write_bundle` writes it as files; :func:`diagnose_namespace` does all three for
every resource of every kind the kit waits on (``python -m kit cluster diagnostics``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kit.k8s.live.api import ClusterReader, KubeAPI
from kit.k8s.live.kinds import KINDS, Resource, kind_of
from kit.versions import KIND_CLUSTER, QUEUE_LABEL

T = TypeVar("T")


@dataclass
class Snapshot:
    """Everything known about one resource at one moment, as API dicts."""

    kind: str
    name: str
    namespace: str
    resource: Resource | None = None
    workloads: list[Resource] = field(default_factory=list)
    pods: list[Resource] = field(default_factory=list)
    events: list[Resource] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # "pod/container" -> tail
    errors: list[str] = field(default_factory=list)  # what could not be read, and why



def _owned_by(obj: Resource, kind: str, name: str) -> bool:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("kind") == kind and o.get("name") == name for o in owners)


def collect(api: ClusterReader, kind: str, name: str, namespace: str, *, log_lines: int = 20,
            max_logs: int = 3) -> Snapshot:
    """Read the resource, its Kueue Workload, its pods, their events and log tails; never raise."""
    snap = Snapshot(kind, name, namespace)

    def attempt(what: str, read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except Exception as error:  # diagnostics must survive a missing CRD or a forbidden list
            snap.errors.append(f"could not read {what}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
            return default

    snap.resource = attempt(f"{kind}/{name}", partial(api.get, kind, name, namespace), None)
    obj = snap.resource or {}
    none: list[Resource] = []
    if QUEUE_LABEL in ((obj.get("metadata") or {}).get("labels") or {}):
        snap.workloads = [w for w in attempt("Kueue workloads", partial(api.workloads, namespace), none)
                          if _owned_by(w, kind, name)]
    seen: set[str] = set()
    for selector in kind_of(kind).pod_selectors(name, obj):
        for pod in attempt(f"pods {selector}", partial(api.pods, namespace, selector), none):
            if pod["metadata"]["name"] not in seen:
                seen.add(pod["metadata"]["name"])
                snap.pods.append(pod)
    names = {name, *seen, *(w["metadata"]["name"] for w in snap.workloads)}
    ray_cluster = (obj.get("status") or {}).get("rayClusterName")
    if ray_cluster:
        names.add(ray_cluster)
    snap.events = [e for e in attempt("events", partial(api.events, namespace), none)
                   if (e.get("involvedObject") or {}).get("name") in names]
    for pod_name, container in log_targets(snap.pods)[:max_logs]:
        key = f"{pod_name}/{container}"
        snap.logs[key] = attempt(f"log of {key}", partial(api.log_tail, namespace, pod_name, container, log_lines), "")
    return snap


# --------------------------------------------------------------------------- formatting (pure)


def _container_statuses(pod: Resource) -> list[Resource]:
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def _state_text(state: Resource) -> tuple[str, str]:
    """(short state, detail) of a container state dict."""
    for key in ("waiting", "terminated"):
        if state.get(key):
            inner = state[key]
            reason = inner.get("reason") or key
            if key == "terminated":
                reason += f", exit {inner.get('exitCode')}"
            return reason, inner.get("message") or ""
    return ("running" if state.get("running") else "unknown"), ""


def pod_line(pod: Resource) -> str:
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


def _short(value: Any, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _event_time(event: Resource) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def event_lines(events: Iterable[Resource], limit: int = 15) -> list[str]:
    """The newest ``limit`` events, oldest first: type, reason, object, message and count."""
    ordered = sorted(events, key=_event_time)[-limit:]
    lines = []
    for e in ordered:
        obj = e.get("involvedObject") or {}
        count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
        lines.append(f"{e.get('type', '?'):<7} {e.get('reason', '?')} {obj.get('kind', '?')}/{obj.get('name', '?')}: "
                     f"{_short(e.get('message', ''))}{count}")
    return lines


def condition_lines(obj: Resource) -> list[str]:
    """One line per status condition: type=status, reason and message."""
    return [f"{c.get('type')}={c.get('status')}" + (f" {c.get('reason')}" if c.get("reason") else "")
            + (f": {_short(c['message'])}" if c.get("message") else "")
            for c in (obj.get("status") or {}).get("conditions") or []]


def log_targets(pods: list[Resource]) -> list[tuple[str, str]]:
    """(pod, container) worth a log tail: failing containers first, then each pod's first container."""
    failing: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []
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
     "registry; on kind, preload it with `kind load docker-image IMAGE --name " + KIND_CLUSTER + "`"),
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
    (r"LocalQueue .* doesn't exist|does not exist", f"the LocalQueue named in {QUEUE_LABEL} does not exist "
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


def diagnose_namespace(namespace: str, directory: Path | str, api: ClusterReader | None = None,
                       progress: Callable[[str], None] = print) -> list[Path]:
    """A bundle for every resource of every known kind in ``namespace`` (used by `make test-cluster`);
    ``progress`` receives each report and each kind that could not be listed."""
    reader: ClusterReader = api if api is not None else KubeAPI()
    folders = []
    for kind in KINDS:
        try:
            items = reader.list(kind, namespace)
        except Exception as error:  # the operator of this kind may not be installed
            progress(f"{kind}: not listed ({type(error).__name__})")
            continue
        for item in items:
            snap = collect(reader, kind, item["metadata"]["name"], namespace)
            report = explain(snap, f"{kind}/{snap.name} in {namespace!r}")
            progress(report + "\n")
            folders.append(write_bundle(snap, directory, report))
    return folders
