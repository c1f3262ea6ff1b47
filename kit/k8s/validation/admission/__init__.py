"""The operators' admission rules the CRD schemas cannot express, one module per operator, each rule
citing the upstream repository, tag, file and function it ports:

- :mod:`.trainer` — Kubeflow Trainer v2.3.0 (TrainJob, TrainingRuntime, ClusterTrainingRuntime);
- :mod:`.kuberay` — KubeRay v1.7.0 (RayCluster, RayJob, RayService);
- :mod:`.kueue` — Kueue v0.19.2 (ClusterQueue, ResourceFlavor, queued jobs);
- :mod:`.kserve`, :mod:`.servingruntime` — KServe v0.20.0 (InferenceService, ServingRuntime,
  ClusterServingRuntime);
- :mod:`.llmisvc` — KServe's LLMInferenceService webhook (v1alpha2);
- :mod:`.core` — the API server's own field validation of built-in kinds (Kubernetes
  :data:`kit.versions.KUBERNETES_VERSION`: names, labels, quantities, quotas, limit ranges), and of every
  pod spec's container resources;
- :mod:`.names` — Kubernetes' name, label and quantity formats they share.

"Valid" means "would be admitted": a webhook's rejection and a controller's ``ValidationFailed`` both count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kit.k8s import traverse
from kit.k8s.validation.admission import core, kserve, kuberay, kueue, llmisvc, servingruntime, trainer
from kit.k8s.validation.admission.fields import dig
from kit.k8s.validation.loading import Document
from kit.k8s.validation.problems import PathParts, Problem
from kit.versions import KSERVE_GROUP, KUEUE_GROUP, RAY_GROUP, TRAINER_GROUP

Found = list[tuple[PathParts, str]]


def _group_kind(body: dict[str, Any]) -> tuple[str, str]:
    return str(body.get("apiVersion", "")).rpartition("/")[0], str(body.get("kind"))


def document_problems(body: dict[str, Any]) -> Found:
    """The rules that need only this document (a TrainJob's need its runtime: :func:`set_problems`)."""
    group, kind = _group_kind(body)
    spec = dig(body, "spec")
    found = core.object_problems(body) + core.pod_problems(body)
    found += kueue.job_problems(body) if group != KUEUE_GROUP else []
    if group == RAY_GROUP and kind in kuberay.MAX_NAME_LENGTH:
        found += kuberay.metadata_problems(body)
        for base, cluster in traverse.ray_cluster_specs(body):
            found += kuberay.cluster_spec_problems(base, cluster, dig(body, "metadata", "annotations"))
        if kind == "RayJob":
            found += kuberay.rayjob_problems(spec)
        elif kind == "RayService":
            found += kuberay.rayservice_problems(spec)
    elif group == KUEUE_GROUP and kind == "ClusterQueue":
        found += kueue.cluster_queue_problems(spec)
    elif group == KUEUE_GROUP and kind == "ResourceFlavor":
        found += kueue.resource_flavor_problems(spec)
    elif group == TRAINER_GROUP and kind in trainer.RUNTIME_KINDS:
        found += trainer.training_runtime_problems(body)
    elif group == KSERVE_GROUP and kind == "InferenceService":
        found += kserve.inference_service_problems(body)
    elif group == KSERVE_GROUP and kind in servingruntime.KINDS:
        found += servingruntime.runtime_problems(body)
    elif group == KSERVE_GROUP and kind == llmisvc.KIND:
        found += llmisvc.llm_inference_service_problems(body)
    return found


def set_problems(documents: Sequence[Document]) -> list[Problem]:
    """The rules that need the other documents: TrainJobs against their runtimes, ServingRuntime priorities."""
    return trainjob_problems(documents) + servingruntime.priority_conflicts(documents)


def trainjob_problems(documents: Sequence[Document]) -> list[Problem]:
    """TrainJob rules, checked against the runtime each references: one among ``documents`` (a
    TrainingRuntime in the TrainJob's namespace, or a ClusterTrainingRuntime), else an upstream one."""
    runtimes: dict[tuple[str, str | None, str], trainer.RuntimeShape] = {}
    for document in documents:
        body = document.body
        if isinstance(body, dict) and _group_kind(body) in {(TRAINER_GROUP, k) for k in trainer.RUNTIME_KINDS}:
            metadata = body.get("metadata") or {}
            namespace = metadata.get("namespace") if body["kind"] == "TrainingRuntime" else None
            runtimes[(body["kind"], namespace, str(metadata.get("name")))] = trainer.runtime_shape(body)
    problems = []
    for document in documents:
        body = document.body
        if not isinstance(body, dict) or _group_kind(body) != (TRAINER_GROUP, "TrainJob"):
            continue
        ref = (body.get("spec") or {}).get("runtimeRef") or {}
        kind, name = ref.get("kind", "ClusterTrainingRuntime"), str(ref.get("name"))
        namespace = (body.get("metadata") or {}).get("namespace") if kind == "TrainingRuntime" else None
        runtime = runtimes.get((kind, namespace, name)) or trainer.UPSTREAM_RUNTIMES.get((kind, name))
        problems += [document.problem(path, message) for path, message in trainer.trainjob_problems(body, runtime)]
    return problems
