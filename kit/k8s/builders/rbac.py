"""What a learner may do in the kit's namespace: a Role, its RoleBinding, and one read-only ClusterRole.

The verbs are those the notebooks and ``python -m kit`` use, and no more:

- apply and delete the workloads of stages 01-09 (``kubectl apply --server-side`` creates or
  patches, ``kubectl delete --wait`` deletes and watches; the Kubeflow SDK's ``TrainerClient``
  creates, gets, lists and deletes TrainJobs): Jobs, PersistentVolumeClaims, RayJobs,
  RayClusters, RayServices, TrainJobs and InferenceServices;
- read what the waits and diagnostics read (:mod:`kit.k8s.live`): pods and their logs, events,
  Services, Kueue LocalQueues and Workloads, namespaced TrainingRuntimes;
- ``kubectl port-forward`` to the servers and the Ray dashboard (``pods/portforward``; ``get``
  for clients that open it as a WebSocket, ``create`` for the rest);
- read the Ray auth token of the standing RayCluster (``kit-raycluster``: KubeRay's Secret named
  after the cluster), which the Ray Client and dashboard ask for; no other Secret.

Not granted: Roles, NetworkPolicies, quotas, Namespaces, anything in another namespace. An
admin applies the platform (``clusters/base`` or the plan's ``platform`` step).

The one cluster-wide grant is read-only and names one kind: ``TrainerClient.list_runtimes()`` and
``get_runtime()`` (Kubeflow SDK 0.5.0, ``kubeflow/trainer/backends/kubernetes/backend.py``) read the
cluster-scoped ClusterTrainingRuntimes, which a namespaced Role cannot grant. (The client's
``verify_backend`` also reads a ConfigMap in ``kubeflow-system``; it only logs a warning when it may
not, so that is not granted.)
"""

from __future__ import annotations

from typing import Any

from kit import versions
from kit.errors import KitError

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
ROLE = "kit-learner"
RUNTIME_READER = "kit-learner-training-runtimes"
#: Who the learners are by default: a group, as an identity provider (OIDC) or an admin maps users to it.
DEFAULT_SUBJECT = "Group:kit-learners"

READ = ["get", "list", "watch"]
WRITE = [*READ, "create", "patch", "delete"]


class SubjectError(KitError, ValueError):
    """A learner subject that is not ``Group:NAME``, ``User:NAME`` or ``ServiceAccount:NAME``."""


def _group(kind: str) -> str:
    return versions.API_RESOURCES[kind].group


def _plural(kind: str) -> str:
    return versions.API_RESOURCES[kind].plural


def _rule(group: str, resources: list[str], verbs: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = names
    return rule


def learner_rules(ray_cluster: str = versions.RAY_CLUSTER) -> list[dict[str, Any]]:
    """The Role's rules: write the kit's workloads, read what diagnoses them, forward ports."""
    return [
        _rule(versions.RAY_GROUP, [_plural(k) for k in ("RayJob", "RayCluster", "RayService")], WRITE),
        _rule(versions.TRAINER_GROUP, [_plural("TrainJob")], WRITE),
        _rule(versions.TRAINER_GROUP, [_plural("TrainingRuntime")], READ),
        _rule(versions.KSERVE_GROUP, [_plural("InferenceService")], WRITE),
        _rule(_group("Job"), [_plural("Job")], WRITE),
        _rule("", ["persistentvolumeclaims"], WRITE),
        _rule(versions.KUEUE_GROUP, [_plural("LocalQueue"), _plural("Workload")], READ),
        _rule("", ["pods", "pods/log", "events", "services"], READ),
        _rule("", ["pods/portforward"], ["get", "create"]),
        _rule("", ["secrets"], ["get"], [ray_cluster]),
    ]


def subject(spec: str = DEFAULT_SUBJECT, namespace: str = versions.NAMESPACE) -> dict[str, Any]:
    """A RoleBinding subject from ``Group:NAME``, ``User:NAME`` or ``ServiceAccount:NAME`` (in ``namespace``,
    e.g. the account JupyterHub's notebook pods run as)."""
    kind, _, name = spec.partition(":")
    if kind not in ("Group", "User", "ServiceAccount") or not name:
        raise SubjectError(f"learner subject {spec!r} names no Group, User or ServiceAccount",
                           fix="write it as Group:NAME, User:NAME or ServiceAccount:NAME, e.g. Group:kit-learners")
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def learner_access(namespace: str = versions.NAMESPACE, learners: str = DEFAULT_SUBJECT) -> list[dict[str, Any]]:
    """The learners' Role and RoleBinding in ``namespace``, and the read-only runtime ClusterRole and its binding.

    ``learners`` is who gets them (:func:`subject`), by default the group ``kit-learners``.
    """
    who = [subject(learners, namespace)]
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE}
    runtimes = _rule(versions.TRAINER_GROUP, [_plural("ClusterTrainingRuntime")], READ)
    reader = f"{RUNTIME_READER}-{namespace}"  # one binding per namespace of learners
    return [
        {"apiVersion": RBAC_API_VERSION, "kind": "Role", "metadata": {"name": ROLE, "namespace": namespace},
         "rules": learner_rules()},
        {"apiVersion": RBAC_API_VERSION, "kind": "RoleBinding", "metadata": {"name": ROLE, "namespace": namespace},
         "roleRef": role_ref, "subjects": who},
        {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": RUNTIME_READER},
         "rules": [runtimes]},
        {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": reader},
         "roleRef": {**role_ref, "kind": "ClusterRole", "name": RUNTIME_READER}, "subjects": who},
    ]
