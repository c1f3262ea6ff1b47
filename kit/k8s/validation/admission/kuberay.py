"""KubeRay v1.7.0: the admission webhooks (ray-project/kuberay@v1.7.0 ``ray-operator/pkg/webhooks/v1/``)
and the controller's spec validation (``ray-operator/controllers/ray/utils/validation.go``).

The webhooks (installed only with ``ENABLE_WEBHOOKS=true``) reject names and duplicate worker group
names at admission; the controller checks the names again and every other rule here after the API server
stored the object, which then sits in ``ValidationFailed`` (RayJob, RayService) or never gets pods
(RayCluster). Both count as "not admitted" for the kit.
"""

from __future__ import annotations

import re
from typing import Any

from kit.k8s.validation.admission.fields import dicts, dig, integer
from kit.k8s.validation.admission.names import dns1035_label, label_value, qualified_name
from kit.k8s.validation.problems import PathParts, short_value

Found = list[tuple[PathParts, str]]

#: RayJob ``spec.submissionMode`` values in KubeRay v1.7.0. The CRD has no enum and no
#: descriptions (KubeRay strips them), so the set comes from ``JobSubmissionMode`` in
#: ray-operator/apis/ray/v1/rayjob_types.go (SidecarMode since v1.5.0) and the Ray docs.
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
#: ``MaxRayClusterNameLength`` and the RayJob/RayService limits (controllers/ray/utils/constant.go).
MAX_NAME_LENGTH = {"RayCluster": 53, "RayJob": 47, "RayService": 47}
#: RayService ``upgradeStrategy.type`` values (apis/ray/v1/rayservice_types.go; the CRD has no enum for it,
#: RayCluster's has one). minReplicas and maxReplicas are required by the CRD schema too.
SERVICE_UPGRADE_TYPES = ("NewClusterWithIncrementalUpgrade", "NewCluster", "None")
#: Spec fields behind alpha feature gates, off by default in v1.7.0 (pkg/features/features.go).
ALPHA_FIELDS = {"networkPolicy": "RayClusterNetworkPolicy", "tlsOptions": "RayClusterMTLS",
                "historyServerOptions": "RayClusterHistoryServer"}
AUTOSCALER_V2_ENV = "RAY_enable_autoscaler_v2"
CLUSTER_SELECTOR_KEY = "ray.io/cluster"
INITIALIZING_TIMEOUT = "ray.io/initializing-timeout"
_RAY_START_RESOURCES = ("num-cpus", "num-gpus", "memory", "resources")
_GO_DURATION = re.compile(r"^([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$")


def metadata_problems(body: dict[str, Any]) -> Found:
    """The name is a DNS-1035 label within the kind's length limit (``ValidateRayClusterMetadata``,
    ``ValidateRayJobMetadata``, ``ValidateRayServiceMetadata``, called by the ``validateRay*`` webhooks);
    a RayService's ``ray.io/initializing-timeout`` is a positive duration (``validateInitializingTimeout``)."""
    kind = str(body.get("kind"))
    metadata = dig(body, "metadata")
    name = metadata.get("name")
    found: Found = []
    if isinstance(name, str) and name:
        limit = MAX_NAME_LENGTH[kind]
        if len(name) > limit:
            found.append((("metadata", "name"), f"{kind} name should be no more than {limit} characters "
                                                f"(it has {len(name)}: KubeRay derives Service and Pod names from it)"))
        found += [(("metadata", "name"), f"{kind} name should be a valid DNS1035 label: {reason}")
                  for reason in dns1035_label(name) if "63 characters" not in reason]
    timeout = (metadata.get("annotations") or {}).get(INITIALIZING_TIMEOUT) if kind == "RayService" else None
    if isinstance(timeout, str) and timeout and not _positive_duration(timeout):
        found.append((("metadata", "annotations", INITIALIZING_TIMEOUT),
                      f"{INITIALIZING_TIMEOUT} must be a positive Go duration ('5m', '1h') or positive integer "
                      f"seconds; got {timeout!r}"))
    return found


