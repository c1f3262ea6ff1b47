"""Readiness verdicts: for each kind the kit waits on, when it is ready (or finished) or failed, and
which pods are its own. Pure functions of the resource's JSON, so tests feed them fake API responses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kit.errors import KitError
from kit.versions import API_RESOURCES, KSERVE_GROUP, RAY_GROUP, APIResource

#: A resource as the API returns it (JSON-shaped).
Resource = dict[str, Any]

WAITING, READY, FAILED = "waiting", "ready", "failed"


@dataclass(frozen=True)
class Verdict:
    state: str  # waiting | ready | failed
    reason: str


def condition(resource: Resource, type_: str) -> Resource | None:
    """The status condition of ``type_``, if the controller has set it."""
    for cond in (resource.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def _is_true(resource: Resource, type_: str) -> bool:
    cond = condition(resource, type_)
    return cond is not None and cond.get("status") == "True"


def _message(resource: Resource, type_: str) -> str:
    cond = condition(resource, type_) or {}
    return ": ".join(str(x) for x in (cond.get("reason"), cond.get("message")) if x) or type_


def raycluster_verdict(obj: Resource) -> Verdict:
    status = obj.get("status") or {}
    state = status.get("state")
    if state == "ready":
        return Verdict(READY, f"ready, {status.get('readyWorkerReplicas', 0)} worker(s) ready")
    if state == "failed":
        return Verdict(FAILED, status.get("reason") or "state failed")
    return Verdict(WAITING, f"state {state or 'not reported yet'}")


def rayjob_verdict(obj: Resource) -> Verdict:
    status = obj.get("status") or {}
    deployment, job = status.get("jobDeploymentStatus"), status.get("jobStatus")
    if job == "SUCCEEDED" and deployment in ("Complete", None):
        return Verdict(READY, "job SUCCEEDED")
    if deployment == "Failed" or job in ("FAILED", "STOPPED"):
        detail = status.get("message") or status.get("reason") or ""
        return Verdict(FAILED, f"deployment {deployment}, job {job}" + (f": {detail}" if detail else ""))
    return Verdict(WAITING, f"deployment {deployment or 'not reported yet'}, job {job or '-'}")


def finished_verdict(obj: Resource) -> Verdict:
    """TrainJob and batch Job: conditions Complete / Failed."""
    if _is_true(obj, "Complete"):
        return Verdict(READY, "Complete")
    if _is_true(obj, "Failed"):
        return Verdict(FAILED, _message(obj, "Failed"))
    if _is_true(obj, "Suspended"):
        return Verdict(WAITING, "suspended (Kueue has not admitted it yet?)")
    return Verdict(WAITING, "running or pending")


def ready_condition_verdict(obj: Resource) -> Verdict:
    """RayService and InferenceService: condition Ready."""
    if _is_true(obj, "Ready"):
        url = (obj.get("status") or {}).get("url")
        return Verdict(READY, f"Ready{f' at {url}' if url else ''}")
    if (obj.get("status") or {}).get("serviceStatus") == "Running":  # RayService before conditions existed
        return Verdict(READY, "serviceStatus Running")
    return Verdict(WAITING, _message(obj, "Ready") if condition(obj, "Ready") else "no Ready condition yet")


def _ray_cluster_selectors(obj: Resource) -> list[str]:
    status = obj.get("status") or {}
    names = {status.get("rayClusterName")}
    for key in ("activeServiceStatus", "pendingServiceStatus"):
        names.add((status.get(key) or {}).get("rayClusterName"))
    return [f"{RAY_GROUP}/cluster={n}" for n in sorted(n for n in names if n)]


@dataclass(frozen=True)
class Kind:
    """How to read one kind: its API coordinates, when it is done, and which pods are its own."""

    resource: APIResource
    verdict: Callable[[Resource], Verdict]
    pod_selectors: Callable[[str, Resource], list[str]]
    goal: str  # "ready" or "finished", for messages

    @property
    def group(self) -> str:
        return self.resource.group

    @property
    def version(self) -> str:
        return self.resource.version

    @property
    def plural(self) -> str:
        return self.resource.plural

    @property
    def api_version(self) -> str:
        return self.resource.api_version


KINDS: dict[str, Kind] = {
    "RayCluster": Kind(API_RESOURCES["RayCluster"], raycluster_verdict,
                       lambda name, obj: [f"{RAY_GROUP}/cluster={name}"], "ready"),
    "RayJob": Kind(API_RESOURCES["RayJob"], rayjob_verdict,
                   lambda name, obj: [*_ray_cluster_selectors(obj), f"batch.kubernetes.io/job-name={name}"],
                   "finished"),
    "RayService": Kind(API_RESOURCES["RayService"], ready_condition_verdict,
                       lambda name, obj: _ray_cluster_selectors(obj) or [f"{RAY_GROUP}/originated-from-cr-name={name}"],
                       "ready"),
    "TrainJob": Kind(API_RESOURCES["TrainJob"], finished_verdict,
                     lambda name, obj: [f"jobset.sigs.k8s.io/jobset-name={name}"], "finished"),
    "InferenceService": Kind(API_RESOURCES["InferenceService"], ready_condition_verdict,
                             lambda name, obj: [f"{KSERVE_GROUP}/inferenceservice={name}"], "ready"),
    "Job": Kind(API_RESOURCES["Job"], finished_verdict,
                lambda name, obj: [f"batch.kubernetes.io/job-name={name}"], "finished"),
}


class UnknownKindError(KitError, ValueError):
    """No wait rule exists for a kind."""


def kind_of(name: str) -> Kind:
    """The rules for kind ``name``; :class:`UnknownKindError` for a kind the kit does not wait on."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKindError(f"no wait rule for kind {name!r}; known: {', '.join(KINDS)}",
                               fix=f"wait for one of {', '.join(KINDS)}") from None
