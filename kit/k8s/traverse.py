"""Find pod specs, containers, images and Ray cluster specs inside any resource.

Custom resources nest pods in many places (RayCluster head and worker groups,
RayJob ``rayClusterSpec``, TrainJob runtimes' ``replicatedJobs``, PyTorchJob
``pytorchReplicaSpecs``, KServe predictors). Rather than a list of paths per kind,
the walk is generic: a pod spec is any mapping with a ``containers`` list. KServe
components (predictor, transformer, explainer) are pod specs too even when they
only have a ``model`` (or ``sklearn``, ``pytorch``...) container. ``status`` is
never walked: it is written by controllers, not by the manifest's author.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kit.k8s.validation.problems import PathParts
from kit.versions import RAY_GROUP

#: KServe component fields that are containers themselves (a model server framework).
KSERVE_MODEL_KEYS = (
    "model", "sklearn", "xgboost", "lightgbm", "pytorch", "tensorflow", "onnx", "triton",
    "huggingface", "paddle", "pmml",
)
KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def iter_nodes(doc: Any, path: PathParts = ()) -> Iterator[tuple[PathParts, Any]]:
    """Every value in ``doc`` with its path, parents before children; top-level ``status`` skipped."""
    yield path, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            if path == () and key == "status":
                continue
            yield from iter_nodes(value, (*path, str(key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from iter_nodes(value, (*path, index))


def _is_kserve_component(doc: dict[str, Any], path: PathParts) -> bool:
    return doc.get("kind") == "InferenceService" and len(path) >= 2 and path[-1] in KSERVE_COMPONENTS


def all_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container of every pod spec in the resource."""
    return [container for _, pod in pod_specs(doc) for _, _, container in containers(pod)]


def pod_specs(doc: dict[str, Any]) -> list[tuple[PathParts, dict[str, Any]]]:
    """Every pod spec in the resource (a Pod's own ``spec`` included), with its path."""
    found = []
    for path, node in iter_nodes(doc):
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("containers"), list) or _is_kserve_component(doc, path):
            found.append((path, node))
    return found


def containers(pod: dict[str, Any]) -> list[tuple[PathParts, str, dict[str, Any]]]:
    """The containers of one pod spec: (path relative to the pod, list name, container).

    A KServe framework field (``model``, ``sklearn``...) counts as a container named by its field.
    """
    found: list[tuple[PathParts, str, dict[str, Any]]] = []
    for list_name in CONTAINER_LISTS:
        items = pod.get(list_name)
        if isinstance(items, list):
            found += [((list_name, i), list_name, c) for i, c in enumerate(items) if isinstance(c, dict)]
    for key in KSERVE_MODEL_KEYS:
        if isinstance(pod.get(key), dict):
            found.append(((key,), key, pod[key]))
    return found


def ray_cluster_specs(doc: dict[str, Any]) -> list[tuple[PathParts, dict[str, Any]]]:
    """RayCluster specs: RayCluster ``spec``, RayJob ``rayClusterSpec``, RayService ``rayClusterConfig``."""
    spec = doc.get("spec")
    if not isinstance(spec, dict) or not str(doc.get("apiVersion", "")).startswith(f"{RAY_GROUP}/"):
        return []
    field_by_kind = {"RayCluster": None, "RayJob": "rayClusterSpec", "RayService": "rayClusterConfig"}
    kind = doc.get("kind")
    if kind not in field_by_kind:
        return []
    field_name = field_by_kind[kind]
    if field_name is None:
        return [(("spec",), spec)]
    cluster = spec.get(field_name)
    return [(("spec", field_name), cluster)] if isinstance(cluster, dict) else []


def images(doc: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Every ``image: <string>`` field in the resource (containers, TrainJob ``trainer.image``...)."""
    return [(path, node) for path, node in iter_nodes(doc)
            if path and path[-1] == "image" and isinstance(node, str)]


def env_lists(doc: dict[str, Any]) -> list[tuple[PathParts, list[Any]]]:
    """Every ``env: [...]`` list in the resource (containers, TrainJob ``trainer.env``...)."""
    return [(path, node) for path, node in iter_nodes(doc)
            if path and path[-1] == "env" and isinstance(node, list)]
