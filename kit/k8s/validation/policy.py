"""The kit's policy: Pod Security ``restricted`` for every pod, plus Ray's own exposure rules.

Every pod spec found in a resource (custom kinds included, see
:mod:`kit.k8s.traverse`) must meet the Pod Security Standards ``restricted``
profile as far as a manifest shows it:

- ``runAsNonRoot: true`` on the pod or on every container, never ``runAsUser: 0``;
- ``allowPrivilegeEscalation: false`` and ``capabilities.drop: [ALL]`` on every
  container (init and ephemeral ones too), adding back only ``NET_BIND_SERVICE``;
- ``seccompProfile`` RuntimeDefault or Localhost on the pod or on every container;
- volumes only of the types restricted allows (no ``hostPath``); no ``hostNetwork``,
  ``hostPID``, ``hostIPC``, ``hostPort`` or ``privileged``.

A RayCluster spec with ``enableInTreeAutoscaling: true`` gets a container the manifest does
not show: KubeRay v1.7.0 injects the autoscaler sidecar into the head pod and gives it
``autoscalerOptions.securityContext`` as its whole securityContext (``mergeAutoscalerOverrides``
in ray-operator/controllers/ray/common/pod.go), so that field must pass the container rules
(the head pod's securityContext may supply runAsNonRoot and seccompProfile).

The kit adds: cpu and memory requests and limits on every container; Ray token
auth (``authOptions: {mode: token}``) on every RayCluster spec; no Ray port (GCS
6379, dashboard/Jobs API 8265, client 10001) on a NodePort or LoadBalancer
Service, the Ray head's ``serviceType`` included; no literal secret, neither in an
env var named like a token, secret, password or key, nor in a Secret manifest.
Upstream's default ``torch-distributed`` ClusterTrainingRuntime fails this policy:
it sets no securityContext at all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from kit.k8s import traverse
from kit.k8s.validation.problems import PathParts, Problem, format_path, resource_name
from kit.versions import PORTS

ALLOWED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
})
ALLOWED_SECCOMP_TYPES = ("RuntimeDefault", "Localhost")
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
HOST_NAMESPACE_FIELDS = ("hostNetwork", "hostPID", "hostIPC")
RAY_PORTS: dict[int, str] = {PORTS["ray-gcs"]: "GCS", PORTS["ray-dashboard"]: "dashboard and Jobs API",
                             PORTS["ray-client"]: "Ray Client"}
EXPOSING_SERVICE_TYPES = frozenset({"NodePort", "LoadBalancer"})
SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)
RESOURCE_NAMES = ("cpu", "memory")
#: What KubeRay v1.7.0 gives the autoscaler sidecar without ``autoscalerOptions.resources``
#: (``BuildAutoscalerContainer`` in ray-operator/controllers/ray/common/pod.go).
AUTOSCALER_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}

_RESTRICTED = "(Pod Security restricted)"


def check_policy(docs: Iterable[Any], source: str = "<documents>") -> list[Problem]:
    """Policy problems of every document (non-mappings are left to the validator)."""
    problems = []
    for doc in docs:
        if isinstance(doc, dict):
            name = resource_name(doc)
            problems += [Problem(source, name, format_path(path), message)
                         for path, message in policy_problems(doc)]
    return problems


def policy_problems(doc: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """(field path, what is expected) for every policy rule one resource breaks."""
    found: list[tuple[PathParts, str]] = []
    for path, pod in traverse.pod_specs(as_trainer_applies_it(doc)):
        found += pod_problems(path, pod)
    for base, cluster in traverse.ray_cluster_specs(doc):
        found += ray_cluster_problems(base, cluster)
    found += service_problems(doc)
    found += env_problems(doc)
    found += secret_problems(doc)
    return found


def as_trainer_applies_it(doc: dict[str, Any]) -> dict[str, Any]:
    """A TrainJob as Kubeflow Trainer runs it: ``spec.trainer.resourcesPerNode`` becomes the
    resources of the trainer's ``node`` container (the CRD has no resources field in the pod patch)."""
    per_node = _mapping(_mapping(doc.get("spec")).get("trainer")).get("resourcesPerNode")
    if doc.get("kind") != "TrainJob" or not per_node:
        return doc
    doc = copy.deepcopy(doc)
    for container in traverse.all_containers(doc):
        if container.get("name") == "node" and "resources" not in container:
            container["resources"] = per_node
    return doc


