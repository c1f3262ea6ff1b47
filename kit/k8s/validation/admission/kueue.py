"""Kueue v0.19.2 admission: the ClusterQueue and ResourceFlavor webhooks (kubernetes-sigs/kueue@v0.19.2
``pkg/webhooks/``) with the ClusterQueue CRD's CEL rules, and the job integrations' webhooks
(``pkg/controller/jobs/<kind>/<kind>_webhook.go`` and ``pkg/controller/jobframework/validation.go``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kit.k8s.validation.admission.fields import dicts, dig, items
from kit.k8s.validation.admission.names import dns1123_subdomain, label_value, qualified_name, quantity
from kit.k8s.validation.problems import PathParts, short_value
from kit.versions import ELASTIC_JOB_ANNOTATION, QUEUE_LABEL, RAY_API_VERSION, RAY_GROUP

Found = list[tuple[PathParts, str]]

#: ``constants.MaxExecTimeSecondsLabel`` (pkg/controller/constants/constants.go).
MAX_EXEC_TIME_LABEL = "kueue.x-k8s.io/max-exec-time-seconds"
#: ``constants.ElasticJobAnnotation`` ("true": workload slicing, feature gate ElasticJobsViaWorkloadSlices,
#: beta and on since v0.18); the Ray webhooks' ``Default`` adds the scheduling gates it needs.
ELASTIC_ANNOTATION = ELASTIC_JOB_ANNOTATION
#: ``supportedElasticJobGVKs`` (pkg/controller/jobframework/validation.go).
ELASTIC_KINDS = frozenset({("batch/v1", "Job"), (RAY_API_VERSION, "RayCluster"), (RAY_API_VERSION, "RayJob"),
                           (RAY_API_VERSION, "RayService")})
#: ``jobframework.MaxPodSets``: a Workload holds at most this many pod sets (head + worker groups for Ray).
MAX_POD_SETS = 18
#: ``headGroupPodSetName`` in pkg/controller/jobs/raycluster/raycluster_controller.go.
HEAD_POD_SET = "head"


def job_problems(body: dict[str, Any]) -> Found:
    """Rules of ``jobframework.ValidateJobOnCreate`` for every job integration: the queue-name label is a
    DNS-1123 subdomain (``ValidateQueueName``) and max-exec-time-seconds a positive integer
    (``validateCreateForMaxExecTime``), the elastic-job annotation only on kinds that support it
    (``ValidateElasticJobAnnotation``); plus the Ray integrations' own rules when the job is queued."""
    metadata = dig(body, "metadata")
    labels = dig(metadata, "labels")
    found: Found = []
    queue = labels.get(QUEUE_LABEL)
    if isinstance(queue, str):
        found += [(("metadata", "labels", QUEUE_LABEL), f"queue name {queue!r}: {reason}")
                  for reason in dns1123_subdomain(queue)]
    max_exec = labels.get(MAX_EXEC_TIME_LABEL)
    if max_exec is not None and not (str(max_exec).isdigit() and int(str(max_exec)) > 0):
        found.append((("metadata", "labels", MAX_EXEC_TIME_LABEL), f"must be an integer greater than 0; "
                                                                   f"got {short_value(max_exec)}"))
    elastic = (metadata.get("annotations") or {}).get(ELASTIC_ANNOTATION) == "true"
    if elastic and (body.get("apiVersion"), body.get("kind")) not in ELASTIC_KINDS:
        found.append((("metadata", "annotations", ELASTIC_ANNOTATION),
                      f"elastic job is not supported for {body.get('kind')}: only "
                      f"{', '.join(sorted(kind for _, kind in ELASTIC_KINDS))}"))
    if queue is None or str(body.get("apiVersion", "")).rpartition("/")[0] != RAY_GROUP:
        return found
    spec = dig(body, "spec")
    kind = body.get("kind")
    if kind == "RayCluster":
        found += ray_cluster_problems(("spec",), spec, elastic)
    elif kind == "RayService" and isinstance(spec.get("rayClusterConfig"), dict):
        found += ray_cluster_problems(("spec", "rayClusterConfig"), spec["rayClusterConfig"], elastic)
    elif kind == "RayJob":
        found += rayjob_problems(spec, elastic)
    return found


