"""What each team of an :class:`~kit.hackathon.event.Event` gets on the cluster, built by the kit's builders.

Per team, in a namespace named after it:

- the namespace enforces Pod Security ``restricted`` (enforce, audit and warn, at :data:`POD_SECURITY_VERSION`);
- a ResourceQuota and a LimitRange: the team's share, room to borrow it again from idle teams, and its members'
  notebook servers (each guaranteed ``jupyterhub.cpu_guarantee``/``memory_guarantee``, limited to the share);
- NetworkPolicies: deny everything (ingress and egress), then allow only the namespace's own pods, cluster DNS,
  the KubeRay operator on the Ray head's ports and the API server for pods labelled for it (the kit's own
  policies, :func:`kit.k8s.builders.core.network_policies`), the scorer on the serving ports, and the
  JupyterHub hub and proxy to the notebook servers (on their port), and the servers to the hub's API;
- a ServiceAccount the notebook servers run as, and a Role/RoleBinding with the kit's learner verbs
  (:func:`kit.k8s.builders.rbac.learner_rules`) for it and the team's members: nothing cluster-wide;
- Kueue: a ClusterQueue in the event's one Cohort (fair sharing, borrowing up to its share again, lending half
  of it) and a LocalQueue.

Shared: the Cohort, the ResourceFlavor(s), two WorkloadPriorityClasses (the organiser's scoring jobs outrank
the teams'), and the scorer's namespace, the one place the hidden labels' Secret may be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from kit import versions
from kit.deploy import layout
from kit.hackathon.event import Event
from kit.k8s.builders import core, kueue, pods, rbac, serving
from kit.k8s.requests import Requests

Docs = list[dict[str, Any]]
#: The Pod Security Standards version the namespaces enforce: the Kubernetes of the kit's kind node image.
POD_SECURITY_VERSION = "v" + ".".join(versions.IMAGES["kind-node"].split(":v")[1].split(".")[:2])
#: The label that marks a hackathon's namespaces (value: the event's name).
EVENT_LABEL = "cloud-native-ai-kit.io/hackathon"
#: The ports the scorer may reach in a team's namespace: Ray Serve's proxy and KServe's model server.
SERVING_PORTS = (versions.PORTS["ray-serve"], versions.PORTS["kserve"])
#: Zero to JupyterHub's ports: the proxy reaches each notebook server on 8888, a server calls the hub's API on 8081.
NOTEBOOK_PORT, HUB_API_PORT = 8888, 8081
#: The chart's label on the pods that may reach the notebook servers (the hub checks them, the proxy forwards to them).
JUPYTERHUB_TO_NOTEBOOKS = {"hub.jupyter.org/network-access-singleuser": "true"}
JUPYTERHUB_HUB = {"app": "jupyterhub", "component": "hub"}
TEAM_ACCOUNT = "team"
SCORER_ACCOUNT = "scorer"
#: The Secret with the hidden test labels: only the scorer's account may read it, only in its namespace.
LABELS_SECRET = "hidden-labels"
TEAM_PRIORITY, SCORING_PRIORITY = "hackathon-team", "hackathon-scoring"
GPU_FLAVOR = layout.GPU_FLAVOR  # the name clusters/ and `kit advise` give the GPU ResourceFlavor
PRIORITIES = {TEAM_PRIORITY: 100, SCORING_PRIORITY: 1000}
_NAME = "kubernetes.io/metadata.name"


@dataclass
class TeamPlan:
    """Everything :func:`render` writes: one document list per team and one shared."""

    event: Event
    shared: Docs = field(default_factory=list)
    teams: dict[str, Docs] = field(default_factory=dict)

    def files(self) -> dict[str, Docs]:
        """File name -> documents: ``shared.yaml`` (apply first), then ``<team>.yaml`` each."""
        return {"shared.yaml": self.shared, **{f"{name}.yaml": docs for name, docs in self.teams.items()}}

    def documents(self) -> Docs:
        return [doc for docs in self.files().values() for doc in docs]


def namespace(name: str, event: Event, role: str) -> dict[str, Any]:
    """A restricted namespace at the pinned Pod Security version, labelled with the event and its role."""
    doc = core.namespace(name)
    labels = doc["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}-version"] = POD_SECURITY_VERSION
    labels[EVENT_LABEL] = event.name
    labels[f"{EVENT_LABEL}-role"] = role
    return doc


def _in_namespace(ns: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {_NAME: ns}}, "podSelector": {"matchLabels": dict(labels or {})}}


def _ports(*numbers: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": number} for number in numbers]


def default_deny(ns: str) -> dict[str, Any]:
    """No pod of ``ns`` sends or receives anything that another policy does not allow."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


