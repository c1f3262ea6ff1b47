"""Which shape of the Ray Serve application fits this machine's memory.

Every Serve replica is a Ray actor process (about :data:`ACTOR_MIB` of PSS without a torch model
loaded) and ``import torch`` adds about :data:`TORCH_MIB`. The full shape of stage 07 is a graph:
an ingress deployment calling a torch model deployment through a ``DeploymentHandle``. In Binder's
2 GiB that graph, with two model replicas for the replica-kill drill, does not fit beside the
notebook, Ray and Serve's controller and proxy. The compact shape serves the same HTTP API and the
same batched model from one deployment (one hop) whose replicas run the MLP in NumPy
(:mod:`kit.serve.numpy_model`), and keeps two replicas so that the drill still has a survivor.
:func:`choose` picks from the memory limit (:func:`kit.machine.resources.detect`, the cgroup's)
and says what a bigger machine would run instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kit.config.serve import CLASSIFIER, SERVICE, ServeConfig

MiB = 1024**2
#: PSS of a Serve replica without torch (Ray actor, Serve, FastAPI, NumPy), measured on Ray 2.60.
ACTOR_MIB = 145
#: What ``import torch`` (and a loaded model) adds to a process.
TORCH_MIB = 180
#: Everything else at the peak: the notebook kernel, Ray's GCS, raylet and agents, Serve's controller and
#: proxy, the load generator's threads (measured: stage 07 in a 2 GiB cgroup, less its model replicas and
#: the autoscaler monitor and dashboard that the kit's local Ray no longer starts).
BASE_MIB = 900
#: Share of the memory limit the estimate may fill: page cache, spikes and the estimate's error need the rest.
HEADROOM = 0.7


@dataclass(frozen=True)
class ServeShape:
    """One application shape: its deployments, its replicas' predictor backend, its estimated peak."""

    one_hop: bool
    backend: str  # the model replicas' predictor backend ("torch", or "auto": NumPy for the MLP)
    num_replicas: int

    @property
    def model_deployment(self) -> str:
        return SERVICE if self.one_hop else CLASSIFIER

    def estimate_mib(self) -> int:
        """Estimated peak PSS of the whole notebook with this shape."""
        replica = ACTOR_MIB + (TORCH_MIB if self.backend == "torch" else 0)
        return BASE_MIB + (0 if self.one_hop else ACTOR_MIB) + self.num_replicas * replica

    def describe(self) -> str:
        graph = "one deployment (HTTP API + model, one hop)" if self.one_hop else \
            "ingress -> model graph (a DeploymentHandle between them)"
        model = "NumPy MLP, no torch" if self.backend == "auto" else "torch"
        return f"{graph}, {self.num_replicas} model replicas ({model}), about {self.estimate_mib()} MiB"

    def config(self, model_dir: str, **fields) -> ServeConfig:
        """A :class:`ServeConfig` for this shape (``fields`` override the rest)."""
        return dataclasses.replace(ServeConfig(model_dir=model_dir, num_replicas=self.num_replicas,
                                               backend=self.backend), **fields)


FULL = ServeShape(one_hop=False, backend="torch", num_replicas=2)
COMPACT = ServeShape(one_hop=True, backend="auto", num_replicas=2)


@dataclass(frozen=True)
class ShapeChoice:
    """The shape chosen for this machine, why, and what a bigger one would run."""

    shape: ServeShape
    memory_bytes: int
    reason: str = ""  # why not by the memory limit alone ("" when by it)

    @property
    def needed_bytes(self) -> int:
        """Memory limit above which :data:`FULL` is chosen."""
        return int(FULL.estimate_mib() * MiB / HEADROOM)

    def __str__(self) -> str:
        name = "full" if self.shape == FULL else "compact"
        text = f"memory limit {self.memory_bytes / 1024**3:.1f} GiB{self.reason}: {name} shape, {self.shape.describe()}"
        if self.shape != FULL:
            where = "outside SMOKE, a machine" if self.reason else "a machine"
            text += f"\n{where} with {self.needed_bytes / 1024**3:.1f} GiB or more runs the full shape: "
            text += FULL.describe()
        return text


def choose(memory_bytes: int | None = None, smoke: bool = False) -> ShapeChoice:
    """:data:`FULL` where its estimate fits :data:`HEADROOM` of the memory limit, else :data:`COMPACT`.

    ``memory_bytes`` defaults to this process's limit (the cgroup's, else the host's). ``smoke`` (the
    tests' mode) takes the compact shape on any machine, so the tests measure what Binder runs.
    """
    if memory_bytes is None:
        from kit.machine import resources

        memory_bytes = resources.detect().memory_bytes
    if smoke:
        return ShapeChoice(COMPACT, memory_bytes, " (SMOKE: the tests run what Binder's 2 GiB runs)")
    return ShapeChoice(FULL if FULL.estimate_mib() * MiB <= HEADROOM * memory_bytes else COMPACT, memory_bytes)
