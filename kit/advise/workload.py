"""What ``python -m kit advise`` is asked about: a model, its data, a budget, a target and where it runs.

A :class:`Workload` comes from a YAML mapping (``--file``), from flags, or from a worked example; every
field is checked when it is made, and a bad one is a :class:`WorkloadError` naming the field and the fix.
Where the workload runs fills in the machine when the description leaves it out: a laptop or kind is
Docker Desktop's default share (:data:`kit.deploy.sizing.DOCKER_DESKTOP`), Binder is one core and 2 GiB
(:data:`kit.advise.figures.BINDER`); a cluster or GPU pool must say how many nodes of what size.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from kit.advise.figures import BINDER
from kit.deploy.sizing import DOCKER_DESKTOP
from kit.errors import KitError

#: where a workload runs -> what it means
PLACES = {
    "laptop": "a laptop: notebooks and local Ray; kind (Docker Desktop) for the cluster stages",
    "binder": "mybinder.org: one container, no Kubernetes, no GPU",
    "workstation": "one machine without Kubernetes, possibly with GPUs",
    "kind": "a kind cluster on a laptop (Docker Desktop's share)",
    "cluster": "a Kubernetes cluster of CPU nodes",
    "gpu-pool": "a Kubernetes cluster whose nodes have GPUs",
}
KUBERNETES = ("kind", "cluster", "gpu-pool")
MODEL_KINDS = ("classifier", "llm")
#: parameters of the kit's digits MLP (64-128-128-10): 64*128+128 + 128*128+128 + 128*10+10
KIT_MODEL_PARAMS = 26_122
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


class WorkloadError(KitError, ValueError):
    """A workload field that is missing, of the wrong type or out of range."""

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        super().__init__(f"workload field {field!r}: {problem}",
                         fix=fix or f"set {field} as `python -m kit advise --help` describes it")
        self.field = field


@dataclass(frozen=True)
class Workload:
    """A deployment to advise on. Sizes are in GB (10^9 bytes), times in hours or milliseconds."""

    name: str = "workload"
    where: str = "laptop"
    #: parameter count ("125M", "7B", 26122); None: the kit's digits model
    model_params: float | None = None
    #: the model's size on disk in MB, when the parameter count is not known (fp32: 4 bytes a parameter)
    model_mb: float | None = None
    model_kind: str = "classifier"
    #: one forward pass at batch 1 / at batch 16 on the serving hardware, measured (kit.serve.speed.forward_ms)
    model_ms: float | None = None
    batch16_ms: float | None = None
    #: requests/s one replica sustains, measured (needed for an LLM server, which batches continuously)
    replica_rps: float = 0.0
    data_gb: float = 0.0
    #: training time budget; 0: no training
    train_hours: float = 0.0
    #: the work needs a GPU (CUDA kernels, bf16 at scale): a cluster without GPUs is a contradiction
    requires_gpu: bool = False
    #: uses Ray beyond training (Tune, Ray Data, Serve composition): Ray-based launchers then fit
    uses_ray: bool = False
    gpus: int = 0
    gpus_per_node: int = 0
    gpu_type: str = ""
    gpu_memory_gb: float = 0.0
    nodes: int = 0
    node_cpus: float = 0.0
    node_memory_gb: float = 0.0
    #: online serving target; 0: no online serving
    serve_rps: float = 0.0
    p95_ms: float = 0.0
    #: offline (batch) inference: rows per run and the window it must finish in
    batch_rows: int = 0
    batch_window_hours: float = 0.0
    teams: int = 1
    #: explicit Kueue quota per team (0: the advisor divides what is left)
    team_cpus: float = 0.0
    team_memory_gb: float = 0.0
    #: a StorageClass offering ReadWriteMany, when the cluster has one
    storage_class: str = ""
    #: prices for the estimate; 0: the stated assumptions of kit.advise.figures
    usd_per_gpu_hour: float = 0.0
    usd_per_cpu_hour: float = 0.0

    def __post_init__(self) -> None:
        _check(self)

    # ------------------------------------------------------------------ derived
    @property
    def params(self) -> float:
        """Parameters: given, from the size on disk (fp32), or the kit's digits model."""
        if self.model_params is not None:
            return self.model_params
        if self.model_mb is not None:
            return self.model_mb * 1e6 / 4
        return KIT_MODEL_PARAMS

    @property
    def kit_model(self) -> bool:
        return self.model_params is None and self.model_mb is None

    @property
    def kubernetes(self) -> bool:
        return self.where in KUBERNETES

    @property
    def training(self) -> bool:
        return self.train_hours > 0

    @property
    def online(self) -> bool:
        return self.serve_rps > 0

    @property
    def offline(self) -> bool:
        return self.batch_rows > 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_count(field: str, value: Any) -> float:
    if isinstance(value, bool):
        raise WorkloadError(field, f"must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([kKmMbBgGtT]?)\s*", str(value))
        if not match:
            raise WorkloadError(field, f"{value!r} is not a count", fix=f"write {field} like 125M, 7B or 26122")
        number = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(number) or number <= 0:
        raise WorkloadError(field, f"must be > 0, got {value!r}")
    return number


_NUMBERS = ("model_mb", "model_ms", "batch16_ms", "replica_rps", "data_gb", "train_hours", "gpu_memory_gb",
            "node_cpus", "node_memory_gb", "serve_rps", "p95_ms", "batch_window_hours", "team_cpus", "team_memory_gb",
            "usd_per_gpu_hour", "usd_per_cpu_hour")
_INTS = ("gpus", "gpus_per_node", "nodes", "batch_rows", "teams")