def _positive_duration(text: str) -> bool:
    if text.isdigit():
        return int(text) > 0
    return bool(_GO_DURATION.match(text)) and any(ch in "123456789" for ch in text)


def cluster_spec_problems(base: PathParts, spec: dict[str, Any], annotations: dict[str, Any]) -> Found:
    """One RayCluster spec (a RayCluster's ``spec``, a RayJob's ``rayClusterSpec``, a RayService's
    ``rayClusterConfig``): ``validateWorkerGroups`` (webhook: unique group names) and ``ValidateRayClusterSpec``."""
    found = _group_problems(base, spec)
    autoscaling = spec.get("enableInTreeAutoscaling") is True
    options = dig(spec, "autoscalerOptions")
    v2 = options.get("version") == "v2" or _env_true(_head_env(spec), AUTOSCALER_V2_ENV)
    head_env_path = (*base, "headGroupSpec", "template", "spec", "containers", 0, "env")
    if not autoscaling and _env_true(_head_env(spec), AUTOSCALER_V2_ENV):
        found.append((head_env_path, f"{AUTOSCALER_V2_ENV} cannot be set to true when enableInTreeAutoscaling "
                                     "is false: set enableInTreeAutoscaling: true to use autoscaler v2"))
    if autoscaling and options.get("version") and any(e.get("name") == AUTOSCALER_V2_ENV for e in _head_env(spec)):
        found.append((head_env_path, f"both autoscalerOptions.version and head env {AUTOSCALER_V2_ENV} are set; "
                                     "use only autoscalerOptions.version"))
    idle = integer(options.get("idleTimeoutSeconds"))
    if idle is not None and idle < 0:
        found.append(((*base, "autoscalerOptions", "idleTimeoutSeconds"), f"must be non-negative, got {idle}"))
    if any(e.get("name") == "KUBERAY_GEN_AUTOSCALER_START_CMD" for e in dicts(options.get("env"))):
        found.append(((*base, "autoscalerOptions", "env"), "must not contain KUBERAY_GEN_AUTOSCALER_START_CMD: "
                                                           "KubeRay injects it"))
    for i, group in enumerate(dicts(spec.get("workerGroupSpecs"))):
        path = (*base, "workerGroupSpecs", i)
        name = group.get("groupName")
        if group.get("suspend") is True and autoscaling:
            found.append(((*path, "suspend"), f"worker group {name} cannot be suspended with autoscaling enabled"))
        if group.get("idleTimeoutSeconds") is not None and not v2:
            found.append(((*path, "idleTimeoutSeconds"), f"worker group {name}: idleTimeoutSeconds needs "
                                                         "autoscaler v2 (autoscalerOptions.version: v2)"))
        if group.get("priority") not in (None, 0) and not v2:
            found.append(((*path, "priority"), f"worker group {name}: priority needs autoscaler v2 "
                                               "(autoscalerOptions.version: v2)"))
    found += _auth_problems(base, spec)
    for key, gate in ALPHA_FIELDS.items():
        if spec.get(key) is not None:
            found.append(((*base, key), f"{key} requires KubeRay's {gate} feature gate (alpha, off by default)"))
    if annotations.get("ray.io/ft-enabled") and spec.get("gcsFaultToleranceOptions") is not None:
        found.append(((*base, "gcsFaultToleranceOptions"),
                      "ray.io/ft-enabled annotation and gcsFaultToleranceOptions are both set: use only the latter"))
    return found


