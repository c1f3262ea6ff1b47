"""The API server's own field validation of built-in kinds, which Kubernetes' OpenAPI schema does not carry.

Ported from Kubernetes :data:`kit.versions.KUBERNETES_VERSION`, by file and function:

- k8s.io/apimachinery ``pkg/api/validation/objectmeta.go``: ``ValidateObjectMetaAccessor`` (name and
  generateName by the kind's name rule, namespace a DNS-1123 label), ``ValidateAnnotations``,
  ``ValidateFinalizers``; ``pkg/apis/meta/v1/validation/validation.go``: ``ValidateLabels``;
- k8s.io/kubernetes ``pkg/apis/core/validation/validation.go``: the name rules (``ValidateNamespaceName``,
  ``ValidateServiceName``, ``NameIsDNSSubdomain`` for the rest), ``ValidateResourceRequirements``,
  ``validateContainerResourceName``, ``ValidateResourceQuantityValue``, ``ValidateResourceQuotaSpec`` and
  ``ValidateResourceQuotaResourceName``, ``ValidateLimitRange``, ``ValidatePersistentVolumeClaimSpec``,
  ``ValidateConfigMap``/``ValidateSecret`` (keys: ``IsConfigMapKey``); ``pkg/apis/core/helper/helpers.go``
  (``IsStandardQuotaResourceName``, ``IsExtendedResourceName``, ``IsOvercommitAllowed``, ``IsIntegerResourceName``);
- ``pkg/apis/rbac/validation/validation.go``: ``ValidateRBACName`` (``path.IsValidPathSegmentName``).

Container resources are checked in every pod spec, custom resources' pod templates included: the
operator's Pods are built-in objects, and the API server rejects them on the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kit.k8s import traverse
from kit.k8s.validation.admission.fields import dicts, dig, items
from kit.k8s.validation.admission.names import (
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    label_value,
    path_segment_name,
    qualified_name,
    quantity,
)
from kit.k8s.validation.problems import PathParts, short_value

Found = list[tuple[PathParts, str]]

#: The API groups of built-in kinds (the rest are custom resources, checked against their CRDs).
GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                    "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "discovery.k8s.io"})
_RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
#: kind -> (name rule, upstream function); other kinds: ``NameIsDNSSubdomain``.
NAME_RULES: dict[str, tuple[Callable[[str], list[str]], str]] = {
    "Namespace": (dns1123_label, "ValidateNamespaceName"),
    "Service": (dns1035_label, "ValidateServiceName"),
    **{kind: (path_segment_name, "ValidateRBACName") for kind in _RBAC_KINDS},
}
#: Built-in kinds with a pod template (a CronJob's is under ``spec.jobTemplate``).
WORKLOADS = frozenset({"Job", "CronJob", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
#: ``batch.JobNameLabel``: the Job's name, on its pods.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: ``TotalAnnotationSizeLimitB`` (objectmeta.go).
ANNOTATIONS_LIMIT = 256 * 1024
#: ``standardFinalizers`` (helpers.go): the finalizers that need no domain prefix.
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
#: ``standardContainerResources``; ``hugepages-<size>`` too (``IsHugePageResourceName``).
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
#: ``standardQuotaResources``; ``hugepages-<size>`` and ``requests.hugepages-<size>`` too.
QUOTA_RESOURCES = frozenset({
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "services",
    "replicationcontrollers", "resourcequotas", "secrets", "persistentvolumeclaims", "configmaps",
    "services.nodeports", "services.loadbalancers"})
#: ``integerResources``: these (and extended resources) take whole numbers only.
INTEGER_RESOURCES = frozenset({"pods", "services", "replicationcontrollers", "resourcequotas", "secrets",
                               "configmaps", "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"})
LIMIT_TYPES = ("Container", "Pod", "PersistentVolumeClaim")
QUANTITY_FORMAT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def object_problems(body: dict[str, Any]) -> Found:
    """The API server's rules for one built-in object; ``[]`` for a custom resource."""
    if str(body.get("apiVersion", "")).rpartition("/")[0] not in GROUPS:
        return []
    kind, spec = str(body.get("kind")), dig(body, "spec")
    found = metadata_problems(kind, dig(body, "metadata"))
    if kind in WORKLOADS:  # ValidatePodTemplateSpec: the template's labels and annotations
        base = ("spec", "jobTemplate", "spec", "template") if kind == "CronJob" else ("spec", "template")
        found += label_problems((*base, "metadata"), dig(body, *base, "metadata"))
    name = str(dig(body, "metadata").get("name") or "")
    if kind == "Job" and len(name) > 63 and spec.get("manualSelector") is not True:
        found.append((("metadata", "name"), f"Job name of {len(name)} characters: the API server copies it into "
                                            f"the label {JOB_NAME_LABEL} of spec.template, and a label value has "
                                            "at most 63 (generateSelector, pkg/registry/batch/job/strategy.go)"))
    if kind == "ResourceQuota":
        found += quota_problems(spec)
    elif kind == "LimitRange":
        found += limit_range_problems(spec)
    elif kind == "PersistentVolumeClaim":
        found += claim_problems(spec)
    elif kind in ("ConfigMap", "Secret"):
        found += [((section, str(key)), f"invalid key {key!r}: {reason}") for section in
                  ("data", "binaryData", "stringData") for key in dig(body, section) for reason in config_key(str(key))]
    return found


