"""What a set of manifests asks the scheduler for: pod resource requests summed per workload.

:func:`requests_of` adds up the cpu, memory and GPU *requests* of every pod the documents will
make, split into what Kueue admits (the workload carries the ``kueue.x-k8s.io/queue-name`` label)
and what starts without a queue; :func:`workloads` gives the same per resource. Counted:

- Pod, Job (``parallelism``, at most ``completions``), CronJob (one run), Deployment, StatefulSet,
  ReplicaSet (``replicas``), DaemonSet (one node's pod);
- RayCluster, RayJob ``rayClusterSpec``, RayService ``rayClusterConfig``: the head, every worker group's
  ``replicas × numOfHosts``, the autoscaler sidecar KubeRay adds when ``enableInTreeAutoscaling``; a
  RayJob's submitter pod (its ``submitterPodTemplate``, else KubeRay's default) in K8sJobMode;
- TrainJob: the runtime's replicated jobs (when the ClusterTrainingRuntime or TrainingRuntime is among the
  documents), the trainer's ``numNodes`` pods with ``resourcesPerNode`` merged over the ``node`` container's;
- InferenceService: each component (predictor, transformer, explainer) × ``minReplicas`` (default 1);
- anything else with pod templates (PyTorchJob, JobSet...): each template × the ``replicas`` beside it.

``peak=True`` counts what long-running servers may reach: an InferenceService component's
``maxReplicas`` (its autoscaler) and a Deployment's ``replicas``, each at least one pod more than the
minimum (a rolling update starts the new pod before it stops the old: Kubernetes' default maxSurge 25%
rounds up to one pod).

A pod's request is what the scheduler uses (Kubernetes "effective request"): the larger of its
containers plus sidecars (init containers with ``restartPolicy: Always``) and, for each plain init
container, that container plus the sidecars started before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from kit.errors import KitError
from kit.k8s import traverse
from kit.versions import QUEUE_LABEL

QUEUED = "queued"
UNQUEUED = "unqueued"

#: KubeRay v1.7.0 ray-operator/controllers/ray/common/job.go GetDefaultSubmitterContainer.
DEFAULT_SUBMITTER = {"requests": {"cpu": "500m", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
#: KubeRay v1.7.0 ray-operator/controllers/ray/common/pod.go BuildAutoscalerContainer (AutoscalerOptions overrides).
DEFAULT_AUTOSCALER = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
#: Kubeflow Trainer v2.3.0 pkg/constants: the trainer's container and replicated job are named "node", and
#: the trainer's job carries the label ``trainer.kubeflow.org/trainjob-ancestor-step: trainer``.
TRAINER_CONTAINER = "node"
TRAINER_ANCESTOR = ("trainer.kubeflow.org/trainjob-ancestor-step", "trainer")

_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
             "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
             "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
             "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
             "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


class QuantityError(KitError, ValueError):
    """A resource amount that is not a Kubernetes quantity."""


def quantity(value: str | int | float, what: str = "quantity") -> Decimal:
    """A Kubernetes quantity (``"500m"``, ``"2Gi"``, ``"1e3"``, ``4``) as an exact number."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(f"{what} {value!r} is not a Kubernetes quantity",
                            fix="write it like 500m or 2 (cpu), 512Mi or 2Gi (memory)")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2) or ""]
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise QuantityError(f"{what} {value!r} is not a number", fix="write it like 500m or 2Gi") from None


def _ceil(number: Decimal) -> int:
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


