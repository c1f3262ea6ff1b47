"""KServe v0.20.0: the InferenceService validating webhook (kserve/kserve@v0.20.0
``pkg/apis/serving/v1beta1/inference_service_validation.go``, ``component.go``), the controller's
storage URI check (``ValidateStorageURI`` in ``pkg/controller/v1beta1/inferenceservice/utils/utils.go``), and
one field the webhook admits but the Standard-mode controller never reads (:func:`ignored_field_problems`).
"""

from __future__ import annotations

import re
from typing import Any

from kit.k8s import traverse
from kit.k8s.validation.admission.fields import dig, integer
from kit.k8s.validation.problems import PathParts, short_value

Found = list[tuple[PathParts, str]]

DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
KNATIVE_CLASS = "autoscaling.knative.dev/class"
#: ``DeploymentModeType`` values (pkg/constants/constants.go); RawDeployment and Serverless are the
#: deprecated spellings of Standard and Knative.
DEPLOYMENT_MODES = ("Standard", "Knative", "ModelMesh", "RawDeployment", "Serverless")
#: ``AutoscalerAllowedClassList`` (kpa is not in it: Knative picks its own).
AUTOSCALER_CLASSES = ("hpa", "external", "keda", "none")
HPA_METRICS = ("cpu", "memory")  # AutoscalerAllowedHPAMetricsList
KPA_METRICS = ("concurrency", "rps")  # AutoscalerAllowedKPAMetricsList
#: ``validation.DefaultBlockedEnvVars`` (pkg/validation/env_policy.go).
BLOCKED_ENV = ("PYTHONPATH",)
#: ``SupportedStorageURIPrefixList``; a URI without ``scheme://`` is a local path and passes.
STORAGE_PREFIXES = ("gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "webhdfs://",
                    "oci://", "oci+native://", "hf://")
_AZURE_BLOB = re.compile(r"https://(.+?)\.blob\.core\.windows\.net/(.+)")
_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CUSTOM_CONTAINER = "kserve-container"  # constants.InferenceServiceContainerName
STORAGE_URI_ENV = "STORAGE_URI"  # constants.CustomSpecStorageUriEnvVarKey


def inference_service_problems(body: dict[str, Any]) -> Found:
    """``validateInferenceService``: name, annotations, blocked env, the predictor's implementation,
    component extension and autoscaling, storage URIs."""
    metadata = dig(body, "metadata")
    annotations = dig(metadata, "annotations")
    spec = dig(body, "spec")
    found = name_problems(metadata.get("name")) + annotation_problems(annotations)
    for component in traverse.KSERVE_COMPONENTS:
        if isinstance(spec.get(component), dict):
            found += blocked_env_problems(("spec", component), spec[component])
            found += extension_problems(("spec", component), spec[component], annotations)
            found += ignored_field_problems(("spec", component), spec[component], annotations)
    predictor = spec.get("predictor")
    if isinstance(predictor, dict):
        found += predictor_problems(predictor)
    if spec.get("canary"):
        found += canary_problems(spec, annotations)
    return found


def ignored_field_problems(base: PathParts, component: dict[str, Any], annotations: dict[str, Any]) -> Found:
    """``canaryTrafficPercent`` in Standard mode: admitted, then ignored. At v0.20.0 only the Knative
    reconciler reads it (``pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go``,
    ``Reconcile``: Knative traffic targets between revisions); the Standard path
    (``components/predictor.go`` ``reconcileRawDeployment`` → ``reconcilers/raw``) has no revisions and
    never looks at it, so the new version silently takes all traffic. Standard mode's canary is
    ``spec.canary`` (:func:`canary_problems`). Skipped without the annotation (the cluster default is unknown)."""
    if annotations.get(DEPLOYMENT_MODE) not in ("Standard", "RawDeployment") or "canaryTrafficPercent" not in component:
        return []
    return [((*base, "canaryTrafficPercent"), "canaryTrafficPercent is read only in Knative (Serverless) mode; in "
                                              "Standard mode KServe ignores it and the new version takes all "
                                              "traffic: use spec.canary (a named canary predictor beside the "
                                              "stable one)")]


