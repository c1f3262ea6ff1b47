"""Who may do what, and who may connect to whom, read off rendered manifests (no cluster needed).

- :func:`rbac_allows`: whether a subject (a user, a group member or a ServiceAccount) may use ``verb`` on a
  resource in a namespace, from the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings given. RBAC is
  additive (Kubernetes' authorizer): a request is allowed when any binding of the subject grants it; a
  RoleBinding grants only in its own namespace (also when it refers to a ClusterRole); a ClusterRoleBinding
  everywhere. ServiceAccounts are also in the groups ``system:serviceaccounts``,
  ``system:serviceaccounts:<namespace>`` and ``system:authenticated``; users in ``system:authenticated``.
- :func:`can_connect`: whether a pod may open a connection to another pod's port, from the NetworkPolicies
  given, with the semantics of ``networking.k8s.io/v1``: a pod selected by no policy of a direction is open in
  that direction; a selected pod allows only what some selecting policy's rules allow; a connection needs the
  source's egress *and* the destination's ingress. Peers: ``podSelector`` alone means the policy's namespace,
  ``namespaceSelector`` alone every pod of the matching namespaces, both together the matching pods there,
  ``ipBlock`` the pods whose IP is inside it and not in ``except`` (some plugins never match pod IPs with an
  ipBlock; assuming they do errs towards reporting access).

Both are small on purpose: enough to prove the isolation of :mod:`kit.hackathon.teams`, and to let an
organiser ask "can team A reach team B?" of any plan.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Doc = Mapping[str, Any]
_NAME_LABEL = "kubernetes.io/metadata.name"


# --------------------------------------------------------------------------- RBAC


@dataclass(frozen=True)
class Subject:
    """``User`` or ``ServiceAccount`` (then ``namespace`` is its namespace), with the groups it belongs to."""

    kind: str
    name: str
    namespace: str = ""
    groups: tuple[str, ...] = ()

    def all_groups(self) -> set[str]:
        groups = set(self.groups) | {"system:authenticated"}
        if self.kind == "ServiceAccount":
            groups |= {"system:serviceaccounts", f"system:serviceaccounts:{self.namespace}"}
        return groups

    def named_by(self, subject: Doc, binding_namespace: str) -> bool:
        """Whether a binding's ``subjects`` entry names this subject (directly or through a group)."""
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "Group":
            return name in self.all_groups()
        if kind != self.kind or name != self.name:
            return False
        return kind != "ServiceAccount" or (subject.get("namespace") or binding_namespace) == self.namespace


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def _rule_allows(rule: Doc, verb: str, group: str, resource: str, name: str | None) -> bool:
    if not (_matches(rule.get("verbs", []), verb) and _matches(rule.get("apiGroups", []), group)
            and _matches(rule.get("resources", []), resource)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def rbac_allows(docs: Iterable[Doc], subject: Subject, verb: str, resource: str, namespace: str, *,
                group: str = "", name: str | None = None) -> bool:
    """Whether ``subject`` may ``verb`` the ``resource`` (plural, e.g. ``pods`` or ``pods/log``) of API ``group``
    in ``namespace`` (``""``: a cluster-scoped resource), optionally only the object ``name``."""
    docs = list(docs)
    roles = {(d.get("kind"), (d.get("metadata") or {}).get("namespace", ""), (d.get("metadata") or {}).get("name")):
             d for d in docs if d.get("kind") in ("Role", "ClusterRole")}
    for binding in docs:
        kind = binding.get("kind")
        if kind not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        where = (binding.get("metadata") or {}).get("namespace", "")
        if kind == "RoleBinding" and where != namespace:
            continue
        if not any(subject.named_by(s, where) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        role = roles.get((ref.get("kind"), where if ref.get("kind") == "Role" else "", ref.get("name")))
        if role and any(_rule_allows(rule, verb, group, resource, name) for rule in role.get("rules") or []):
            return True
    return False


# --------------------------------------------------------------------------- NetworkPolicy


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = ""
    name: str = ""

    def __str__(self) -> str:
        return self.name or f"{self.namespace}/{dict(self.labels)}"


def selector_matches(selector: Doc | None, labels: Mapping[str, str]) -> bool:
    """A label selector (``matchLabels`` and ``matchExpressions``); an empty one matches everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown label selector operator {operator!r}")
    return True


def _namespace_labels(namespace: str, known: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {**known.get(namespace, {}), _NAME_LABEL: namespace}  # the API server sets the name label


def _peer_matches(peer: Doc, pod: Pod, policy_namespace: str, namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    if "ipBlock" in peer:
        if not pod.ip:
            return False
        block, address = peer["ipBlock"], ipaddress.ip_address(pod.ip)
        inside = address in ipaddress.ip_network(block["cidr"], strict=False)
        return inside and not any(address in ipaddress.ip_network(c, strict=False) for c in block.get("except") or [])
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], _namespace_labels(pod.namespace, namespaces)):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), pod.labels)


def _port_matches(rule_ports: Iterable[Doc] | None, port: int, protocol: str) -> bool:
    rule_ports = list(rule_ports or [])
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        number = entry.get("port")
        if number is None:
            return True
        if isinstance(number, int) and number <= port <= int(entry.get("endPort", number)):
            return True
    return False  # a named port matches only pods that declare it; the evaluator knows no container ports


def _policy_types(policy: Doc) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _direction_allows(policies: list[Doc], pod: Pod, peer: Pod, direction: str, port: int, protocol: str,
                      namespaces: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether ``pod``'s policies of ``direction`` let it talk to ``peer`` (open when none selects it)."""
    selecting = [p for p in policies if (p.get("metadata") or {}).get("namespace") == pod.namespace
                 and direction in _policy_types(p) and selector_matches((p.get("spec") or {}).get("podSelector"),
                                                                       pod.labels)]
    if not selecting:
        return True
    peers_key = "from" if direction == "Ingress" else "to"
    for policy in selecting:
        for rule in (policy.get("spec") or {}).get(direction.lower()) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, peer, pod.namespace, namespaces) for p in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def can_connect(docs: Iterable[Doc], source: Pod, destination: Pod, port: int, protocol: str = "TCP", *,
                namespaces: Mapping[str, Mapping[str, str]] | None = None) -> bool:
    """Whether ``source`` may open a connection to ``destination``'s ``port`` under the NetworkPolicies in
    ``docs``; ``namespaces`` are the namespaces' labels (the Namespace documents in ``docs`` are read too)."""
    docs = list(docs)
    labels: dict[str, dict[str, str]] = {
        d["metadata"]["name"]: dict(d["metadata"].get("labels") or {}) for d in docs if d.get("kind") == "Namespace"}
    labels.update({ns: dict(given) for ns, given in (namespaces or {}).items()})
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    return (_direction_allows(policies, source, destination, "Egress", port, protocol, labels)
            and _direction_allows(policies, destination, source, "Ingress", port, protocol, labels))