@dataclass(frozen=True, order=False)
class Requests:
    """Requested cpu (millicores), memory (bytes) and GPUs; ``+``, ``-`` and ``* n`` work per resource."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    gpus: int = 0

    @classmethod
    def parse(cls, cpu: str | int | float = 0, memory: str | int | float = 0, gpus: int | str = 0) -> Requests:
        """``Requests.parse("500m", "2Gi", 1)``."""
        return cls(_ceil(quantity(cpu, "cpu") * 1000), _ceil(quantity(memory, "memory")), int(quantity(gpus, "gpus")))

    @classmethod
    def of_resources(cls, amounts: Mapping[str, Any] | None) -> Requests:
        """A ``resources.requests`` mapping (any ``*/gpu`` resource counts as GPUs)."""
        amounts = amounts or {}
        gpus = sum(int(quantity(v, k)) for k, v in amounts.items() if str(k).endswith("/gpu"))
        return cls.parse(amounts.get("cpu", 0), amounts.get("memory", 0), gpus)

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu_millis + other.cpu_millis, self.memory_bytes + other.memory_bytes,
                        self.gpus + other.gpus)

    def __sub__(self, other: Requests) -> Requests:
        return Requests(self.cpu_millis - other.cpu_millis, self.memory_bytes - other.memory_bytes,
                        self.gpus - other.gpus)

    def __mul__(self, times: int) -> Requests:
        return Requests(self.cpu_millis * times, self.memory_bytes * times, self.gpus * times)

    __rmul__ = __mul__

    def max(self, other: Requests) -> Requests:
        """The larger amount of each resource."""
        return Requests(max(self.cpu_millis, other.cpu_millis), max(self.memory_bytes, other.memory_bytes),
                        max(self.gpus, other.gpus))

    def fits(self, capacity: Requests) -> bool:
        """Whether every resource is at most ``capacity``'s."""
        return not self.short_of(capacity)

    def short_of(self, capacity: Requests) -> list[str]:
        """The resources this asks more of than ``capacity`` has (``["cpu", "memory"]``...)."""
        pairs = (("cpu", self.cpu_millis, capacity.cpu_millis), ("memory", self.memory_bytes, capacity.memory_bytes),
                 ("gpus", self.gpus, capacity.gpus))
        return [name for name, mine, theirs in pairs if mine > theirs]

    @property
    def cpu(self) -> str:
        """The cpu as a quantity (``"1500m"``, ``"2"``)."""
        return f"{self.cpu_millis // 1000}" if self.cpu_millis % 1000 == 0 else f"{self.cpu_millis}m"

    @property
    def memory(self) -> str:
        """The memory as a quantity in the largest binary unit that divides it (``"9728Mi"``, ``"8Gi"``)."""
        for unit in ("Gi", "Mi", "Ki"):
            size = int(_SUFFIXES[unit])
            if self.memory_bytes % size == 0 and self.memory_bytes:
                return f"{self.memory_bytes // size}{unit}"
        return str(self.memory_bytes)

    def __str__(self) -> str:
        gib = self.memory_bytes / 2**30
        text = f"{self.cpu_millis / 1000:g} cpu, {gib:.2f} GiB"
        return f"{text}, {self.gpus} gpu" if self.gpus else text


ZERO = Requests()


def container_requests(container: Mapping[str, Any]) -> Requests:
    """One container's ``resources.requests``."""
    return Requests.of_resources((container.get("resources") or {}).get("requests"))


def pod_requests(pod: Mapping[str, Any]) -> Requests:
    """A pod spec's effective request (sidecars and init containers as the scheduler counts them)."""
    sidecars = ZERO
    init_peak = ZERO
    for init in pod.get("initContainers") or []:
        if init.get("restartPolicy") == "Always":
            sidecars = sidecars + container_requests(init)
        else:
            init_peak = init_peak.max(sidecars + container_requests(init))
    running = sidecars
    for _, list_name, container in traverse.containers(dict(pod)):
        if list_name not in ("initContainers", "ephemeralContainers"):
            running = running + container_requests(container)
    return running.max(init_peak)


@dataclass(frozen=True)
class Workload:
    """One document's pods: ``Kind/name``, whether Kueue admits it, and what all its pods request."""

    name: str
    queued: bool
    requests: Requests
    pods: int

    def __str__(self) -> str:
        return f"{self.name:<40} {'queued' if self.queued else 'not queued':<11} {self.pods:>2} pod(s)  {self.requests}"


def _replicas(value: Any, default: int = 1) -> int:
    return default if value is None else int(value)