def rayjob_problems(spec: dict[str, Any], elastic: bool) -> Found:
    """A queued RayJob brings its own cluster and deletes it when done (``RayJobWebhook.validateCreate``,
    pkg/controller/jobs/rayjob/rayjob_webhook.go)."""
    has_selector, cluster = bool(spec.get("clusterSelector")), spec.get("rayClusterSpec")
    if has_selector and cluster is not None:
        return [(("spec", "clusterSelector"), "a kueue managed job should not use an existing cluster: "
                                              "drop clusterSelector or the queue label")]
    if has_selector:
        return []  # a RayJob on an existing cluster is not managed by Kueue
    if not isinstance(cluster, dict):
        return [(("spec", "rayClusterSpec"), "rayClusterSpec is required for Kueue-managed jobs that don't "
                                             "use clusterSelector")]
    found: Found = []
    if spec.get("shutdownAfterJobFinishes") is not True:
        found.append((("spec", "shutdownAfterJobFinishes"), "a kueue managed job should delete the cluster "
                                                            "after finishing (shutdownAfterJobFinishes: true)"))
    return found + ray_cluster_problems(("spec", "rayClusterSpec"), cluster, elastic)


def ray_cluster_problems(base: PathParts, spec: dict[str, Any], elastic: bool) -> Found:
    """A queued Ray cluster spec: no autoscaling unless elastic, at most 17 worker groups, none named
    ``head`` (``raycluster.ValidateCreate`` in pkg/controller/jobs/raycluster/common.go and
    ``RayClusterWebhook.validateCreate``)."""
    found: Found = []
    if spec.get("enableInTreeAutoscaling") is True and not elastic:
        found.append(((*base, "enableInTreeAutoscaling"),
                      f"a kueue-managed Ray cluster can use autoscaling only as an elastic job: set the "
                      f"{ELASTIC_ANNOTATION}: 'true' annotation, or drop the queue label"))
    groups = items(spec.get("workerGroupSpecs"))
    if len(groups) + 1 > MAX_POD_SETS:
        found.append(((*base, "workerGroupSpecs"), f"too many pod sets: {len(groups) + 1} (head and "
                                                   f"{len(groups)} worker groups), Kueue allows {MAX_POD_SETS}"))
    for i, group in enumerate(groups):
        if isinstance(group, dict) and group.get("groupName") == HEAD_POD_SET:
            found.append(((*base, "workerGroupSpecs", i, "groupName"),
                          f"{HEAD_POD_SET!r} is reserved for the head group"))
    return found


def cluster_queue_problems(spec: dict[str, Any]) -> Found:
    """``ValidateClusterQueue`` (pkg/webhooks/clusterqueue_webhook.go) and the CEL rules of
    kueue.x-k8s.io_clusterqueues.yaml: resource groups, quotas and limits, preemption, fungibility, fair sharing."""
    found = _resource_group_problems(spec)
    preemption = dig(spec, "preemption")
    borrow = preemption.get("borrowWithinCohort")
    borrow_policy = dig(preemption, "borrowWithinCohort").get("policy", "Never")  # the CRD's default
    if preemption.get("reclaimWithinCohort") == "Never" and borrow is not None and borrow_policy != "Never":
        found.append((("spec", "preemption"), "reclaimWithinCohort=Never and borrowWithinCohort.Policy!=Never"))
    fungibility = dig(spec, "flavorFungibility")
    # the CRD defaults: whenCanBorrow MayStopSearch, whenCanPreempt TryNextFlavor
    borrow_next = fungibility.get("whenCanBorrow", "MayStopSearch") == "TryNextFlavor"
    if fungibility.get("preference") is not None and not (
            borrow_next and fungibility.get("whenCanPreempt", "TryNextFlavor") == "TryNextFlavor"):
        found.append((("spec", "flavorFungibility", "preference"),
                      "preference requires both whenCanBorrow and whenCanPreempt to be TryNextFlavor"))
    weight = quantity(dig(spec, "fairSharing").get("weight"))
    if weight is not None and weight < 0:
        found.append((("spec", "fairSharing", "weight"), "must be greater than or equal to 0"))
    elif weight is not None and 0 < weight <= Decimal("1e-9"):
        found.append((("spec", "fairSharing", "weight"), "when not 0, weight must be > 10e-9"))
    flavors = {f.get("name") for rg in dicts(spec.get("resourceGroups")) for f in dicts(rg.get("flavors"))}
    checks = dig(spec, "admissionChecksStrategy")
    for i, check in enumerate(dicts(checks.get("admissionChecks"))):
        for j, flavor in enumerate(check.get("onFlavors") or []):
            if flavor not in flavors:
                found.append((("spec", "admissionChecksStrategy", "admissionChecks", i, "onFlavors", j),
                              f"flavor {flavor!r} is not one of this ClusterQueue's flavors "
                              f"({', '.join(sorted(map(str, flavors)))})"))
    return found