def canary_problems(spec: dict[str, Any], annotations: dict[str, Any]) -> Found:
    """``validateCanarySpecs``: ``spec.canary`` only in Standard mode, on a stable predictor with a model;
    each canary predictor named (unique, not the stable one's name), one implementation, fixed replicas
    (no maxReplicas, scaleTarget, scaleMetric, autoScaling, workerSpec), traffic summing to <= 100."""
    if annotations.get(DEPLOYMENT_MODE) not in ("Standard", "RawDeployment"):
        return [(("spec", "canary"), "canary is only supported in Standard deployment mode "
                                     f"({DEPLOYMENT_MODE}: Standard)")]
    stable = dig(spec, "predictor")
    found: Found = []
    if not _storage_uris(stable) and not isinstance(stable.get("model"), dict):
        found.append((("spec", "predictor"), "canary requires a stable predictor with a model (a storageUri)"))
    names: set[Any] = set()
    total = 0
    for i, canary in enumerate(c for c in spec["canary"] if isinstance(c, dict)):
        base: PathParts = ("spec", "canary", i)
        predictor = dig(canary, "predictor")
        name = predictor.get("name")
        if not name:
            found.append(((*base, "predictor", "name"), f"canary[{i}] predictor.name is required"))
        elif name in names or name == stable.get("name"):
            found.append(((*base, "predictor", "name"), f"canary predictor.name {name!r} is duplicated or "
                                                        "conflicts with the stable predictor's name"))
        names.add(name)
        total += integer(canary.get("trafficPercent", 0)) or 0  # each in 0-100: the CRD's bounds
        if _implementations(predictor) != 1:
            found.append(((*base, "predictor"), "exactly one implementation must be specified in the canary "
                                                "predictor"))
        for key in ("workerSpec", "scaleTarget", "scaleMetric", "autoScaling"):
            if predictor.get(key) is not None:
                found.append(((*base, "predictor", key), f"canary must not set {key} (canary uses fixed replicas)"))
        if (integer(predictor.get("maxReplicas")) or 0) > 0:
            found.append(((*base, "predictor", "maxReplicas"), "canary must not set maxReplicas (fixed replicas)"))
        low, stable_low = integer(predictor.get("minReplicas")), integer(stable.get("minReplicas", 1))
        if low is not None and stable_low is not None and low > stable_low:
            found.append(((*base, "predictor", "minReplicas"), f"canary minReplicas ({low}) must not exceed the "
                                                               f"stable predictor's minReplicas ({stable_low})"))
    if total > 100:
        found.append((("spec", "canary"), f"sum of canary trafficPercent values ({total}) must be <= 100"))
    return found


def name_problems(name: Any) -> Found:
    """``validateInferenceServiceName``: ``IsvcRegexp`` ``^[a-z]([-a-z0-9]*[a-z0-9])?$``."""
    if not isinstance(name, str) or not name or _ISVC_NAME.match(name):
        return []
    return [(("metadata", "name"), f"InferenceService name {name!r} must consist of lower case alphanumeric "
                                   "characters or '-' and start with a letter (regex [a-z]([-a-z0-9]*[a-z0-9])?)")]


def annotation_problems(annotations: dict[str, Any]) -> Found:
    """``validateInferenceServiceAutoscaler`` (autoscalerClass in ``AutoscalerAllowedClassList``) and the
    deploymentMode values ``ParseDeploymentMode`` knows (another value matches no reconciler)."""
    found: Found = []
    klass = annotations.get(AUTOSCALER_CLASS)
    if klass is not None and klass not in AUTOSCALER_CLASSES:
        found.append((("metadata", "annotations", AUTOSCALER_CLASS),
                      f"[{klass}] is not a supported autoscaler class type ({', '.join(AUTOSCALER_CLASSES)})"))
    mode = annotations.get(DEPLOYMENT_MODE)
    if mode is not None and mode not in DEPLOYMENT_MODES:
        found.append((("metadata", "annotations", DEPLOYMENT_MODE),
                      f"unknown deploymentMode {short_value(mode)}: KServe knows {', '.join(DEPLOYMENT_MODES)}"))
    return found


def blocked_env_problems(base: PathParts, component: dict[str, Any]) -> Found:
    """``validateBlockedEnvVars`` (pkg/validation/env_policy.go): no container may set PYTHONPATH."""
    found: Found = []
    for path, _, container in traverse.containers(component):
        for i, env in enumerate(container.get("env") or []):
            if isinstance(env, dict) and env.get("name") in BLOCKED_ENV:
                found.append(((*base, *path, "env", i), f"setting {env['name']} in container "
                                                        f"{container.get('name', path[0])!r} is not allowed "
                                                        "for security reasons"))
    return found


