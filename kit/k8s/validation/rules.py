"""The kit's own rules the schemas cannot express (the operators' are in :mod:`.admission`, called from
:func:`semantic_problems`): image and ``rayVersion`` pins, replicas within their bounds, the queue label,
nothing defined twice. Each rule names where it comes from; the queue label rule:

**Queue label rule.** The workloads Kueue admits (RayJob, RayCluster, RayService,
TrainJob, PyTorchJob) must carry the label ``kueue.x-k8s.io/queue-name``:

- when ``queue=NAME`` (``--queue NAME``) is given: on every such workload, equal to NAME;
- otherwise, when the documents checked together include a LocalQueue: on every such
  workload, naming one of those LocalQueues (in the same namespace when both set one);
- otherwise the label is not required (the queue may already exist on the cluster).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kit.k8s import traverse
from kit.k8s.validation import admission
from kit.k8s.validation.loading import Document
from kit.k8s.validation.problems import PathParts, Problem, is_int, short_value
from kit.versions import (
    IMAGES,
    KUEUE_GROUP,
    QUEUE_LABEL,
    RAY,
    RAY_GROUP,
    TRAINER_GROUP,
    TRAINING_OPERATOR_GROUP,
)

#: (API group, kind) of the workloads Kueue admits in the kit (Kueue's job integrations,
#: pkg/controller/jobs/ in kubernetes-sigs/kueue).
QUEUED_KINDS = frozenset({
    (RAY_GROUP, "RayJob"), (RAY_GROUP, "RayCluster"), (RAY_GROUP, "RayService"),
    (TRAINER_GROUP, "TrainJob"), (TRAINING_OPERATOR_GROUP, "PyTorchJob"),
})

_RAY_IMAGE_REPO = re.compile(r"(^|/)rayproject/ray(-[a-z]+)?$")
_RAY_TAG = re.compile(rf"^{re.escape(RAY)}(-|$)")
#: The kit's own image (any registry): its tag names the Ray version it was built on (versions.IMAGES["kit"]).
_KIT_IMAGE_REPO = re.compile(r"(^|/)kit$")
_KIT_TAG_RAY = re.compile(r"-ray(?P<ray>[0-9][^-]*)-")


def semantic_problems(body: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Rules the schemas cannot express, on one document: the operators' (:mod:`.admission`) and the kit's."""
    found = image_problems(body) + admission.document_problems(body)
    for base, cluster in traverse.ray_cluster_specs(body):
        found += ray_cluster_problems(base, cluster)
    return found


