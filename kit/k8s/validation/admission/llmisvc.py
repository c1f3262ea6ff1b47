"""KServe's LLMInferenceService validating webhook (``serving.kserve.io/v1alpha2``): the rules the CRD's
schema cannot express, ported from kserve/kserve ``pkg/apis/serving/v1alpha2/llm_inference_service_validation.go``
(``LLMInferenceServiceValidator.validate``; read at commit 00bd5d06 of the main branch, after v0.20.0 — the
v1alpha2 webhook these functions port was not checked line by line against the v0.20.0 tag):

- ``validateRouterCrossFieldConstraints``: ``router.route.http`` takes ``refs`` or ``spec``, not both; custom
  route ``refs`` need ``router.gateway.refs`` (not the managed gateway ``gateway: {}``);
- ``validateWorkloadParallelism`` (for ``spec`` and ``spec.prefill``): a ``worker`` needs data or pipeline
  parallelism; not both kinds; ``data`` and ``dataLocal`` together; every size > 0;
- ``validateSchedulerConfig``: ``router.scheduler.replicas`` > 0; ``config`` takes exactly one of ``inline``
  and ``ref``, a ``ref`` has a name.

``replicas`` and ``scaling`` together is the CRD's own CEL rule (``x-kubernetes-validations``).
"""

from __future__ import annotations

from typing import Any

from kit.k8s.validation.admission.fields import dig
from kit.k8s.validation.problems import PathParts

Found = list[tuple[PathParts, str]]
KIND = "LLMInferenceService"


def llm_inference_service_problems(body: dict[str, Any]) -> Found:
    """``LLMInferenceServiceValidator.validate``'s rules that need only the document."""
    spec = dig(body, "spec")
    found = router_problems(spec) + parallelism_problems(("spec",), spec)
    if isinstance(spec.get("prefill"), dict):
        found += parallelism_problems(("spec", "prefill"), spec["prefill"])
    return found + scheduler_problems(spec)


def router_problems(spec: dict[str, Any]) -> Found:
    router = dig(spec, "router")
    http = dig(router, "route", "http")
    if not http:
        return []
    base = ("spec", "router", "route", "http")
    found: Found = []
    if http.get("refs") and http.get("spec") is not None:
        found.append((base, "cannot use both custom HTTPRoute refs and an inline route spec; choose one"))
    gateway = router.get("gateway")
    if http.get("refs") and isinstance(gateway, dict) and not gateway.get("refs"):
        found.append(((*base, "refs"), "custom HTTP routes cannot be used with a managed gateway "
                                       "(router.gateway without refs): remove the refs or set router.gateway.refs"))
    return found


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parallelism_problems(base: PathParts, workload: dict[str, Any]) -> Found:
    worker, parallelism = workload.get("worker"), workload.get("parallelism")
    needs = ("when worker is specified, parallelism must be configured for either data parallelism or "
             "pipeline parallelism")
    if worker is not None and not isinstance(parallelism, dict):
        return [((*base, "worker"), needs)]
    if not isinstance(parallelism, dict):
        return []
    path = (*base, "parallelism")
    data, local, pipeline = (parallelism.get(key) for key in ("data", "dataLocal", "pipeline"))
    data_parallel = data is not None or local is not None
    found: Found = []
    if worker is not None and not data_parallel and pipeline is None:
        found.append(((*base, "worker"), needs))
    if pipeline is not None and data_parallel:
        found.append((path, "cannot set both pipeline parallelism and data parallelism (data or dataLocal) "
                            "simultaneously"))
    if data is not None and local is None:
        found.append(((*path, "dataLocal"), "dataLocal must be set when data is set"))
    if local is not None and data is None:
        found.append(((*path, "data"), "data must be set when dataLocal is set"))
    for key, label in (("pipeline", "pipeline parallelism"), ("data", "data parallelism"),
                       ("dataLocal", "dataLocal parallelism")):
        size = _size(parallelism.get(key))
        if size is not None and size <= 0:
            found.append(((*path, key), f"{label} must be greater than 0"))
    return found


def scheduler_problems(spec: dict[str, Any]) -> Found:
    scheduler = dig(spec, "router", "scheduler")
    base = ("spec", "router", "scheduler")
    found: Found = []
    replicas = _size(scheduler.get("replicas"))
    if replicas is not None and replicas <= 0:
        found.append(((*base, "replicas"), "scheduler replicas must be greater than zero"))
    config = scheduler.get("config")
    if not isinstance(config, dict):
        return found
    inline, ref = config.get("inline"), config.get("ref")
    if inline is None and ref is None:
        found.append(((*base, "config"), "either inline or ref is required"))
    if inline is not None and ref is not None:
        found.append(((*base, "config"), "both inline and ref are set, either specify inline or ref"))
    if isinstance(ref, dict) and not ref.get("name"):
        found.append(((*base, "config", "ref", "name"), "name is empty"))
    return found