# --------------------------------------------------------------------------- Pod Security restricted


def pod_problems(path: PathParts, pod: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Pod Security ``restricted`` and resource problems of one pod spec at ``path``."""
    found: list[tuple[PathParts, str]] = []
    for field_name in HOST_NAMESPACE_FIELDS:
        if pod.get(field_name) is True:
            found.append(((*path, field_name), f"{field_name} must be unset or false {_RESTRICTED}"))
    found += volume_problems(path, pod.get("volumes"))
    pod_context = _mapping(pod.get("securityContext"))
    containers = traverse.containers(pod)
    found += _pod_or_containers(path, pod_context, containers, "runAsNonRoot", _is_true,
                                "runAsNonRoot must be true")
    found += _pod_or_containers(path, pod_context, containers, "seccompProfile", _good_seccomp,
                                f"seccompProfile.type must be {' or '.join(ALLOWED_SECCOMP_TYPES)}")
    if pod_context.get("runAsUser") == 0:
        found.append(((*path, "securityContext", "runAsUser"),
                      f"runAsUser must not be 0 (root) {_RESTRICTED}"))
    for rel, list_name, container in containers:
        found += container_problems((*path, *rel), list_name, container)
    return found


def _pod_or_containers(path: PathParts, pod_context: dict[str, Any], containers: list[Any], key: str,
                       good: Any, expected: str) -> list[tuple[PathParts, str]]:
    """A setting that must be good on the pod, or else on every container (and never bad on one)."""
    found: list[tuple[PathParts, str]] = []
    pod_value = pod_context.get(key)
    if pod_value is not None and not good(pod_value):
        found.append(((*path, "securityContext", key), f"{expected} {_RESTRICTED}"))
    unset = []
    for rel, _, container in containers:
        value = _mapping(container.get("securityContext")).get(key)
        where = (*path, *rel, "securityContext", key)
        if value is not None and not good(value):
            found.append((where, f"{expected} {_RESTRICTED}"))
        elif value is None and pod_value is None:  # a bad pod value is reported once, above
            unset.append(where)
    if unset and len(unset) == len(containers):
        found.append(((*path, "securityContext", key),
                      f"{expected} in the pod securityContext or in every container {_RESTRICTED}"))
    else:
        found += [(where, f"{expected} (here or in the pod securityContext) {_RESTRICTED}")
                  for where in unset]
    return found


def _is_true(value: Any) -> bool:
    return value is True


def _good_seccomp(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in ALLOWED_SECCOMP_TYPES


def volume_problems(path: PathParts, volumes: Any) -> list[tuple[PathParts, str]]:
    found: list[tuple[PathParts, str]] = []
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        for volume_type in (k for k in _mapping(volume) if k != "name"):
            where = (*path, "volumes", i, volume_type)
            if volume_type == "hostPath":
                found.append((where, f"hostPath volumes are not allowed {_RESTRICTED}: they expose the "
                                     "node's files; use emptyDir, a PersistentVolumeClaim or a configMap"))
            elif volume_type not in ALLOWED_VOLUME_TYPES:
                allowed = ", ".join(sorted(ALLOWED_VOLUME_TYPES))
                found.append((where, f"volume type {volume_type!r} is not allowed {_RESTRICTED}; "
                                     f"allowed: {allowed}"))
    return found


def container_problems(path: PathParts, list_name: str,
                       container: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Security context, host ports and resources of one container at ``path``."""
    found: list[tuple[PathParts, str]] = []
    context = _mapping(container.get("securityContext"))
    context_path = (*path, "securityContext")
    if context.get("allowPrivilegeEscalation") is not False:
        found.append(((*context_path, "allowPrivilegeEscalation"),
                      f"allowPrivilegeEscalation must be false {_RESTRICTED}"))
    if context.get("privileged") is True:
        found.append(((*context_path, "privileged"), f"privileged containers are not allowed {_RESTRICTED}"))
    if context.get("runAsUser") == 0:
        found.append(((*context_path, "runAsUser"), f"runAsUser must not be 0 (root) {_RESTRICTED}"))
    capabilities = _mapping(context.get("capabilities"))
    drop: list[Any] = capabilities["drop"] if isinstance(capabilities.get("drop"), list) else []
    if "ALL" not in drop:
        found.append(((*context_path, "capabilities", "drop"),
                      f"capabilities.drop must include ALL {_RESTRICTED}"))
    added: list[Any] = capabilities["add"] if isinstance(capabilities.get("add"), list) else []
    for i, capability in enumerate(added):
        if capability not in ALLOWED_ADDED_CAPABILITIES:
            found.append(((*context_path, "capabilities", "add", i),
                          f"capability {capability!r} may not be added; only NET_BIND_SERVICE {_RESTRICTED}"))
    ports = container.get("ports")
    for i, port in enumerate(ports if isinstance(ports, list) else []):
        if _mapping(port).get("hostPort"):
            found.append(((*path, "ports", i, "hostPort"), f"hostPort must be unset or 0 {_RESTRICTED}"))
    if list_name != "ephemeralContainers":  # Kubernetes forbids resources on ephemeral containers
        found += resource_problems(path, container.get("resources"))
    return found


def resource_problems(path: PathParts, resources: Any) -> list[tuple[PathParts, str]]:
    """Every container needs cpu and memory requests and limits: scheduling and OOM kills depend on them."""
    resources = _mapping(resources)
    if not any(_mapping(resources.get(section)) for section in ("requests", "limits")):
        return [((*path, "resources"), "missing resources: set requests and limits for cpu and memory")]
    found: list[tuple[PathParts, str]] = []
    for section in ("requests", "limits"):
        present = _mapping(resources.get(section))
        for name in RESOURCE_NAMES:
            if name not in present:
                found.append(((*path, "resources", section, name),
                              f"missing {section}.{name}: every container sets cpu and memory "
                              "requests and limits"))
    return found


# --------------------------------------------------------------------------- Ray, Services, secrets


def ray_cluster_problems(base: PathParts, cluster: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Token auth on, and the head's Service not exposed outside the cluster, for one RayCluster spec."""
    found: list[tuple[PathParts, str]] = []
    auth = cluster.get("authOptions")
    if not isinstance(auth, dict):
        found.append(((*base, "authOptions"), "missing authOptions: {mode: token}: without Ray token auth "
                                              "anyone who reaches the dashboard runs code (CVE-2023-48022)"))
    elif auth.get("mode") != "token":
        found.append(((*base, "authOptions", "mode"),
                      f"authOptions.mode must be 'token', got {auth.get('mode')!r}"))
    head = _mapping(cluster.get("headGroupSpec"))
    if cluster.get("enableInTreeAutoscaling") is True:
        found += autoscaler_problems(base, cluster)
    ports = ", ".join(str(p) for p in RAY_PORTS)
    if head.get("serviceType") in EXPOSING_SERVICE_TYPES:
        found.append(((*base, "headGroupSpec", "serviceType"),
                      f"serviceType {head['serviceType']} exposes the Ray head's ports ({ports}) outside the "
                      "cluster; use ClusterIP and kubectl port-forward"))
    head_service_spec = _mapping(_mapping(head.get("headService")).get("spec"))
    if head_service_spec.get("type") in EXPOSING_SERVICE_TYPES:
        found.append(((*base, "headGroupSpec", "headService", "spec", "type"),
                      f"headService type {head_service_spec['type']} exposes the Ray head's ports ({ports}) "
                      "outside the cluster; use ClusterIP and kubectl port-forward"))
    return found


def autoscaler_problems(base: PathParts, cluster: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Pod Security ``restricted`` for the autoscaler sidecar KubeRay injects into the head pod.

    Its securityContext is ``autoscalerOptions.securityContext``; its resources are
    ``autoscalerOptions.resources`` when set, else KubeRay's (:data:`AUTOSCALER_RESOURCES`).
    """
    options = _mapping(cluster.get("autoscalerOptions"))
    sidecar = {"securityContext": options.get("securityContext"),
               "resources": options.get("resources") or AUTOSCALER_RESOURCES}
    where = (*base, "autoscalerOptions")
    found = container_problems(where, "autoscaler", sidecar)
    head_pod = _mapping(_mapping(_mapping(cluster.get("headGroupSpec")).get("template")).get("spec"))
    pod_context = _mapping(head_pod.get("securityContext"))
    context = _mapping(options.get("securityContext"))
    for key, good, expected in (("runAsNonRoot", _is_true, "runAsNonRoot must be true"),
                                ("seccompProfile", _good_seccomp,
                                 f"seccompProfile.type must be {' or '.join(ALLOWED_SECCOMP_TYPES)}")):
        value = context.get(key)
        if value is None and pod_context.get(key) is None:
            found.append(((*where, "securityContext", key),
                          f"{expected} here or in the head pod's securityContext {_RESTRICTED}"))
        elif value is not None and not good(value):
            found.append(((*where, "securityContext", key), f"{expected} {_RESTRICTED}"))
    return [(path, f"autoscaler sidecar (KubeRay adds it to the head pod): {message}") for path, message in found]


def service_problems(doc: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """A NodePort or LoadBalancer Service (or RayService serveService) must not carry a Ray port."""
    specs: list[tuple[PathParts, dict[str, Any]]] = []
    if doc.get("kind") == "Service" and doc.get("apiVersion") == "v1":
        specs.append((("spec",), _mapping(doc.get("spec"))))
    if doc.get("kind") == "RayService":
        serve_service = _mapping(_mapping(doc.get("spec")).get("serveService"))
        specs.append((("spec", "serveService", "spec"), _mapping(serve_service.get("spec"))))
    found: list[tuple[PathParts, str]] = []
    for base, spec in specs:
        service_type = spec.get("type")
        if service_type not in EXPOSING_SERVICE_TYPES:
            continue
        ports = spec.get("ports")
        for i, port in enumerate(ports if isinstance(ports, list) else []):
            for key in ("port", "targetPort"):
                number = _mapping(port).get(key)
                if number in RAY_PORTS:
                    found.append(((*base, "ports", i, key),
                                  f"Ray port {number} ({RAY_PORTS[number]}) must not be exposed by a "
                                  f"{service_type} Service; use type ClusterIP and kubectl port-forward"))
                    break
    return found


def env_problems(doc: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Env vars named like a token, secret, password or key must come from ``valueFrom`` (a Secret)."""
    found: list[tuple[PathParts, str]] = []
    for path, env in traverse.env_lists(doc):
        for i, var in enumerate(env):
            name = _mapping(var).get("name")
            if isinstance(name, str) and SECRET_ENV_NAME.search(name) and "value" in var:
                found.append(((*path, i, "value"), f"env var {name} holds a literal value; read it from a "
                                                   "Secret with valueFrom.secretKeyRef"))
    return found


def secret_problems(doc: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """No Secret with literal ``data``/``stringData`` in the manifests: secrets do not go into git."""
    if doc.get("kind") != "Secret" or doc.get("apiVersion") != "v1":
        return []
    return [((key,), f"literal secret {key} in a manifest; create the Secret with kubectl create secret "
                     "(or a secret manager) instead of committing it")
            for key in ("data", "stringData") if doc.get(key)]


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