def _policy(name: str, ns: str, kind: str, rules: Docs, selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": {"podSelector": {"matchLabels": selector} if selector else {}, "policyTypes": [kind],
                     kind.lower(): rules}}


def team_network_policies(ns: str, event: Event) -> Docs:
    """Default deny, the kit's namespace policies, the scorer in on the serving ports, JupyterHub to the notebooks."""
    hub = event.jupyterhub.namespace
    return [
        default_deny(ns),
        *core.network_policies(ns, api_server_cidr=event.api_server_cidr),
        _policy("ingress-scorer", ns, "Ingress", [{"from": [_in_namespace(event.scorer_namespace)],
                                                   "ports": _ports(*SERVING_PORTS)}]),
        _policy("ingress-jupyterhub", ns, "Ingress", [{"from": [_in_namespace(hub, JUPYTERHUB_TO_NOTEBOOKS)],
                                                       "ports": _ports(NOTEBOOK_PORT)}]),
        _policy("egress-jupyterhub-hub", ns, "Egress", [{"to": [_in_namespace(hub, JUPYTERHUB_HUB)],
                                                         "ports": _ports(HUB_API_PORT)}]),
    ]


def scorer_network_policies(event: Event) -> Docs:
    """The scorer: default deny, its own pods, DNS, and each team's serving ports; nothing reaches it from outside."""
    ns = event.scorer_namespace
    dns = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    return [
        default_deny(ns),
        _policy("ingress-same-namespace", ns, "Ingress", [{"from": [{"podSelector": {}}]}]),
        _policy("egress-dns-namespace-and-teams", ns, "Egress", [
            {"to": [_in_namespace(core.DNS_NAMESPACE, core.DNS_LABELS)], "ports": dns},
            {"to": [{"podSelector": {}}]},
            {"to": [_in_namespace(team.name) for team in event.teams], "ports": _ports(*SERVING_PORTS)},
        ]),
    ]


def quota(ns: str, event: Event, members: int) -> dict[str, Any]:
    """The namespace's ResourceQuota: the share (twice, with what it may borrow) plus one notebook per member,
    each guaranteed the hub's minimum and limited to the share."""
    share, hub = event.resources.requests, event.jupyterhub
    guarantee = Requests.parse(hub.cpu_guarantee, hub.memory_guarantee)
    workloads = share * 2
    requested, limited = workloads + guarantee * members, workloads + share * members
    doc = core.resource_quota(ns, requested.cpu, requested.memory, share.gpus * 2,
                              pods_max=20 + members)
    doc["spec"]["hard"].update({"limits.cpu": limited.cpu, "limits.memory": limited.memory})
    return doc


def team_access(ns: str, members: tuple[str, ...], rules: Docs | None = None, name: str = rbac.ROLE,
                account: str = TEAM_ACCOUNT) -> Docs:
    """A ServiceAccount, and a Role and RoleBinding for it and ``members`` (``User:`` subjects) in ``ns`` only."""
    subjects = [rbac.subject(f"ServiceAccount:{account}", ns), *(rbac.subject(f"User:{m}") for m in members)]
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": ns}},
        {"apiVersion": rbac.RBAC_API_VERSION, "kind": "Role", "metadata": {"name": name, "namespace": ns},
         "rules": rules if rules is not None else rbac.learner_rules()},
        {"apiVersion": rbac.RBAC_API_VERSION, "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
         "roleRef": role_ref, "subjects": subjects},
    ]