def metadata_problems(kind: str, metadata: dict[str, Any]) -> Found:
    """``ValidateObjectMetaAccessor`` with the kind's name rule, ``ValidateLabels``, ``ValidateAnnotations``."""
    rule, source = NAME_RULES.get(kind, (dns1123_subdomain, "NameIsDNSSubdomain"))
    found: Found = []
    for key in ("name", "generateName"):
        value = metadata.get(key)
        if isinstance(value, str) and value:  # a generated name's prefix may end in '-' (maskTrailingDash)
            checked = value[:-1] + "a" if key == "generateName" and len(value) > 1 and value[-1] == "-" else value
            found += [(("metadata", key), f"{kind} {key} {value!r}: {reason} ({source})") for reason in rule(checked)]
    namespace = metadata.get("namespace")
    if isinstance(namespace, str) and namespace:
        found += [(("metadata", "namespace"), f"namespace {namespace!r}: {reason}")
                  for reason in dns1123_label(namespace)]
    found += label_problems(("metadata",), metadata)
    for i, finalizer in enumerate(items(metadata.get("finalizers"))):
        reasons = qualified_name(str(finalizer))
        if not reasons and "/" not in str(finalizer) and finalizer not in STANDARD_FINALIZERS:
            reasons = ["name is neither a standard finalizer name nor is it fully qualified (e.g. 'example.com/x')"]
        found += [(("metadata", "finalizers", i), f"finalizer {finalizer!r}: {reason}") for reason in reasons]
    return found


def label_problems(base: PathParts, metadata: dict[str, Any]) -> Found:
    """``ValidateLabels`` and ``ValidateAnnotations`` of the metadata at ``base``."""
    found: Found = []
    for key, value in dig(metadata, "labels").items():
        path: PathParts = (*base, "labels", str(key))
        found += [(path, f"label key {key!r}: {reason}") for reason in qualified_name(str(key))]
        if isinstance(value, str):
            found += [(path, f"label value {value!r}: {reason}") for reason in label_value(value)]
    annotations = dig(metadata, "annotations")
    for key in annotations:
        found += [((*base, "annotations", str(key)), f"annotation key {key!r}: {reason}")
                  for reason in qualified_name(str(key).lower())]
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > ANNOTATIONS_LIMIT:
        found.append(((*base, "annotations"), f"annotations total {size} bytes: may not be more than "
                                              f"{ANNOTATIONS_LIMIT} bytes (256 KiB)"))
    return found


# --------------------------------------------------------------------------- resource names and quantities


def _native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    """``IsExtendedResourceName``: a domain-prefixed name outside kubernetes.io (``nvidia.com/gpu``)."""
    return not _native(name) and not name.startswith("requests.") and not qualified_name("requests." + name)


def container_resource_name(name: str) -> list[str]:
    """``validateContainerResourceName``."""
    reasons = qualified_name(name)
    if reasons:
        return reasons
    if "/" not in name and name not in CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        return [f"must be a standard resource for containers ({', '.join(CONTAINER_RESOURCES)}, hugepages-<size>) "
                "or a domain-prefixed extended resource such as nvidia.com/gpu"]
    if not _native(name) and not is_extended(name):
        return ["doesn't follow extended resource name standard (a domain prefix, '/', and a name: nvidia.com/gpu)"]
    return []


