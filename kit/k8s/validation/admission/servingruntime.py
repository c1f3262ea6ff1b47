"""KServe v0.20.0: the ServingRuntime and ClusterServingRuntime validating webhook (kserve/kserve@v0.20.0
``pkg/webhook/admission/servingruntime/servingruntime_webhook.go``). A disabled runtime is not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kit.k8s.validation.admission.fields import dicts, dig, integer
from kit.k8s.validation.admission.kserve import BLOCKED_ENV, CUSTOM_CONTAINER
from kit.k8s.validation.loading import Document
from kit.k8s.validation.problems import PathParts, Problem
from kit.versions import KSERVE_GROUP

Found = list[tuple[PathParts, str]]

KINDS = ("ServingRuntime", "ClusterServingRuntime")
#: ``constants.PipelineParallelSizeEnvName`` and ``TensorParallelSizeEnvName``: set by workerSpec, not env.
PARALLEL_ENV = ("PIPELINE_PARALLEL_SIZE", "TENSOR_PARALLEL_SIZE")


def runtime_problems(body: dict[str, Any]) -> Found:
    """One runtime: an auto-selected model format has one priority (``validateModelFormatPrioritySame``;
    upstream runs it once another runtime exists, the kit always), ``validateMultiNodeSpec`` and
    ``validateBlockedEnvVars``."""
    spec = dig(body, "spec")
    if spec.get("disabled") is True:
        return []
    found: Found = []
    priorities: dict[str, Any] = {}
    for i, model_format in enumerate(dicts(spec.get("supportedModelFormats"))):
        if model_format.get("autoSelect") is not True:
            continue
        name, priority = str(model_format.get("name")), model_format.get("priority")
        if name not in priorities:
            priorities[name] = priority
        elif priorities[name] is not None and priority is not None and priorities[name] != priority:
            found.append((("spec", "supportedModelFormats", i, "priority"),
                          f"different priorities assigned for the model format {name}"))
    worker = spec.get("workerSpec")
    lists: list[tuple[PathParts, Any]] = [(("spec", "containers"), spec.get("containers"))]
    if isinstance(worker, dict):
        lists.append((("spec", "workerSpec", "containers"), worker.get("containers")))
        found += _multi_node_problems(spec, worker)
    for base, containers in lists:
        for i, container in enumerate(dicts(containers)):
            for j, env in enumerate(dicts(container.get("env"))):
                if env.get("name") in BLOCKED_ENV:
                    found.append(((*base, i, "env", j), f"setting {env['name']} in container {container.get('name')!r} "
                                                        "is not allowed for security reasons"))
    return found


def _multi_node_problems(spec: dict[str, Any], worker: dict[str, Any]) -> Found:
    """``validateMultiNodeSpec``: one worker container, parallelism set by workerSpec and at least 1."""
    found: Found = []
    if len(dicts(worker.get("containers"))) > 1:
        found.append((("spec", "workerSpec", "containers"),
                      "setting multiple containers in workerSpec is not allowed"))
    for i, container in enumerate(dicts(spec.get("containers"))):
        if container.get("name") != CUSTOM_CONTAINER:
            continue
        for j, env in enumerate(dicts(container.get("env"))):
            if env.get("name") in PARALLEL_ENV:
                found.append((("spec", "containers", i, "env", j),
                              f"setting {env['name']} in environment variables is not allowed with workerSpec: "
                              "use workerSpec.pipelineParallelSize / tensorParallelSize"))
    for key in ("pipelineParallelSize", "tensorParallelSize"):
        size = integer(worker.get(key))
        if size is not None and size < 1:
            found.append((("spec", "workerSpec", key), f"the WorkerSpec.{key[0].upper()}{key[1:]} cannot be "
                                                       f"less than 1({size})"))
    return found


def priority_conflicts(documents: Sequence[Document]) -> list[Problem]:
    """``validateServingRuntimePriority`` among the runtimes checked together: two enabled runtimes of one kind
    (and namespace), both multi-model or both not, sharing a protocol version, must not give an auto-selected
    model format (same name and version) the same priority."""
    runtimes = [d for d in documents if isinstance(d.body, dict) and d.body.get("kind") in KINDS
                and str(d.body.get("apiVersion", "")).startswith(KSERVE_GROUP + "/")
                and dig(d.body, "spec").get("disabled") is not True]
    problems = []
    for later, document in enumerate(runtimes):
        for earlier in runtimes[:later]:
            clash = _clash(earlier.body, document.body)
            if clash is not None:
                name = (earlier.body.get("metadata") or {}).get("name")
                problems.append(document.problem("spec.supportedModelFormats",
                                                 f"same priority assigned for the model format {clash} "
                                                 f"as in the {document.body['kind']} {name}"))
    return problems


def _clash(first: dict[str, Any], second: dict[str, Any]) -> str | None:
    if first["kind"] != second["kind"]:
        return None
    if first["kind"] == "ServingRuntime" and _namespace(first) != _namespace(second):
        return None
    a, b = dig(first, "spec"), dig(second, "spec")
    if (a.get("multiModel") is True) != (b.get("multiModel") is True):
        return None
    if not set(map(str, a.get("protocolVersions") or [])) & set(map(str, b.get("protocolVersions") or [])):
        return None
    for x in dicts(a.get("supportedModelFormats")):
        for y in dicts(b.get("supportedModelFormats")):
            same_format = (str(x.get("name")).lower() == str(y.get("name")).lower()
                           and x.get("version") == y.get("version"))
            if (x.get("autoSelect") is True and y.get("autoSelect") is True and same_format
                    and x.get("priority") is not None and x.get("priority") == y.get("priority")):
                return str(y.get("name"))
    return None


def _namespace(body: dict[str, Any]) -> Any:
    return (body.get("metadata") or {}).get("namespace")