def _check(w: Workload) -> None:
    if w.where not in PLACES:
        raise WorkloadError("where", f"{w.where!r} is not one of {', '.join(PLACES)}")
    if w.model_kind not in MODEL_KINDS:
        raise WorkloadError("model_kind", f"{w.model_kind!r} is not one of {', '.join(MODEL_KINDS)}")
    for name in _NUMBERS:
        value = getattr(w, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise WorkloadError(name, f"must be a number >= 0, got {value!r}")
    for name in _INTS:
        value = getattr(w, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise WorkloadError(name, f"must be a whole number >= 0, got {value!r}")
    if w.model_params is not None:
        _parse_count("model_params", w.model_params)  # a number > 0 (from_mapping has read "7B" already)
        if not isinstance(w.model_params, (int, float)):
            raise WorkloadError("model_params", f"must be a number here, got {w.model_params!r}",
                                fix="build workloads with from_mapping, which reads 125M or 7B")
    if w.teams < 1:
        raise WorkloadError("teams", "must be at least 1")
    if w.model_params is not None and w.model_mb is not None:
        raise WorkloadError("model_mb", "give model_params or model_mb, not both")
    if w.model_kind == "llm" and w.kit_model:
        raise WorkloadError("model_params", "an LLM needs its size", fix="set model_params (e.g. 500M) or model_mb")
    if w.p95_ms and not w.serve_rps:
        raise WorkloadError("serve_rps", "p95_ms is set but no request rate", fix="set serve_rps (requests/s)")
    if w.online and not w.p95_ms:
        raise WorkloadError("p95_ms", "online serving needs a p95 latency target in ms", fix="set p95_ms, e.g. 200")
    if (w.online or w.offline) and not w.kit_model and not w.model_ms:
        raise WorkloadError("model_ms", "serving a model other than the kit's needs its measured forward pass",
                            fix="time one forward pass at batch 1 on the serving hardware (for a kit artifact: "
                                "kit.serve.speed.forward_ms(model_dir, (1, 16))) and set model_ms (and batch16_ms)")
    if w.online and w.model_kind == "llm" and not w.replica_rps:
        raise WorkloadError("replica_rps", "an LLM server batches requests continuously: its latency does not "
                            "give its throughput",
                            fix="measure one replica's requests/s at your p95 and set replica_rps")
    if w.offline and not w.batch_window_hours:
        raise WorkloadError("batch_window_hours", "batch inference needs the window it must finish in")
    if w.gpus and not w.gpu_memory_gb:
        raise WorkloadError("gpu_memory_gb", "GPUs need their memory size", fix="set gpu_memory_gb, e.g. 80")
    if w.gpus_per_node > w.gpus:
        raise WorkloadError("gpus_per_node", f"{w.gpus_per_node} per node but only {w.gpus} GPUs in all")
    if w.where in ("cluster", "gpu-pool"):
        for name in ("nodes", "node_cpus", "node_memory_gb"):
            if not getattr(w, name):
                raise WorkloadError(name, f"a {w.where} must say its node count and size",
                                    fix="set nodes, node_cpus and node_memory_gb (one node's allocatable)")
    if w.where == "gpu-pool" and not w.gpus:
        raise WorkloadError("gpus", "a gpu-pool needs its GPU count", fix="set gpus (and gpus_per_node)")


def machine_defaults(where: str) -> dict[str, Any]:
    """The machine a place implies when the description leaves it out."""
    if where in ("laptop", "kind"):
        return {"nodes": 1, "node_cpus": DOCKER_DESKTOP.cpu_millis / 1000,
                "node_memory_gb": DOCKER_DESKTOP.memory_bytes / 1e9}
    if where == "binder":
        return {"nodes": 1, "node_cpus": BINDER.value["cpus"], "node_memory_gb": BINDER.value["memory_gb"]}
    if where == "workstation":
        return {"nodes": 1}
    return {}


def from_mapping(data: Any, source: str = "the workload") -> Workload:
    """A :class:`Workload` from a mapping (parsed YAML or flags): unknown keys are errors, the place's
    machine fills what is left out, and counts may be written ``125M`` / ``7B``."""
    if not isinstance(data, dict):
        raise WorkloadError("<root>", f"{source} must be a mapping of fields, got {type(data).__name__}")
    known = {f.name for f in fields(Workload)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise WorkloadError(unknown[0], f"{source} has unknown field(s) {', '.join(map(str, unknown))}",
                            fix=f"use the fields of kit.advise.workload.Workload: {', '.join(sorted(known))}")
    values = {k: v for k, v in data.items() if v is not None}
    where = values.get("where", Workload.where)
    merged = {**machine_defaults(str(where)), **values}
    if "model_params" in merged:
        merged["model_params"] = _parse_count("model_params", merged["model_params"])
    for name in _INTS:  # YAML may give 2.0; a whole float is a whole number
        if isinstance(merged.get(name), float) and float(merged[name]).is_integer():
            merged[name] = int(merged[name])
    if where == "binder" and merged.get("gpus"):
        raise WorkloadError("gpus", "Binder has no GPUs", fix="set where to workstation or gpu-pool, or gpus to 0")
    return Workload(**merged)


def load(path: Path | str) -> Workload:
    """A workload from a YAML file."""
    return from_mapping(read(path), str(path))


def read(path: Path | str) -> Any:
    """A YAML file's contents, unchecked (:func:`from_mapping` checks them)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise KitError(f"cannot read {path}: {error.strerror}", fix="pass an existing YAML file") from None
    except yaml.YAMLError as error:
        raise KitError(f"{path} is not YAML: {error}", fix="fix the file's syntax") from None
    return data