def ray_cluster_problems(base: PathParts, cluster: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Worker group replicas within their bounds and ``rayVersion`` of one RayCluster spec (the bounds
    themselves are KubeRay's rule: :func:`.admission.kuberay.cluster_spec_problems`).

    Replicas outside [minReplicas, maxReplicas] are clamped by KubeRay (``GetWorkerGroupDesiredReplicas``
    in ray-operator/controllers/ray/utils/util.go), so what was written is not what runs; the
    ``rayVersion`` pin is the kit's (a client/cluster Ray mismatch is KubeRay's most reported failure).
    """
    found: list[tuple[PathParts, str]] = []
    version = cluster.get("rayVersion")
    if version is not None and str(version) != RAY:
        found.append(((*base, "rayVersion"),
                      f"rayVersion {short_value(version)} does not match the kit's Ray version {RAY} "
                      "(kit.versions.RAY)"))
    groups = cluster.get("workerGroupSpecs")
    for i, group in enumerate(groups if isinstance(groups, list) else []):
        if not isinstance(group, dict):
            continue
        path = (*base, "workerGroupSpecs", i)
        low, high, replicas = (_int_or_none(group.get(key)) for key in ("minReplicas", "maxReplicas", "replicas"))
        if low is not None and high is not None and replicas is not None and low <= high \
                and not low <= replicas <= high:
            found.append(((*path, "replicas"),
                          f"replicas ({replicas}) must be between minReplicas ({low}) "
                          f"and maxReplicas ({high})"))
    return found


def _int_or_none(value: Any) -> int | None:
    return value if is_int(value) else None


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry/repo:tag@digest`` -> (repository, tag or None, digest or None)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest or None
    return name, None, digest or None


def image_problems(body: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Images pinned (a tag other than ``latest``, or a digest); Ray images at the kit's Ray version.

    The kit's rule (kit.versions.IMAGES), not an operator's: KubeRay requires the Ray image to match
    the cluster's ``rayVersion`` and the client's Ray, and ``:latest`` makes that unknowable.
    """
    found: list[tuple[PathParts, str]] = []
    for path, image in traverse.images(body):
        repository, tag, digest = split_image(image)
        if _RAY_IMAGE_REPO.search(repository):
            if tag is None or not _RAY_TAG.match(tag):
                found.append((path, f"Ray image {image!r} does not match the kit's Ray version {RAY}: "
                                    f"use the kit's image {IMAGES['kit']} (Ray, torch and kit) or Ray's own "
                                    f"{IMAGES['ray']} (kit.versions.IMAGES)"))
        elif tag == "latest":
            found.append((path, f"image {image!r} uses the :latest tag; pin a version tag or digest"))
        elif _KIT_IMAGE_REPO.search(repository) and tag is not None:
            match = _KIT_TAG_RAY.search(tag)
            if match is None or match["ray"] != RAY:
                found.append((path, f"kit image {image!r} was not built on Ray {RAY}: its tag must name ray{RAY} "
                                    f"like {IMAGES['kit']} (`make image` builds it)"))
        elif tag is None and digest is None:
            found.append((path, f"image {image!r} has no tag (that means :latest); "
                                "pin a version tag or digest"))
    return found


# --------------------------------------------------------------------------- rules across documents


def _namespace(body: dict[str, Any]) -> str | None:
    metadata = body.get("metadata")
    return metadata.get("namespace") if isinstance(metadata, dict) else None


def _queued(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("apiVersion"), str):
        return False
    return (body["apiVersion"].rpartition("/")[0], body.get("kind")) in QUEUED_KINDS


def queue_label_problems(documents: Sequence[Document], queue: str | None = None) -> list[Problem]:
    """The queue label rule of the module docstring; the label is Kueue's ``QueueLabel``
    (pkg/controller/constants/constants.go in kubernetes-sigs/kueue)."""
    local_queues = [d.body for d in documents
                    if isinstance(d.body, dict) and d.body.get("kind") == "LocalQueue"
                    and str(d.body.get("apiVersion", "")).startswith(KUEUE_GROUP + "/")]
    if queue is None and not local_queues:
        return []
    queue_names = sorted({str((q.get("metadata") or {}).get("name")) for q in local_queues})
    problems = []
    for document in documents:
        if not _queued(document.body):
            continue
        labels = (document.body.get("metadata") or {}).get("labels") or {}
        path = ("metadata", "labels", QUEUE_LABEL)
        value = labels.get(QUEUE_LABEL) if isinstance(labels, dict) else None
        expected = repr(queue) if queue is not None else "one of the LocalQueues " + ", ".join(queue_names)
        if value is None:
            problems.append(document.problem(path, f"missing label {QUEUE_LABEL} (expected {expected}): "
                                                   "without it Kueue does not admit the workload"))
        elif queue is not None and value != queue:
            problems.append(document.problem(path, f"queue label is {value!r}, expected {queue!r}"))
        elif queue is None and not _names_local_queue(document.body, value, local_queues):
            problems.append(document.problem(path, f"queue label {value!r} names no LocalQueue in these "
                                                   f"manifests (expected {expected}, same namespace)"))
    return problems


def _names_local_queue(body: dict[str, Any], value: str, local_queues: list[dict[str, Any]]) -> bool:
    namespace = _namespace(body)
    for queue in local_queues:
        queue_namespace = _namespace(queue)
        same_namespace = namespace is None or queue_namespace is None or namespace == queue_namespace
        if (queue.get("metadata") or {}).get("name") == value and same_namespace:
            return True
    return False


def duplicate_problems(documents: Sequence[Document]) -> list[Problem]:
    """The same apiVersion group, kind, namespace and name defined twice: the second silently wins.

    kubectl's rule, not an operator's: ``kubectl apply`` of one file applies both, the last one wins."""
    seen: dict[tuple[str, str, str, str], Document] = {}
    problems = []
    for document in documents:
        body = document.body
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            continue
        name = body["metadata"].get("name")
        if not name:
            continue
        key = (str(body.get("apiVersion", "")).rpartition("/")[0], str(body.get("kind")),
               str(_namespace(body) or ""), str(name))
        if key in seen:
            first = seen[key]
            problems.append(document.problem("metadata.name", f"defined twice: also in {first.source} "
                                                              f"(document {first.index + 1})"))
        else:
            seen[key] = document
    return problems


