"""Preflight, access: may this user create each kind the plan has, where the plan puts it?

One ``SelfSubjectAccessReview`` per kind and verb (the API server answers for whoever asks, no admin
needed). The verbs are ``create`` and ``patch``: ``kubectl apply --server-side`` (what the kit runs)
sends a PATCH, which the API server also authorises as a create when the object does not exist yet
(kubernetes ``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go``: an apply patch's
``createAuthorizerAttributes`` carry ``Verb: "create"``).
Cluster-scoped kinds (Namespace, ResourceFlavor, ClusterQueue, ClusterTrainingRuntime) are the
organiser's: a learner who may not create them needs the platform step applied for them.
"""

from __future__ import annotations

from typing import Any

from kit.k8s.live.preflight import FAIL, OK, WARN, Check, ClusterAPI
from kit.versions import API_RESOURCES

AREA = "access"
REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
VERBS = ("create", "patch")


def resource_of(kind: str, api_version: str) -> tuple[str, str]:
    """(group, plural) of a kind: the kit's table, else the API machinery's guess (lower case, ``y`` -> ``ies``,
    ``s`` -> ``ses``, else ``+s``: apimachinery ``pkg/api/meta/restmapper.go``, ``UnsafeGuessKindToResource``)."""
    group = api_version.rpartition("/")[0]
    known = API_RESOURCES.get(kind)
    if known is not None and known.group == group:
        return group, known.plural
    lower = kind.lower()
    if lower.endswith("s"):
        return group, lower + "es"
    if lower.endswith("y"):
        return group, lower[:-1] + "ies"
    return group, lower + "s"


def targets(documents: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(kind, group, plural, namespace or "") of each kind in the plan, once per namespace, in plan order."""
    seen: dict[tuple[str, str, str, str], None] = {}
    for doc in documents:
        group, plural = resource_of(doc["kind"], doc["apiVersion"])
        seen[(doc["kind"], group, plural, (doc.get("metadata") or {}).get("namespace", ""))] = None
    return list(seen)


def review(verb: str, group: str, plural: str, namespace: str) -> dict[str, Any]:
    """The SelfSubjectAccessReview asking whether this user may ``verb`` ``plural`` in ``namespace``."""
    attributes = {"verb": verb, "group": group, "resource": plural}
    if namespace:
        attributes["namespace"] = namespace
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}


def check_access(api: ClusterAPI, documents: list[dict[str, Any]]) -> list[Check]:
    """One line per kind: which of create/patch this user may do, and the Role to ask for when not."""
    checks = []
    for kind, group, plural, namespace in targets(documents):
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        denied, unknown = [], []
        for verb in VERBS:
            answer = api.post_json(REVIEWS, review(verb, group, plural, namespace))
            status = answer.body.get("status") or {}
            if not answer.ok:
                unknown.append(f"{verb}: {answer.message}")
            elif not status.get("allowed"):
                denied.append(verb + (f" ({status['reason']})" if status.get("reason") else ""))
        resource = f"{plural}.{group}" if group else plural
        role = "ClusterRole" if not namespace else "Role"
        if denied:
            checks.append(Check(AREA, kind, FAIL, f"may not {', '.join(denied)} {resource} {where}",
                                f"ask the organiser for a {role} allowing create and patch on {resource} {where}"
                                + ("" if namespace else ", or to apply the platform step for you")))
        elif unknown:
            checks.append(Check(AREA, kind, WARN, f"could not ask about {resource}: {'; '.join(unknown)}",
                                "check that the API server serves authorization.k8s.io/v1"))
        else:
            checks.append(Check(AREA, kind, OK, f"may create and patch {resource} {where}"))
    return checks