def _group_problems(base: PathParts, spec: dict[str, Any]) -> Found:
    """Per group (head and workers): containers present, replicas bounds, resources and labels."""
    found: Found = []
    head = dig(spec, "headGroupSpec")
    groups = [((*base, "headGroupSpec"), "Head", head)]
    groups += [((*base, "workerGroupSpecs", i), str(g.get("groupName")), g)
               for i, g in enumerate(dicts(spec.get("workerGroupSpecs")))]
    seen: set[Any] = set()
    for path, name, group in groups:
        if not dicts(dig(group, "template", "spec").get("containers")):
            found.append(((*path, "template", "spec", "containers"), f"group {name} should have at least one "
                                                                     "container (the Ray container is the first)"))
        params = dig(group, "rayStartParams")
        if any(params.get(key) for key in _RAY_START_RESOURCES) and group.get("resources"):
            found.append(((*path, "resources"), f"resource fields should not be set in both rayStartParams and "
                                                f"resources for {name} group; use only one"))
        if "labels" in params:
            found.append(((*path, "rayStartParams", "labels"), f"rayStartParams['labels'] is not supported for "
                                                               f"{name} group; use the group's labels field"))
        for key, value in dig(group, "labels").items():
            reasons = qualified_name(str(key)) + label_value(str(value))
            found += [((*path, "labels", str(key)), f"invalid label for {name} group: {r}") for r in reasons]
        if path[-2:-1] != ("workerGroupSpecs",):
            continue
        if name in seen:  # the RayCluster webhook's validateWorkerGroups
            found.append((path, f"worker group names must be unique: {name!r} appears twice"))
        seen.add(name)
        low, high = integer(group.get("minReplicas")), integer(group.get("maxReplicas"))
        for key, value in (("minReplicas", low), ("maxReplicas", high)):
            if value is not None and value < 0:
                found.append(((*path, key), f"worker group {name} has negative {key} {value}"))
        if low is not None and high is not None and low > high:
            found.append(((*path, "minReplicas"), f"minReplicas ({low}) must be <= maxReplicas ({high})"))
    return found


def _auth_problems(base: PathParts, spec: dict[str, Any]) -> Found:
    auth = dig(spec, "authOptions")
    k8s_auth = auth.get("enableK8sTokenAuth") is True
    if auth.get("mode") != "token":
        return [((*base, "authOptions"), "enableK8sTokenAuth needs authOptions.mode: token")] if k8s_auth else []
    version = _version(spec.get("rayVersion"))
    minimum = (2, 55, 0) if k8s_auth else (2, 52, 0)
    if version is None or version < minimum:
        return [((*base, "rayVersion"), f"authOptions needs rayVersion {'.'.join(map(str, minimum))} or later; "
                                        f"got {short_value(spec.get('rayVersion'))}")]
    return []


def _version(value: Any) -> tuple[int, ...] | None:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", str(value)) if value is not None else None
    return tuple(int(part or 0) for part in match.groups()) if match else None


def rayjob_problems(spec: dict[str, Any]) -> Found:
    """RayJob spec rules of ``ValidateRayJobSpec`` and ``validateDeletionConfiguration`` (and
    ``ValidateRayClusterUpgradeOptions`` on the cluster it creates), plus the submission modes above
    (the RayJob's cluster spec goes through :func:`cluster_spec_problems`)."""
    found: Found = []
    mode = spec.get("submissionMode")
    if mode is not None and mode not in SUBMISSION_MODES:
        found.append((("spec", "submissionMode"),
                      f"expected one of {', '.join(SUBMISSION_MODES)}; got {short_value(mode)}"))
    shutdown, suspend = spec.get("shutdownAfterJobFinishes") is True, spec.get("suspend") is True
    if suspend and not shutdown:
        found.append((("spec", "suspend"), "a RayJob with shutdownAfterJobFinishes false cannot be suspended"))
    ttl = integer(spec.get("ttlSecondsAfterFinished"))
    if ttl is not None and ttl < 0:
        found.append((("spec", "ttlSecondsAfterFinished"), "must be a non-negative integer"))
    elif ttl is not None and ttl > 0 and not shutdown:
        found.append((("spec", "ttlSecondsAfterFinished"),
                      "ttlSecondsAfterFinished only takes effect with shutdownAfterJobFinishes: true"))
    rules = (spec.get("deletionStrategy") or {}).get("deletionRules") if isinstance(
        spec.get("deletionStrategy"), dict) else None
    if rules and shutdown:
        found.append((("spec", "deletionStrategy", "deletionRules"),
                      "shutdownAfterJobFinishes and deletionStrategy.deletionRules are mutually exclusive"))
    selector = dig(spec, "clusterSelector")
    backoff = integer(spec.get("backoffLimit")) or 0
    if selector:
        if suspend:
            found.append((("spec", "suspend"), "the clusterSelector mode doesn't support suspend"))
        if not selector.get(CLUSTER_SELECTOR_KEY):
            found.append((("spec", "clusterSelector"), f"clusterSelector needs the key {CLUSTER_SELECTOR_KEY} "
                                                       "naming the RayCluster"))
        if mode == "SidecarMode":
            found.append((("spec", "clusterSelector"), "clusterSelector is not supported in SidecarMode"))
        if backoff > 0:
            found.append((("spec", "backoffLimit"), "backoffLimit is incompatible with clusterSelector"))
    elif spec.get("rayClusterSpec") is None:
        found.append((("spec", "rayClusterSpec"), "one of rayClusterSpec or clusterSelector must be set"))
    if mode == "InteractiveMode" and backoff > 0:
        found.append((("spec", "backoffLimit"), "backoffLimit is incompatible with InteractiveMode"))
    if dig(spec, "rayClusterSpec", "upgradeStrategy").get("type") is not None:
        found.append((("spec", "rayClusterSpec", "upgradeStrategy"), "upgradeStrategy cannot be set when the "
                                                                     "RayCluster is created by a RayJob"))
    if mode == "SidecarMode":
        found += [(("spec", key), f"SidecarMode doesn't support {key}")
                  for key in ("submitterPodTemplate", "submitterConfig") if spec.get(key) is not None]
    for key in ("activeDeadlineSeconds", "preRunningDeadlineSeconds"):
        deadline = integer(spec.get(key))
        if deadline is not None and deadline <= 0:
            found.append((("spec", key), f"{key} must be a positive integer"))
    if backoff < 0:
        found.append((("spec", "backoffLimit"), "backoffLimit must not be negative"))
    return found