def _ray_pods(cluster: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    head_pod = dict(((cluster.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {})
    if cluster.get("enableInTreeAutoscaling"):
        resources = (cluster.get("autoscalerOptions") or {}).get("resources") or DEFAULT_AUTOSCALER
        head_pod["containers"] = [*head_pod.get("containers", []), {"name": "autoscaler", "resources": resources}]
    found = [(1, head_pod)]
    for group in cluster.get("workerGroupSpecs") or []:
        count = _replicas(group.get("replicas"), _replicas(group.get("minReplicas"), 0))
        found.append((count * _replicas(group.get("numOfHosts")), (group.get("template") or {}).get("spec") or {}))
    return found


def _job_pods(spec: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    parallel = _replicas(spec.get("parallelism"))
    if spec.get("completions") is not None:
        parallel = min(parallel, int(spec["completions"]))
    return [(parallel, (spec.get("template") or {}).get("spec") or {})]


def _runtime_of(doc: Mapping[str, Any], runtimes: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    ref = (doc.get("spec") or {}).get("runtimeRef") or {}
    return runtimes.get(f"{ref.get('kind', 'ClusterTrainingRuntime')}/{ref.get('name')}")


def _trainjob_pods(doc: Mapping[str, Any],
                   runtimes: Mapping[str, Mapping[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Kubeflow Trainer v2.3.0 pkg/runtime/core/trainingruntime.go ``newRuntimeInfo``: the trainer ancestor's
    replicated job runs ``numNodes`` pods, its ``node`` container's resources merged with ``resourcesPerNode``
    (pkg/util/trainingruntime MergeResourceRequirements); other replicated jobs run ``parallelism`` pods."""
    trainer = (doc.get("spec") or {}).get("trainer") or {}
    per_node = (trainer.get("resourcesPerNode") or {}).get("requests")
    runtime = _runtime_of(doc, runtimes)
    policy_nodes = ((runtime or {}).get("spec") or {}).get("mlPolicy", {}).get("numNodes")
    nodes = _replicas(trainer.get("numNodes"), _replicas(policy_nodes))
    if runtime is None:  # only the trainer's own fields are known
        return [(nodes, {"containers": [{"name": TRAINER_CONTAINER, "resources": {"requests": per_node or {}}}]})]
    found = []
    for job in runtime["spec"].get("template", {}).get("spec", {}).get("replicatedJobs", []):
        job_template = job.get("template") or {}
        labels = (job_template.get("metadata") or {}).get("labels") or {}
        job_spec = job_template.get("spec") or {}
        pod = dict((job_spec.get("template") or {}).get("spec") or {})
        if labels.get(TRAINER_ANCESTOR[0]) != TRAINER_ANCESTOR[1]:
            found.append((_replicas(job_spec.get("parallelism")), pod))
            continue
        if per_node:
            pod["containers"] = [
                {**c, "resources": {"requests": {**((c.get("resources") or {}).get("requests") or {}), **per_node}}}
                if c.get("name") == TRAINER_CONTAINER else c for c in pod.get("containers", [])]
        found.append((nodes, pod))
    return found


def _generic_pods(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Pod templates anywhere in the resource, each times the ``replicas`` of the mapping that holds its template."""
    found = []
    for path, pod in traverse.pod_specs(doc):
        holder: Any = doc
        for part in path[:-2]:
            holder = holder[part]
        count = _replicas(holder.get("replicas")) if isinstance(holder, dict) and path[-2:] == ("template", "spec") \
            else 1
        found.append((count, pod))
    return found


def _component_pods(component: Mapping[str, Any], peak: bool) -> int:
    least = _replicas(component.get("minReplicas"))
    return max(_replicas(component.get("maxReplicas"), 0), least + 1) if peak else least


def pods_of(doc: dict[str, Any], runtimes: Mapping[str, Mapping[str, Any]] | None = None, *,
            peak: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(pod count, pod spec) for every kind of pod the document makes; ``runtimes``: ``Kind/name`` -> runtime;
    ``peak``: servers at their most (see the module's docstring)."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return [(1, spec)]
    if kind == "Job":
        return _job_pods(spec)
    if kind == "CronJob":
        return _job_pods((spec.get("jobTemplate") or {}).get("spec") or {})
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        surge = 1 if peak and kind == "Deployment" else 0
        return [(_replicas(spec.get("replicas")) + surge, (spec.get("template") or {}).get("spec") or {})]
    if kind == "DaemonSet":
        return [(1, (spec.get("template") or {}).get("spec") or {})]
    if kind in ("RayCluster", "RayJob", "RayService"):
        found = [pair for _, cluster in traverse.ray_cluster_specs(doc) for pair in _ray_pods(cluster)]
        if kind == "RayJob" and spec.get("submissionMode", "K8sJobMode") == "K8sJobMode":
            submitter = (spec.get("submitterPodTemplate") or {}).get("spec") or {
                "containers": [{"name": "ray-job-submitter", "resources": DEFAULT_SUBMITTER}]}
            found.append((1, submitter))
        return found
    if kind == "TrainJob":
        return _trainjob_pods(doc, runtimes or {})
    if kind == "InferenceService":
        return [(_component_pods(spec[part], peak), spec[part])
                for part in traverse.KSERVE_COMPONENTS if isinstance(spec.get(part), dict)]
    if kind in ("ClusterTrainingRuntime", "TrainingRuntime", "PodTemplate"):
        return []  # templates: pods only exist for the jobs that use them
    return _generic_pods(doc)


def is_queued(doc: Mapping[str, Any]) -> bool:
    """Whether Kueue admits the workload: the queue label on it (or on a Deployment's pod template)."""
    labels = (doc.get("metadata") or {}).get("labels") or {}
    template_labels = (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    return QUEUE_LABEL in labels or QUEUE_LABEL in template_labels


def workloads(documents: Iterable[Mapping[str, Any]], *, peak: bool = False) -> list[Workload]:
    """Every document that makes pods, with what its pods request together (``peak``: servers at their most)."""
    docs = [dict(doc) for doc in documents if isinstance(doc, Mapping)]
    runtimes = {f"{d['kind']}/{(d.get('metadata') or {}).get('name')}": d for d in docs
                if d.get("kind") in ("ClusterTrainingRuntime", "TrainingRuntime")}
    found = []
    for doc in docs:
        pods = pods_of(doc, runtimes, peak=peak)
        if not pods:
            continue
        total = ZERO
        for count, pod in pods:
            total = total + pod_requests(pod) * count
        name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name', '?')}"
        found.append(Workload(name, is_queued(doc), total, sum(count for count, _ in pods)))
    return found


def requests_of(documents: Iterable[Mapping[str, Any]], *, peak: bool = False) -> dict[str, Requests]:
    """``{"queued": ..., "unqueued": ...}``: what Kueue admits and what starts without a queue, summed
    (``peak``: servers at their most)."""
    totals = {QUEUED: ZERO, UNQUEUED: ZERO}
    for workload in workloads(documents, peak=peak):
        key = QUEUED if workload.queued else UNQUEUED
        totals[key] = totals[key] + workload.requests
    return totals
