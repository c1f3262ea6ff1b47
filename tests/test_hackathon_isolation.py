"""A hackathon plan's rendered RBAC and NetworkPolicies keep teams apart and from the scorer (kit.k8s.access)."""

from __future__ import annotations

import copy
import itertools

import pytest

from kit.deploy import sizing
from kit.hackathon import event as ev
from kit.hackathon import isolation, plan, teams
from kit.k8s.access import Pod, Subject, can_connect, rbac_allows


@pytest.fixture(scope="module")
def the_event():
    data = ev.new_event("iso-test", 3, capacity=sizing.parse_capacity("16cpu,64Gi"), kind=False).to_mapping()
    data["teams"][0]["members"] = ["alice@example.org", "ann"]
    data["teams"][1]["members"] = ["bob@example.org"]
    return ev.from_mapping(data, "test")


@pytest.fixture(scope="module")
def docs(the_event):
    return plan.build(the_event).documents()


def test_the_rendered_plan_keeps_every_promise(docs, the_event):
    assert isolation.violations(docs, the_event) == []


def test_no_team_member_or_account_may_read_or_create_in_another_team_or_the_scorer(docs, the_event):
    names = the_event.team_names
    for mine, other in itertools.permutations(names, 2):
        for who in isolation.subjects(the_event, mine):
            assert rbac_allows(docs, who, "create", "rayjobs", mine, group="ray.io")
            assert rbac_allows(docs, who, "get", "pods", mine)
            for verb, resource in (("get", "pods"), ("create", "pods"), ("list", "secrets"), ("get", "pods/log")):
                assert not rbac_allows(docs, who, verb, resource, other)
                assert not rbac_allows(docs, who, verb, resource, the_event.scorer_namespace)
            assert not rbac_allows(docs, who, "get", "secrets", the_event.scorer_namespace, name=teams.LABELS_SECRET)
    scorer = Subject("ServiceAccount", teams.SCORER_ACCOUNT, the_event.scorer_namespace)
    assert rbac_allows(docs, scorer, "get", "secrets", the_event.scorer_namespace, name=teams.LABELS_SECRET)
    assert not rbac_allows(docs, scorer, "get", "secrets", the_event.scorer_namespace, name="another")


def test_pods_reach_dns_and_their_own_team_but_not_another_team_or_the_scorer(docs, the_event):
    a, b = the_event.team_names[:2]
    notebook_a, head_a, server_a = isolation.team_pods(a, 1)
    notebook_b, head_b, server_b = isolation.team_pods(b, 2)
    scorer = Pod(the_event.scorer_namespace, {"app": "scorer"}, "10.244.250.10")
    assert can_connect(docs, notebook_a, isolation.DNS_POD, 53, "UDP")
    assert can_connect(docs, notebook_a, head_a, 10001) and can_connect(docs, head_a, server_a, 8000)
    for source, target in itertools.product((notebook_a, head_a, server_a), (notebook_b, head_b, server_b, scorer)):
        for port in (*teams.SERVING_PORTS, 8265, 10001, 6379, 443):
            assert not can_connect(docs, source, target, port), (source, target, port)
    for port in teams.SERVING_PORTS:
        assert can_connect(docs, scorer, server_b, port)
    assert not can_connect(docs, scorer, head_b, 8265)


def test_a_cluster_wide_grant_to_all_users_is_reported(docs, the_event):
    leak = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "read-all"},
             "rules": [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "oops"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "read-all"},
             "subjects": [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]}]
    found = isolation.violations([*docs, *leak], the_event)
    a, b = the_event.team_names[:2]
    assert f"User alice@example.org of {a} may get pods in {b}" in found
    assert any("may read the hidden labels" in line for line in found)
    assert any("cluster-wide grant" in line for line in found)


def test_a_team_without_its_network_policies_is_reported(docs, the_event):
    a, b = the_event.team_names[:2]
    opened = [d for d in docs if not (d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == b)]
    found = isolation.violations(opened, the_event)
    # a's egress still stops most of it (both ends must allow); its API-server rule (any address, port 443) does not
    assert f"{a}/notebook can connect to {b}/server on port 443" in found
    assert f"{a}/notebook can connect to {b}/server on port 8000" not in found
    narrowed = ev.from_mapping({**the_event.to_mapping(), "api_server_cidr": "172.18.0.2/32"}, "narrowed")
    docs = [d for d in plan.build(narrowed).documents()
            if not (d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == b)]
    assert isolation.violations(docs, narrowed) == []  # with the API server's address, a's egress holds alone


def test_scorer_rules_widened_to_every_port_are_reported(docs, the_event):
    widened = copy.deepcopy(docs)
    b = the_event.team_names[1]
    for doc in widened:
        if doc["kind"] == "NetworkPolicy" and doc["metadata"] == {"name": "ingress-scorer", "namespace": b}:
            del doc["spec"]["ingress"][0]["ports"]
    assert isolation.violations(widened, the_event) == []  # the scorer's own egress still names the ports
    for doc in widened:
        if doc["kind"] == "NetworkPolicy" and doc["metadata"]["name"] == "egress-dns-namespace-and-teams":
            del doc["spec"]["egress"][2]["ports"]
    found = isolation.violations(widened, the_event)
    assert f"the scorer can reach {b}/notebook on port 8888, not a serving port" in found


def test_what_must_stay_reachable_is_reported_when_it_is_not(docs, the_event):
    a = the_event.team_names[0]
    no_dns = [d for d in docs if d["metadata"].get("name") != "egress-dns-and-namespace"]
    found = isolation.violations(no_dns, the_event)
    assert f"{a}/notebook cannot reach cluster DNS" in found
    no_hub = [d for d in docs if d["metadata"].get("name") != "egress-jupyterhub-hub"]
    assert f"{a}/notebook cannot reach the JupyterHub hub's API" in isolation.violations(no_hub, the_event)
    no_scorer = [d for d in docs if d["metadata"].get("name") != "ingress-scorer"]
    assert f"the scorer cannot reach {a}/server on serving port 8000" in isolation.violations(no_scorer, the_event)