def _resource_group_problems(spec: dict[str, Any]) -> Found:
    """``validateResourceGroups`` / ``validateFlavorQuotas`` / ``validateLimit`` / ``validateLendingLimit``."""
    found: Found = []
    has_cohort = bool(spec.get("cohortName") or spec.get("cohort"))  # v1beta2 cohortName, v1beta1 cohort
    seen_resources: set[Any] = set()
    seen_flavors: set[Any] = set()
    for i, group in enumerate(dicts(spec.get("resourceGroups"))):
        base: PathParts = ("spec", "resourceGroups", i)
        covered = items(group.get("coveredResources"))
        for j, name in enumerate(covered):
            path = (*base, "coveredResources", j)
            found += [(path, f"resource name {name!r}: {reason}") for reason in qualified_name(str(name))]
            if name in seen_resources:
                found.append((path, f"duplicate resource {name!r}: a resource belongs to one resource group"))
            seen_resources.add(name)
        for j, flavor in enumerate(dicts(group.get("flavors"))):
            path = (*base, "flavors", j)
            if flavor.get("name") in seen_flavors:
                found.append(((*path, "name"), f"duplicate flavor {flavor.get('name')!r} in resourceGroups"))
            seen_flavors.add(flavor.get("name"))
            resources = dicts(flavor.get("resources"))
            if len(resources) != len(covered):
                found.append(((*path, "resources"), f"flavors must have the same number of resources as the "
                                                    f"coveredResources ({len(resources)} vs {len(covered)})"))
            for k, quota in enumerate(resources[:len(covered)]):
                found += _quota_problems((*path, "resources", k), quota, covered[k], has_cohort)
    return found


def _quota_problems(path: PathParts, quota: dict[str, Any], covered: Any, has_cohort: bool) -> Found:
    found: Found = []
    if quota.get("name") != covered:
        found.append(((*path, "name"), f"must match the name in coveredResources ({covered!r}); "
                                       f"got {short_value(quota.get('name'))}"))
    amounts = {key: quantity(quota.get(key)) for key in ("nominalQuota", "borrowingLimit", "lendingLimit")}
    for key, amount in amounts.items():
        if amount is not None and amount < 0:
            found.append(((*path, key), "must be greater than or equal to 0"))
    for key in ("borrowingLimit", "lendingLimit"):
        if quota.get(key) is not None and not has_cohort:
            found.append(((*path, key), f"{key} must be nil when cohort is empty (set spec.cohortName)"))
    lend, nominal = amounts["lendingLimit"], amounts["nominalQuota"]
    if lend is not None and nominal is not None and lend > nominal:
        found.append(((*path, "lendingLimit"), "must be less than or equal to the nominalQuota"))
    return found


def resource_flavor_problems(spec: dict[str, Any]) -> Found:
    """``ValidateResourceFlavor`` (pkg/webhooks/resourceflavor_webhook.go): node labels are valid labels,
    node taints have valid keys and values and are unique by key and effect."""
    found: Found = []
    labels = dig(spec, "nodeLabels")
    for key, value in labels.items():
        reasons = qualified_name(str(key)) + label_value(str(value))
        found += [(("spec", "nodeLabels", str(key)), f"invalid node label: {reason}") for reason in reasons]
    seen: set[tuple[Any, Any]] = set()
    for i, taint in enumerate(dicts(spec.get("nodeTaints"))):
        path: PathParts = ("spec", "nodeTaints", i)
        found += [((*path, "key"), f"invalid taint key: {r}") for r in qualified_name(str(taint.get("key", "")))]
        found += [((*path, "value"), f"invalid taint value: {r}") for r in label_value(str(taint.get("value", "")))]
        pair = (taint.get("key"), taint.get("effect"))
        if pair in seen:
            found.append((path, "taints must be unique by key and effect pair"))
        seen.add(pair)
    return found