def scorer_rules() -> Docs:
    """The scorer reads its hidden labels (one Secret), runs its Jobs and reads their pods and logs."""
    return [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [LABELS_SECRET]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": rbac.WRITE},
        {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": rbac.READ},
    ]


def cluster_queue(name: str, event: Event, namespaces: list[str]) -> dict[str, Any]:
    """A ClusterQueue with the team's share in the event's Cohort: fair sharing, borrowing up to its share again,
    lending at most half of it (the other half is always the team's), reclaiming what it lent."""
    share = event.resources.requests
    quotas: dict[str, dict[str, str | int]] = {versions.DEFAULT_FLAVOR: {"cpu": share.cpu, "memory": share.memory}}
    if share.gpus:
        quotas[GPU_FLAVOR] = {core.GPU_RESOURCE: share.gpus}
    cq = kueue.cluster_queue(name, quotas, namespaces=namespaces)
    cq["spec"].update({"cohortName": event.name, "fairSharing": {"weight": "1"},
                       "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"}})
    half = Requests(share.cpu_millis // 2, share.memory_bytes // 2, share.gpus // 2)
    lend = {"cpu": half.cpu, "memory": half.memory, core.GPU_RESOURCE: str(half.gpus)}
    for group in cq["spec"]["resourceGroups"]:
        for flavor in group["flavors"]:
            for resource in flavor["resources"]:
                resource["borrowingLimit"] = resource["nominalQuota"]
                resource["lendingLimit"] = lend[resource["name"]]
    return cq



def priority_class(name: str, value: int, description: str) -> dict[str, Any]:
    return {"apiVersion": versions.KUEUE_API_VERSION, "kind": "WorkloadPriorityClass", "metadata": {"name": name},
            "value": value, "description": description}


def render(event: Event) -> TeamPlan:
    """The plan of ``event``: shared documents and one list per team."""
    plan = TeamPlan(event)
    plan.shared.append(kueue.resource_flavor())
    if event.resources.gpu:
        scheduling = core.gpu_scheduling(1)
        plan.shared.append(kueue.resource_flavor(GPU_FLAVOR, scheduling["nodeSelector"], scheduling["tolerations"]))
    plan.shared += [
        {"apiVersion": versions.KUEUE_API_VERSION, "kind": "Cohort", "metadata": {"name": event.name}, "spec": {}},
        priority_class(TEAM_PRIORITY, PRIORITIES[TEAM_PRIORITY], "a team's workloads"),
        priority_class(SCORING_PRIORITY, PRIORITIES[SCORING_PRIORITY],
                       "the organiser's scoring jobs: admitted before any team's work"),
    ]
    scorer = event.scorer_namespace
    cpu_only = replace(event, resources=replace(event.resources, gpu=0))  # the scorer needs no GPU
    plan.shared += [namespace(scorer, event, "scorer"), quota(scorer, cpu_only, 0),
                    core.limit_range(scorer, "250m", "256Mi"), *scorer_network_policies(event),
                    *team_access(scorer, (), scorer_rules(), "hackathon-scorer", SCORER_ACCOUNT),
                    cluster_queue(scorer, cpu_only, [scorer]),
                    kueue.local_queue(versions.LOCAL_QUEUE, scorer, scorer)]
    for team in event.teams:
        ns = team.name
        plan.teams[ns] = [namespace(ns, event, "team"), quota(ns, event, len(team.members)),
                          core.limit_range(ns, "250m", "256Mi"), *team_network_policies(ns, event),
                          *team_access(ns, team.members), cluster_queue(ns, event, [ns]),
                          kueue.local_queue(versions.LOCAL_QUEUE, ns, ns), models_claim(ns, event)]
    return plan


def models_claim(ns: str, event: Event) -> dict[str, Any]:
    """The team's models volume: its notebooks write artifacts there, its InferenceService reads them."""
    hub = event.jupyterhub
    return serving.shared_claim(ns, serving.MODELS_CLAIM, hub.models_storage, "ReadWriteMany",
                                storage_class=hub.storage_class or None)


def notebook_labels() -> dict[str, str]:
    """Labels the notebook servers carry: they call the API server (PROFILE="cluster" submits Ray jobs)."""
    return {pods.API_ACCESS_LABEL: "true"}
