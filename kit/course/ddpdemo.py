"""DDP from first principles, for stage 03: all-reduce, gradient averaging and per-rank losses.

:func:`run_demo` starts this module under ``torchrun`` (one process per rank, a gloo
process group on the CPU). Each rank prints ``KIT_DDP {json}`` records that the
notebook reads back: what ``all_reduce`` did to each rank's tensor, the gradient each
rank computed on its shard next to the averaged one and the full-batch one, and a
short DDP training run's loss on every rank together with a checksum of its weights.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from kit.errors import KitError

DEMO_PREFIX = "KIT_DDP "


class NotEnoughCPUs(KitError, ValueError):
    """The demo asked for more processes than this machine has CPUs."""


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """The indices ``DistributedSampler(shuffle=False)`` gives ``rank``: padded round-robin."""
    per_rank = math.ceil(n / world_size)
    indices = list(range(n))
    padding = per_rank * world_size - n
    while padding > 0:  # repeat from the start until every rank gets per_rank samples
        extra = indices[:padding]
        indices += extra
        padding -= len(extra)
    return indices[rank::world_size]


def average_gradients(gradients: list[list[float]]) -> list[float]:
    """What every rank holds after DDP's all-reduce: the element-wise mean of the ranks' gradients."""
    world_size = len(gradients)
    return [sum(values) / world_size for values in zip(*gradients, strict=True)]


# --------------------------------------------------------------------------- in each rank


def _weight_grad(model: torch.nn.Linear) -> torch.Tensor:
    """A copy of the gradient ``backward()`` left on the model's weight."""
    grad = model.weight.grad
    if grad is None:
        raise RuntimeError("backward() left no gradient on the weight")
    return grad.clone()


def _emit(kind: str, **record) -> None:
    # One write per record: the ranks share one pipe, and print() may write text and newline separately.
    os.write(sys.stdout.fileno(), (DEMO_PREFIX + json.dumps({"kind": kind, **record}) + "\n").encode())