def quota_resource_name(name: str) -> list[str]:
    """``ValidateResourceQuotaResourceName``."""
    reasons = qualified_name(name)
    if not reasons and "/" not in name and name not in QUOTA_RESOURCES and not name.startswith(
            ("hugepages-", "requests.hugepages-")):
        reasons = [f"must be a standard resource for quota ({', '.join(sorted(QUOTA_RESOURCES))}, "
                   "requests.hugepages-<size>) or domain-prefixed (requests.nvidia.com/gpu, count/jobs.batch)"]
    return reasons


def amount(resource: str, value: Any) -> tuple[Decimal | None, list[str]]:
    """A quantity parsed, with what the API server says about it (``ValidateResourceQuantityValue``)."""
    parsed = quantity(value)
    if parsed is None:
        return None, [f"{short_value(value)} is not a quantity: quantities must match the regular expression "
                      f"'{QUANTITY_FORMAT}' (e.g. 500m, 2Gi, 4)"]
    reasons = [] if parsed >= 0 else ["must be greater than or equal to 0"]
    if (resource in INTEGER_RESOURCES or is_extended(resource)) and parsed % 1:
        reasons.append(f"{resource} must be an integer, got {short_value(value)}")
    return parsed, reasons


def pod_problems(body: dict[str, Any]) -> Found:
    """``ValidateResourceRequirements`` for every container and init container of every pod spec."""
    found: Found = []
    for base, pod in traverse.pod_specs(body):
        for path, list_name, container in traverse.containers(pod):
            if list_name != "ephemeralContainers" and isinstance(container.get("resources"), dict):
                found += requirements_problems((*base, *path, "resources"), container["resources"])
    return found


def requirements_problems(path: PathParts, resources: dict[str, Any]) -> Found:
    """Names and quantities valid; requests at most the limits, equal for resources that cannot be overcommitted
    (extended resources such as nvidia.com/gpu, which also need a limit)."""
    found: Found = []
    parsed: dict[tuple[str, str], Decimal | None] = {}
    for section in ("limits", "requests"):
        for name, value in dig(resources, section).items():
            name = str(name)
            where = (*path, section, name)
            found += [(where, f"resource name {name!r}: {reason}") for reason in container_resource_name(name)]
            parsed[(section, name)], reasons = amount(name, value)
            found += [(where, reason) for reason in reasons]
    limits = dig(resources, "limits")
    for name in map(str, dig(resources, "requests")):
        request, limit = parsed[("requests", name)], parsed.get(("limits", name))
        overcommit = _native(name) and not name.startswith("hugepages-")
        if name not in limits and not overcommit:
            found.append(((*path, "limits"), f"Limit must be set for non overcommitable resources: set limits "
                                             f"{name!r} (equal to the request)"))
        elif request is None or limit is None:
            continue
        elif request != limit and not overcommit:
            found.append(((*path, "requests", name), f"must be equal to {name} limit of {limits[name]} "
                                                     f"(it cannot be overcommitted)"))
        elif request > limit:
            found.append(((*path, "requests", name), f"{short_value(dig(resources, 'requests')[name])} must be less "
                                                     f"than or equal to {name} limit of {limits[name]}"))
    return found


def quota_problems(spec: dict[str, Any]) -> Found:
    """``ValidateResourceQuotaSpec``: every ``spec.hard`` key a quota resource name, every value a quantity."""
    found: Found = []
    for name, value in dig(spec, "hard").items():
        where: PathParts = ("spec", "hard", str(name))
        found += [(where, f"resource name {name!r}: {reason}") for reason in quota_resource_name(str(name))]
        found += [(where, reason) for reason in amount(str(name), value)[1]]
    return found


_ORDER = (  # (field reported, smaller, larger, message) of ValidateLimitRange, in its order
    ("min", "min", "max", "min value {0} is greater than max value {1}"),
    ("defaultRequest", "min", "defaultRequest", "min value {0} is greater than default request value {1}"),
    ("defaultRequest", "defaultRequest", "max", "default request value {0} is greater than max value {1}"),
    ("defaultRequest", "defaultRequest", "default",
     "default request value {0} is greater than default limit value {1}"),
    ("default", "min", "default", "min value {0} is greater than default value {1}"),
    ("default", "default", "max", "default value {0} is greater than max value {1}"),
)


