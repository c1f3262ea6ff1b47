"""The isolation a hackathon plan promises, checked on its rendered RBAC and NetworkPolicies (:mod:`kit.k8s.access`).

For every pair of teams A != B: A's members and A's ServiceAccount may not read or create anything in B's
namespace or the scorer's, nor read the hidden labels; A's pods (a notebook, a Ray head, a server) cannot
connect to B's pods or to the scorer's. And what the event needs still works: the scorer reaches each team's
serving ports, every team reaches cluster DNS and its own pods, the JupyterHub proxy reaches the notebooks.
:func:`violations` lists what breaks either promise; ``python -m kit hackathon plan`` refuses a plan with any.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from kit.hackathon import teams
from kit.hackathon.event import Event
from kit.k8s import access
from kit.k8s.access import Pod, Subject
from kit.k8s.builders import core

#: What a member of another team must never do in a namespace: (verb, API group, resource).
FORBIDDEN = (("get", "", "pods"), ("list", "", "pods"), ("create", "", "pods"), ("get", "", "secrets"),
             ("list", "", "secrets"), ("create", "batch", "jobs"), ("create", "ray.io", "rayjobs"),
             ("create", "", "pods/portforward"), ("get", "", "pods/log"))
#: Where pods are made up for the check: one address per namespace and role.
_NETWORK = "10.244.{namespace}.{role}"
DNS_POD = Pod(core.DNS_NAMESPACE, core.DNS_LABELS, "10.96.0.10", "kube-dns")


def team_pods(namespace: str, index: int) -> list[Pod]:
    """A notebook server (it calls the API server), a Ray head and a model server in ``namespace``."""
    return [Pod(namespace, {**teams.notebook_labels(), "component": "singleuser-server"},
                _NETWORK.format(namespace=index, role=10), f"{namespace}/notebook"),
            Pod(namespace, dict(core.RAY_HEAD_LABELS), _NETWORK.format(namespace=index, role=11),
                f"{namespace}/ray-head"),
            Pod(namespace, {"app": "model-server"}, _NETWORK.format(namespace=index, role=12), f"{namespace}/server")]


def subjects(event: Event, team: str) -> list[Subject]:
    members = [Subject("User", member) for member in event.team(team).members]
    return [Subject("ServiceAccount", teams.TEAM_ACCOUNT, team), *members]


def _rbac(docs: list[dict[str, Any]], event: Event) -> Iterator[str]:
    scorer = event.scorer_namespace
    for team in event.teams:
        for who in subjects(event, team.name):
            if not access.rbac_allows(docs, who, "create", "rayjobs", team.name, group="ray.io"):
                yield f"{who.kind} {who.name} cannot create RayJobs in its own namespace {team.name}"
            for other in [t.name for t in event.teams if t.name != team.name] + [scorer]:
                for verb, group, resource in FORBIDDEN:
                    if access.rbac_allows(docs, who, verb, resource, other, group=group):
                        yield f"{who.kind} {who.name} of {team.name} may {verb} {resource} in {other}"
            if access.rbac_allows(docs, who, "get", "secrets", scorer, name=teams.LABELS_SECRET):
                yield f"{who.kind} {who.name} of {team.name} may read the hidden labels"
            for verb, group, resource in FORBIDDEN:
                if access.rbac_allows(docs, who, verb, resource, "", group=group):
                    yield f"{who.kind} {who.name} of {team.name} has a cluster-wide grant: {verb} {resource}"
    scorer_sa = Subject("ServiceAccount", teams.SCORER_ACCOUNT, scorer)
    if not access.rbac_allows(docs, scorer_sa, "get", "secrets", scorer, name=teams.LABELS_SECRET):
        yield "the scorer cannot read its hidden labels"


def _network(docs: list[dict[str, Any]], event: Event) -> Iterator[str]:
    names = event.team_names
    pods = {name: team_pods(name, i) for i, name in enumerate(names, start=1)}
    scorer = Pod(event.scorer_namespace, {"app": "scorer"}, "10.244.250.10", f"{event.scorer_namespace}/scorer")
    proxy = Pod(event.jupyterhub.namespace, {"component": "proxy", **teams.JUPYTERHUB_TO_NOTEBOOKS}, "10.244.251.10",
                "jupyterhub/proxy")
    hub = Pod(event.jupyterhub.namespace, teams.JUPYTERHUB_HUB, "10.244.251.11", "jupyterhub/hub")
    ports = (*teams.SERVING_PORTS, 22, 443, 6379, 8265, 10001, teams.NOTEBOOK_PORT)
    for name in names:
        for source in pods[name]:
            if not access.can_connect(docs, source, DNS_POD, 53, "UDP"):
                yield f"{source} cannot reach cluster DNS"
            if not access.can_connect(docs, source, pods[name][1], 10001):
                yield f"{source} cannot reach its own Ray head"
            for target in [p for other in names if other != name for p in pods[other]] + [scorer]:
                for port in ports:
                    if access.can_connect(docs, source, target, port):
                        yield f"{source} can connect to {target} on port {port}"
        for port in teams.SERVING_PORTS:
            if not access.can_connect(docs, scorer, pods[name][2], port):
                yield f"the scorer cannot reach {pods[name][2]} on serving port {port}"
        for port in (22, 6379, 8265, teams.NOTEBOOK_PORT):
            if access.can_connect(docs, scorer, pods[name][0], port):
                yield f"the scorer can reach {pods[name][0]} on port {port}, not a serving port"
        if not access.can_connect(docs, proxy, pods[name][0], teams.NOTEBOOK_PORT):
            yield f"the JupyterHub proxy cannot reach {pods[name][0]}"
        if not access.can_connect(docs, pods[name][0], hub, teams.HUB_API_PORT):
            yield f"{pods[name][0]} cannot reach the JupyterHub hub's API"


def violations(docs: Iterable[dict[str, Any]], event: Event) -> list[str]:
    """Every broken promise of isolation (and of what must stay reachable), as sentences; empty: isolated."""
    docs = list(docs)
    return [*_rbac(docs, event), *_network(docs, event)]