def _rank_main(data_path: str, steps: int, batch_size: int) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn import functional
    from torch.nn.parallel import DistributedDataParallel

    from kit.train import data, models

    dist.init_process_group(backend="gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    try:
        # 1. all-reduce on a tensor: every rank starts with its own values, all end with the sum.
        tensor = torch.full((3,), float(rank + 1))
        before = tensor.tolist()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        _emit("all_reduce", rank=rank, world_size=world_size, before=before, after=tensor.tolist())

        # 2. gradient averaging by hand: each rank's gradient on its shard, all-reduced and divided.
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(8 * world_size, 4, generator=generator)  # the same 'global batch' on every rank
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        torch.manual_seed(0)  # the same initial weights on every rank, as DDP guarantees by broadcasting
        model = torch.nn.Linear(4, 1, bias=False)
        mine = torch.tensor(shard_indices(len(x), rank, world_size))
        functional.mse_loss(model(x[mine]).squeeze(1), y[mine]).backward()
        local = _weight_grad(model)
        averaged = local.clone()
        dist.all_reduce(averaged, op=dist.ReduceOp.SUM)
        averaged /= world_size
        model.weight.grad = None
        functional.mse_loss(model(x).squeeze(1), y).backward()
        full = _weight_grad(model)
        _emit("gradients", rank=rank, local=_round(local), averaged=_round(averaged), full_batch=_round(full),
              match=bool(torch.allclose(averaged, full, atol=1e-6)))

        # 3. a short DDP run: different data (and loss) on each rank, identical weights on all.
        split = data.load_split(data_path)
        torch.manual_seed(0)
        net = DistributedDataParallel(models.build_model("mlp", split.num_features, split.num_classes, 64))
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        loader = data.train_loader(split, batch_size, rank, world_size, seed=0)
        losses: list[float] = []
        epoch = 0
        while len(losses) < steps:
            data.shard_sampler(loader).set_epoch(epoch)
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = functional.cross_entropy(net(xb), yb)
                loss.backward()  # DDP all-reduces (averages) the gradients here
                optimizer.step()
                losses.append(round(loss.item(), 5))
                if len(losses) == steps:
                    break
            epoch += 1
        checksum = sum(float(p.detach().double().sum()) for p in net.parameters())
        _emit("training", rank=rank, losses=losses, shard_size=len(data.shard_sampler(loader)),
              weights_checksum=round(checksum, 6))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _round(tensor) -> list[float]:
    return [round(v, 6) for v in tensor.flatten().tolist()]


# --------------------------------------------------------------------------- from the notebook


@dataclass
class DemoResult:
    """What the ranks reported, each list ordered by rank."""

    world_size: int
    all_reduce: list[dict] = field(default_factory=list)
    gradients: list[dict] = field(default_factory=list)
    training: list[dict] = field(default_factory=list)
    command: list[str] = field(default_factory=list)


def demo_command(nproc: int, data_path: str, steps: int, batch_size: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "kit.course.ddpdemo", data_path, str(steps), str(batch_size)]


def run_demo(nproc: int = 2, steps: int = 30, batch_size: int = 32, timeout_s: float = 300) -> DemoResult:
    """Run the three demos under ``torchrun --nproc-per-node nproc`` and collect every rank's records."""
    from kit.machine import resources
    from kit.train import data
    from kit.train import launchers as launch

    # The demo shows what DDP computes, not how fast: two processes share one CPU (Binder) without harm.
    limit = max(2, resources.detect().cpu_slots)
    if nproc > limit:
        raise NotEnoughCPUs(f"{nproc} processes are too many for this machine's {resources.detect().cpu_slots} CPU(s)",
                            fix=f"run the demo with nproc <= {limit}")
    path = str(data.materialize("digits"))
    command = demo_command(nproc, path, steps, batch_size)
    with launch.private_tmpdir(launch.child_env(nproc)) as env:
        lines = launch.stream_command(command, env, on_line=None, timeout_s=timeout_s)
    result = DemoResult(world_size=nproc, command=command)
    for line in lines:
        if DEMO_PREFIX in line:
            record = json.loads(line.split(DEMO_PREFIX, 1)[1])
            getattr(result, record.pop("kind")).append(record)
    for records in (result.all_reduce, result.gradients, result.training):
        records.sort(key=lambda r: r["rank"])
    return result


def run_one_worker(config: dict, threads: int = 1, quiet: bool = False):
    """The 1-worker baseline in this process, on ``threads`` cores (:func:`kit.train.launchers.run_in_process`).

    Torch writes an (empty) ``torchinductor_<user>`` cache directory to the temp dir the first time an
    optimiser is built; it goes to a private directory here, removed afterwards, so the notebook leaves
    no temp files behind. ``quiet`` keeps the per-epoch metrics lines out of the output.
    """
    import contextlib
    import io
    import os
    import shutil
    import tempfile

    import torch

    from kit.train import launchers as launch

    saved_threads, saved_cache = torch.get_num_threads(), os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    cache = tempfile.mkdtemp(prefix="kit-inductor-")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", cache)
    torch.set_num_threads(threads)
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            return launch.run_in_process(config)
    finally:
        torch.set_num_threads(saved_threads)
        if saved_cache is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        shutil.rmtree(cache, ignore_errors=True)


def plot_rank_losses(result: DemoResult, ax=None):
    """Loss per step on each rank of the DDP demo run."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    for record in result.training:
        ax.plot(record["losses"], label=f"rank {record['rank']}")
    ax.set(xlabel="step", ylabel="loss on this rank's batch", title="DDP: each rank sees its own data")
    ax.legend()
    return ax


def plot_throughput(results: dict, ax=None):
    """Bars of steady-state samples/s (``{label: LaunchResult}``) for 1 vs N processes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    labels = list(results)
    values = [steady_throughput(r) for r in results.values()]
    ax.bar(labels, values, color=["tab:gray", "tab:blue", "tab:orange"][: len(labels)])
    ax.set(ylabel="training samples / s (steady epochs)", title="Throughput: 1 vs 2 workers")
    for i, value in enumerate(values):
        ax.annotate(f"{value:,.0f}", (i, value), ha="center", va="bottom")
    return ax


def explain_speedup(speedup: float, workers: int, cpu_slots: int | None = None) -> str:
    """How this run's speed-up compares with the ideal ``×workers``, worded from the number itself.

    ``cpu_slots`` defaults to this machine's (:func:`kit.machine.resources.detect`): with fewer CPUs
    than workers the workers took turns on the same core, so no gain was possible.
    """
    if cpu_slots is None:
        from kit.machine import resources

        cpu_slots = resources.detect().cpu_slots
    if cpu_slots < workers:
        return (f"×{speedup:.2f} with {workers} workers on {cpu_slots} CPU: they took turns on the same core, so "
                "no gain was possible here; data parallelism pays only with a core (or GPU) per worker. "
                "The costs below are what the run paid anyway.")
    if speedup >= 0.85 * workers:
        return f"×{speedup:.2f} with {workers} workers: close to the ideal ×{workers} on this run."
    if speedup > 1.15:
        return (f"×{speedup:.2f} with {workers} workers: a real gain, but short of the ideal ×{workers}. "
                "The reasons below are what is missing.")
    if speedup >= 0.95:
        return f"×{speedup:.2f} with {workers} workers: no real gain on this run; the reasons below ate it."
    return (f"×{speedup:.2f} with {workers} workers: slower than one worker on this run; "
            "the costs below outweighed the extra core.")


def steady_throughput(result) -> float:
    """Median samples/s over the epochs after the first (warm-up), of a :class:`kit.train.launchers.LaunchResult`."""
    from statistics import median

    rates = [h["samples_per_s"] for h in result.history[1:]] or [h["samples_per_s"] for h in result.history]
    return median(rates)


if __name__ == "__main__":
    _rank_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