def limit_range_problems(spec: dict[str, Any]) -> Found:
    """``ValidateLimitRange``: types, resource names and quantities, and per resource
    min <= defaultRequest <= default <= max, min <= max, maxLimitRequestRatio >= 1; a resource that cannot be
    overcommitted (nvidia.com/gpu) has default equal to defaultRequest; a PersistentVolumeClaim limit bounds storage."""
    found: Found = []
    for i, limit in enumerate(dicts(spec.get("limits"))):
        base: PathParts = ("spec", "limits", i)
        kind = str(limit.get("type", ""))
        reasons = qualified_name(kind)
        if not reasons and "/" not in kind and kind not in LIMIT_TYPES:
            reasons = [f"must be a standard limit type ({', '.join(LIMIT_TYPES)}) or fully qualified"]
        found += [((*base, "type"), f"type {kind!r}: {reason}") for reason in reasons]
        bounded = "storage" in dig(limit, "min") or "storage" in dig(limit, "max")
        if kind == "PersistentVolumeClaim" and not bounded:
            found.append((base, "either minimum or maximum storage value is required, but neither was provided"))
        values: dict[str, dict[str, Decimal]] = {}
        for section in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            if kind == "Pod" and section in ("default", "defaultRequest") and dig(limit, section):
                found.append(((*base, section), "may not be specified when `type` is 'Pod' (only Container "
                                                "limits have defaults)"))
                continue
            for name, value in dig(limit, section).items():
                where = (*base, section, str(name))
                if kind in ("Pod", "Container"):
                    found += [(where, f"resource name {name!r}: {r}") for r in container_resource_name(str(name))]
                parsed = quantity(value)
                if parsed is None:
                    found.append((where, amount(str(name), value)[1][0]))
                else:
                    values.setdefault(section, {})[str(name)] = parsed
        for field, low, high, message in _ORDER:
            for name, small in values.get(low, {}).items():
                big = values.get(high, {}).get(name)
                if big is not None and small > big:
                    found.append(((*base, field, name), message.format(limit[low][name], limit[high][name])))
        for name, ratio in values.get("maxLimitRequestRatio", {}).items():
            if ratio < 1:
                found.append(((*base, "maxLimitRequestRatio", name), f"ratio {limit['maxLimitRequestRatio'][name]} "
                                                                     "is less than 1"))
        for name, default in values.get("default", {}).items():
            request = values.get("defaultRequest", {}).get(name)
            if not _native(name) and request is not None and request != default:
                found.append(((*base, "defaultRequest", name), f"default value {limit['default'][name]} must equal to "
                                                               f"defaultRequest value {limit['defaultRequest'][name]} "
                                                               f"in {name} (it cannot be overcommitted)"))
    return found


def claim_problems(spec: dict[str, Any]) -> Found:
    """``ValidatePersistentVolumeClaimSpec``: an access mode, and a positive storage request."""
    found: Found = []
    if not items(spec.get("accessModes")):
        found.append((("spec", "accessModes"), "at least 1 access mode is required (e.g. ReadWriteOnce)"))
    requests = dig(spec, "resources", "requests")
    where: PathParts = ("spec", "resources", "requests", "storage")
    if "storage" not in requests:
        return [*found, (where, "required: the storage the claim asks for (e.g. 1Gi)")]
    parsed, reasons = amount("storage", requests["storage"])
    if parsed is not None and parsed <= 0:
        reasons = ["must be greater than zero"]
    return found + [(where, reason) for reason in reasons]


def config_key(key: str) -> list[str]:
    """``IsConfigMapKey``: at most 253 of alphanumerics, '-', '_' or '.', not '.' or '..' nor starting '..'."""
    found = [] if len(key) <= 253 else ["must be no more than 253 characters"]
    if not _CONFIG_KEY.match(key):
        found.append("a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    if key in (".", "..") or key.startswith(".."):
        found.append("must not be '.' or '..' nor start with '..'")
    return found