def rayservice_problems(spec: dict[str, Any]) -> Found:
    """RayService spec rules of ``ValidateRayServiceSpec`` and ``ValidateClusterUpgradeOptions`` (and
    ``ValidateRayClusterUpgradeOptions`` on the cluster it creates)."""
    found: Found = []
    cluster = dig(spec, "rayClusterConfig")
    head_service = (cluster.get("headGroupSpec") or {}).get("headService") if isinstance(
        cluster.get("headGroupSpec"), dict) else None
    if isinstance(head_service, dict) and (head_service.get("metadata") or {}).get("name"):
        found.append((("spec", "rayClusterConfig", "headGroupSpec", "headService", "metadata", "name"),
                      "should not be set: the RayService names the head Service"))
    strategy = dig(spec, "upgradeStrategy")
    upgrade = strategy.get("type")
    if upgrade is not None and upgrade not in SERVICE_UPGRADE_TYPES:
        found.append((("spec", "upgradeStrategy", "type"),
                      f"expected one of {', '.join(SERVICE_UPGRADE_TYPES)}; got {short_value(upgrade)}"))
    if dig(cluster, "upgradeStrategy").get("type") is not None:
        found.append((("spec", "rayClusterConfig", "upgradeStrategy"), "upgradeStrategy cannot be set when the "
                                                                       "RayCluster is created by a RayService: "
                                                                       "use spec.upgradeStrategy"))
    if upgrade == "NewClusterWithIncrementalUpgrade":
        if cluster.get("enableInTreeAutoscaling") is not True:
            found.append((("spec", "rayClusterConfig", "enableInTreeAutoscaling"),
                          "Ray autoscaler is required for NewClusterWithIncrementalUpgrade"))
        if not isinstance(strategy.get("clusterUpgradeOptions"), dict):
            found.append((("spec", "upgradeStrategy", "clusterUpgradeOptions"),
                          "clusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade"))
    return found


def _head_env(spec: dict[str, Any]) -> list[dict[str, Any]]:
    head = dig(spec, "headGroupSpec")
    containers = dicts(((head.get("template") or {}).get("spec") or {}).get("containers"))
    return dicts(containers[0].get("env")) if containers else []


def _env_true(env: list[dict[str, Any]], name: str) -> bool:
    return any(e.get("name") == name and e.get("value") in ("1", "true") for e in env)
