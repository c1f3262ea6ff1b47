"""kit.k8s.access: the RBAC and NetworkPolicy evaluator reports access where Kubernetes grants it, and not elsewhere."""

from __future__ import annotations

import pytest

from kit.k8s.access import Pod, Subject, can_connect, rbac_allows, selector_matches

RBAC = "rbac.authorization.k8s.io"


def _role(name, ns, rules, kind="Role"):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta, "rules": rules}


def _binding(name, ns, role, subjects, kind="RoleBinding", role_kind="Role"):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role}, "subjects": subjects}


READ_PODS = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
ALICE = Subject("User", "alice")


def test_a_role_binding_grants_only_in_its_namespace():
    docs = [_role("r", "a", READ_PODS), _binding("b", "a", "r", [{"kind": "User", "name": "alice"}])]
    assert rbac_allows(docs, ALICE, "get", "pods", "a")
    assert not rbac_allows(docs, ALICE, "get", "pods", "b")
    assert not rbac_allows(docs, ALICE, "delete", "pods", "a")
    assert not rbac_allows(docs, ALICE, "get", "secrets", "a")
    assert not rbac_allows(docs, Subject("User", "bob"), "get", "pods", "a")


def test_a_cluster_role_binding_grants_everywhere_and_a_role_binding_to_a_cluster_role_only_in_its_namespace():
    cluster = [_role("c", "", READ_PODS, "ClusterRole"),
               _binding("cb", "", "c", [{"kind": "Group", "name": "devs"}], "ClusterRoleBinding", "ClusterRole")]
    dev = Subject("User", "dan", groups=("devs",))
    assert rbac_allows(cluster, dev, "list", "pods", "anywhere")
    assert not rbac_allows(cluster, ALICE, "list", "pods", "anywhere")
    local = [_role("c", "", READ_PODS, "ClusterRole"),
             _binding("b", "a", "c", [{"kind": "User", "name": "alice"}], role_kind="ClusterRole")]
    assert rbac_allows(local, ALICE, "get", "pods", "a")
    assert not rbac_allows(local, ALICE, "get", "pods", "b")


def test_service_accounts_their_groups_wildcards_and_resource_names():
    sa = Subject("ServiceAccount", "runner", "a")
    docs = [_role("r", "a", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            _binding("b", "a", "r", [{"kind": "Group", "name": "system:serviceaccounts:a"}]),
            _role("s", "b", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                              "resourceNames": ["one"]}]),
            _binding("sb", "b", "s", [{"kind": "ServiceAccount", "name": "runner", "namespace": "a"}])]
    assert rbac_allows(docs, sa, "create", "rayjobs", "a", group="ray.io")
    assert not rbac_allows(docs, Subject("ServiceAccount", "runner", "c"), "create", "pods", "a")
    assert rbac_allows(docs, sa, "get", "secrets", "b", name="one")
    assert not rbac_allows(docs, sa, "get", "secrets", "b", name="two")
    assert not rbac_allows(docs, sa, "get", "secrets", "b")  # a get of any Secret is not "one"
    # a ServiceAccount subject names the account of one namespace only
    assert not rbac_allows(docs, Subject("ServiceAccount", "runner", "b"), "get", "secrets", "b", name="one")


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ({}, {"a": "1"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
])
def test_label_selectors(selector, labels, matches):
    assert selector_matches(selector, labels) is matches


def _policy(name, ns, spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


A, B = Pod("a", {"app": "x"}, "10.0.1.1"), Pod("b", {"app": "y"}, "10.0.2.1")
DENY_B = _policy("deny", "b", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def test_no_policy_means_open_and_default_deny_closes_either_end():
    assert can_connect([], A, B, 80)
    assert not can_connect([DENY_B], A, B, 80)
    assert not can_connect([DENY_B], B, A, 80)  # egress of b is denied too
    assert can_connect([DENY_B], A, Pod("a", {}), 80)


def test_both_ingress_at_the_destination_and_egress_at_the_source_must_allow():
    allow_in = _policy("in", "b", {"podSelector": {"matchLabels": {"app": "y"}}, "policyTypes": ["Ingress"],
                                   "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                                       "kubernetes.io/metadata.name": "a"}}}], "ports": [{"port": 8000}]}]})
    assert can_connect([DENY_B, allow_in], A, B, 8000)
    assert not can_connect([DENY_B, allow_in], A, B, 8001)
    assert not can_connect([DENY_B, allow_in], A, B, 8000, "UDP")
    assert not can_connect([DENY_B, allow_in], Pod("c", {"app": "x"}), B, 8000)
    deny_a = _policy("deny", "a", {"podSelector": {}, "policyTypes": ["Egress"]})
    assert not can_connect([DENY_B, allow_in, deny_a], A, B, 8000)
    block = {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.3.0/24"]}}
    allow_out = _policy("out", "a", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [block]}]})
    assert can_connect([DENY_B, allow_in, deny_a, allow_out], A, B, 8000)
    assert not can_connect([deny_a, allow_out], A, Pod("b", {}, "10.0.3.5"), 8000)


def test_a_pod_selector_alone_means_the_policy_namespace_and_both_selectors_must_match():
    same_ns = _policy("same", "b", {"podSelector": {}, "policyTypes": ["Ingress"],
                                    "ingress": [{"from": [{"podSelector": {}}]}]})
    assert not can_connect([same_ns], A, B, 80)
    assert can_connect([same_ns], Pod("b", {}), B, 80)
    both = _policy("both", "b", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "red"}}, "podSelector": {"matchLabels": {"app": "x"}}}]}]})
    assert can_connect([both], A, B, 80, namespaces={"a": {"team": "red"}})
    assert not can_connect([both], A, B, 80, namespaces={"a": {"team": "blue"}})
    assert not can_connect([both], Pod("a", {"app": "z"}), B, 80, namespaces={"a": {"team": "red"}})
    ns_doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "red"}}}
    assert can_connect([both, ns_doc], A, B, 80)


def test_port_ranges_and_rules_without_ports():
    ranged = _policy("r", "b", {"podSelector": {}, "policyTypes": ["Ingress"],
                                "ingress": [{"ports": [{"port": 7000, "endPort": 7010, "protocol": "TCP"}]}]})
    assert can_connect([ranged], A, B, 7005) and not can_connect([ranged], A, B, 7011)
    open_rule = _policy("o", "b", {"podSelector": {}, "ingress": [{}]})  # policyTypes defaults to Ingress
    assert can_connect([open_rule], A, B, 1)