def extension_problems(base: PathParts, component: dict[str, Any], annotations: dict[str, Any]) -> Found:
    """``ComponentExtensionSpec.Validate`` (component.go: replicas, containerConcurrency; the logger mode is a
    CRD enum) and
    ``validateAutoScalingCompExtension`` (skipped without a deploymentMode annotation: the mutating webhook
    fills in the cluster's default, unknown here)."""
    found: Found = []
    low, high = integer(component.get("minReplicas")), integer(component.get("maxReplicas"))
    low = 1 if low is None else low  # constants.DefaultMinReplicas; validateReplicas stops at the first error
    if low < 0:
        found.append(((*base, "minReplicas"), "'MinReplicas' cannot be less than 0"))
    elif high is not None and high < 0:
        found.append(((*base, "maxReplicas"), "'MaxReplicas' cannot be less than 0"))
    elif high is not None and high != 0 and low > high:
        found.append(((*base, "minReplicas"), f"'MinReplicas' ({low}) cannot be greater than MaxReplicas ({high})"))
    concurrency = integer(component.get("containerConcurrency"))
    if concurrency is not None and concurrency < 0:
        found.append(((*base, "containerConcurrency"), "parallelism cannot be less than 0"))
    mode = annotations.get(DEPLOYMENT_MODE)
    standard, knative = mode in ("Standard", "RawDeployment"), mode in ("Knative", "Serverless")
    metric, target = component.get("scaleMetric"), integer(component.get("scaleTarget"))
    klass = annotations.get(AUTOSCALER_CLASS)
    hpa = klass == "hpa" if standard else knative and annotations.get(KNATIVE_CLASS) == "hpa.autoscaling.knative.dev"
    if standard and klass == "keda" and metric is not None:
        found.append(((*base, "scaleMetric"), "ScaleMetric is not supported for KEDA"))
    elif hpa:
        metric = metric or "cpu"
        if metric not in HPA_METRICS:
            found.append(((*base, "scaleMetric"), f"[{metric}] is not a supported metric ({', '.join(HPA_METRICS)})"))
        elif target is not None and ((metric == "cpu" and target < 1) or target > 100):
            found.append(((*base, "scaleTarget"), "the target utilization percentage should be a [1-100] integer"))
        elif target is not None and metric == "memory" and target < 1:
            found.append(((*base, "scaleTarget"), "the target memory should be greater than 1 MiB"))
    elif knative:
        if component.get("deploymentStrategy") is not None:
            found.append(((*base, "deploymentStrategy"),
                          "customizing deploymentStrategy is only supported for Standard (raw deployment) mode"))
        metric = metric or "concurrency"
        if metric not in KPA_METRICS:
            found.append(((*base, "scaleMetric"), f"[{metric}] is not a supported metric ({', '.join(KPA_METRICS)})"))
        elif metric == "rps" and target is not None and target < 1:
            found.append(((*base, "scaleTarget"), "the target for rps should be greater than 1"))
    return found


def predictor_problems(predictor: dict[str, Any]) -> Found:
    """Exactly one implementation (``validateExactlyOneImplementation`` with ``PredictorSpec.GetImplementations``),
    no ``name`` in a framework predictor (``validatePredictor``), storageUri xor storageUris
    (``validateMultipleStorageURIs``) and a supported storage URI scheme (``ValidateStorageURI``)."""
    base: PathParts = ("spec", "predictor")
    found: Found = []
    frameworks = [key for key in traverse.KSERVE_MODEL_KEYS if isinstance(predictor.get(key), dict)]
    count = _implementations(predictor)
    if count != 1:
        found.append((base, f"exactly one of [{', '.join(traverse.KSERVE_MODEL_KEYS)}, containers named "
                            f"{CUSTOM_CONTAINER}] must be specified in PredictorSpec; found {count}"))
    for key in frameworks:
        if predictor[key].get("name"):
            found.append(((*base, key, "name"), "the 'name' field is not allowed in standard predictor"))
    uris = [((*base, *path), uri) for path, uri in _storage_uris(predictor)]
    if uris and predictor.get("storageUris") is not None:
        found.append(((*base, "storageUris"), "Setting both StorageURI and StorageURIs is not supported."))
    for path, uri in uris:
        if isinstance(uri, str) and not storage_uri_supported(uri):
            found.append((path, f"storageUri {uri!r} is not supported: use one of {', '.join(STORAGE_PREFIXES)}, "
                                "an Azure blob URL or a local path"))
    return found


def _implementations(predictor: dict[str, Any]) -> int:
    """How many implementations ``PredictorSpec.GetImplementations`` finds: the framework fields set, plus one
    per container named kserve-container (or the first container when no framework and no such name)."""
    frameworks = sum(isinstance(predictor.get(key), dict) for key in traverse.KSERVE_MODEL_KEYS)
    containers = [c for c in predictor.get("containers") or [] if isinstance(c, dict)]
    custom = sum(c.get("name") == CUSTOM_CONTAINER for c in containers)
    return frameworks + (custom or int(bool(containers) and not frameworks))


def _storage_uris(predictor: dict[str, Any]) -> list[tuple[PathParts, Any]]:
    """(path, storage URI) of a predictor: framework ``storageUri`` fields and kserve-container's STORAGE_URI
    env (``CustomPredictor.GetStorageUri``)."""
    uris: list[tuple[PathParts, Any]] = [((key, "storageUri"), predictor[key]["storageUri"])
                                         for key in traverse.KSERVE_MODEL_KEYS
                                         if isinstance(predictor.get(key), dict) and "storageUri" in predictor[key]]
    containers = [c for c in predictor.get("containers") or [] if isinstance(c, dict)]
    for i, container in enumerate(containers):
        if container.get("name") == CUSTOM_CONTAINER:
            uris += [(("containers", i, "env", j), env.get("value")) for j, env in enumerate(container.get("env") or [])
                     if isinstance(env, dict) and env.get("name") == STORAGE_URI_ENV]
    return uris


def storage_uri_supported(uri: str) -> bool:
    """``ValidateStorageURI`` without a ClusterStorageContainer: a local path, Azure blob or a known prefix."""
    if not re.search(r"\w+?://", uri):
        return True
    if "blob.core.windows.net" in uri:
        return bool(_AZURE_BLOB.search(uri))
    return uri.startswith(STORAGE_PREFIXES)
