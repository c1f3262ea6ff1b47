"""Exercises of stage 03 (PyTorch DDP). The checks need only torch, no process group."""

from __future__ import annotations

import math

from kit.course.exercises import NotYetRight, exercise

#: (n, world_size) pairs the sharding check tries, every rank of each.
SHARD_CASES = ((10, 2), (10, 3), (7, 4), (12, 4), (5, 1), (3, 4))

#: Per-rank gradients the averaging check feeds in, and a case with four ranks.
GRADIENT_CASES = (
    [[1.0, 2.0, 4.0], [3.0, 6.0, 0.0]],
    [[0.5, -1.0, 2.0], [1.5, 1.0, 0.0], [1.0, 3.0, -2.0], [-1.0, 1.0, 4.0]],
)


def _reference_shard():
    from kit.course.ddpdemo import shard_indices

    return shard_indices


def _reference_average():
    from kit.course.ddpdemo import average_gradients

    return average_gradients


def _sampler_indices(n: int, rank: int, world_size: int) -> list[int]:
    from torch.utils.data import DistributedSampler

    return list(DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False))


def _as_int_list(value, what: str) -> list[int]:
    try:
        items = list(value)
    except TypeError:
        raise NotYetRight(f"{what} returned {type(value).__name__}, expected a list of indices") from None
    converted = []
    for item in items:
        if hasattr(item, "item"):  # a tensor or numpy scalar
            item = item.item()
        if not isinstance(item, int) or isinstance(item, bool):
            raise NotYetRight(f"{what} returned {items!r}: expected whole-number indices")
        converted.append(item)
    return converted


@exercise(
    "03.shard_indices",
    "Data sharding: which samples does rank r get?",
    "DistributedSampler (shuffle=False) deals indices round-robin: rank r gets r, r + w, r + 2w, ... "
    "First it pads the list by repeating its first indices until its length is ceil(n / w) * w, so "
    "every rank gets the same number of samples.",
    reference=_reference_shard,
)
def check_shard(shard) -> None:
    if not callable(shard):
        raise NotYetRight(f"`shard` is a {type(shard).__name__}; write a function shard(n, rank, world_size)")
    for n, world_size in SHARD_CASES:
        for rank in range(world_size):
            call = f"shard({n}, rank={rank}, world_size={world_size})"
            try:
                got = shard(n, rank, world_size)
            except Exception as error:  # the learner's code may raise anything
                raise NotYetRight(f"{call} raised {type(error).__name__}: {error}") from None
            got = _as_int_list(got, call)
            expected = _sampler_indices(n, rank, world_size)
            if got == expected:
                continue
            per_rank = math.ceil(n / world_size)
            start = rank * per_rank
            contiguous = list(range(start, min(start + per_rank, n)))
            if got == contiguous and got != list(range(rank, n, world_size)):
                raise NotYetRight(
                    f"{call} gave {got}, a contiguous block; DistributedSampler deals the indices "
                    f"round-robin instead: {expected}"
                )
            if got == list(range(rank, n, world_size)):
                raise NotYetRight(
                    f"{call} gave {len(got)} indices {got}, but every rank must get ceil({n}/{world_size}) = "
                    f"{per_rank}: without padding the ranks would run different numbers of steps and "
                    f"DDP's all-reduce would wait forever. Expected {expected}"
                )
            raise NotYetRight(f"{call} gave {got} ({len(got)} indices); DistributedSampler gives {expected}")


@exercise(
    "03.averaged_gradient",
    "All-reduce: the gradient every rank ends up with",
    "DDP all-reduces each gradient with SUM, element by element across ranks, then divides by the "
    "world size: every rank gets the mean of the ranks' gradients, the same one the full batch gives.",
    reference=_reference_average,
)
def check_average(average) -> None:
    if not callable(average):
        raise NotYetRight(f"`average` is a {type(average).__name__}; write a function average(gradients)")
    for gradients in GRADIENT_CASES:
        world_size = len(gradients)
        call = f"average({gradients})"
        try:
            got = average([list(g) for g in gradients])
        except Exception as error:  # the learner's code may raise anything
            raise NotYetRight(f"{call} raised {type(error).__name__}: {error}") from None
        if hasattr(got, "tolist"):
            got = got.tolist()
        try:
            got = [float(v) for v in got]
        except (TypeError, ValueError):
            raise NotYetRight(f"{call} returned {got!r}: expected one list of numbers") from None
        expected = [sum(column) / world_size for column in zip(*gradients, strict=True)]
        summed = [sum(column) for column in zip(*gradients, strict=True)]
        if len(got) != len(expected):
            if len(got) == world_size:
                raise NotYetRight(
                    f"{call} returned {len(got)} numbers, one per rank: average across ranks, element by "
                    f"element, giving one gradient of {len(expected)} numbers"
                )
            raise NotYetRight(f"{call} returned {len(got)} numbers; the gradient has {len(expected)}")
        if _close(got, expected):
            continue
        if _close(got, summed):
            raise NotYetRight(
                f"{call} returned the sum {got}: all-reduce with SUM adds the ranks' gradients; DDP then "
                f"divides by the world size ({world_size}) so the step matches the full batch's gradient"
            )
        if _close(got, gradients[0]):
            raise NotYetRight(f"{call} returned rank 0's own gradient {got}: every rank must get the mean")
        raise NotYetRight(f"{call} returned {got}, expected {expected}")


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) for x, y in zip(a, b, strict=True))


#: Epochs the DDP check trains for, and the processes it starts.
DDP_EPOCHS, DDP_RANKS = 2, 2


def _reference_train():
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    def train(model, dataset, epochs):
        sampler = DistributedSampler(dataset, shuffle=True, seed=0)  # rank and world size from the process group
        loader = DataLoader(dataset, batch_size=8, sampler=sampler)
        ddp_model = DistributedDataParallel(model)  # broadcasts rank 0's weights, averages gradients in backward()
        optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)  # a different shuffle every epoch, the same on every rank
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(ddp_model(x), y).backward()
                optimizer.step()
        return ddp_model

    return train


#: The reports of the last run of the DDP check, for the notebook to show.
last_ddp_run: list = []


@exercise(
    "03.ddp_train",
    "DDP: a training function that runs on every rank",
    "Inside train(model, dataset, epochs) the process group already exists. Give the DataLoader a "
    "DistributedSampler(dataset) (it reads rank and world size from the group) instead of shuffle=True, wrap the "
    "model in DistributedDataParallel(model) and train the wrapped one, and call sampler.set_epoch(epoch) at the "
    "start of every epoch.",
    reference=_reference_train,
)
def check_ddp_train(train) -> None:
    from kit.course import process_group

    if not callable(train):
        raise NotYetRight(f"`train` is a {type(train).__name__}; write a function train(model, dataset, epochs)")
    reports = process_group.run_train_function(train, nproc=DDP_RANKS, epochs=DDP_EPOCHS)
    last_ddp_run[:] = reports
    if len(reports) != DDP_RANKS:
        raise NotYetRight(f"{len(reports)} of {DDP_RANKS} ranks reported back")
    for report in reports:
        if report.error:
            raise NotYetRight(f"rank {report.rank} raised {report.error}")
    if not all(r.seen for r in reports):
        raise NotYetRight("a rank read no sample: iterate over a DataLoader of `dataset` in every epoch")
    orders = [process_group.epochs_of(r, DDP_EPOCHS) for r in reports]
    shards = [set(epochs[0]) if epochs else set(r.seen) for r, epochs in zip(reports, orders, strict=True)]
    every = set(range(process_group.SAMPLES))
    if any(shard == every for shard in shards):
        raise NotYetRight(f"every rank read all {process_group.SAMPLES} samples in its first epoch: the ranks trained "
                          "on the same data. A DistributedSampler gives each rank its own shard")
    if set().union(*shards) != every:
        raise NotYetRight("in the first epoch some samples were read by no rank: the shards must cover the data set")
    if not all(r.weights_changed for r in reports):
        raise NotYetRight("the weights never changed: call optimizer.step() after loss.backward()")
    if max(r.final_checksum for r in reports) - min(r.final_checksum for r in reports) > 1e-6:
        raise NotYetRight("each rank ended with different weights: without DistributedDataParallel every rank "
                          "steps on its own shard's gradient and the copies drift apart")
    if all(len(epochs) > 1 and epochs[0] == epochs[1] for epochs in orders):
        raise NotYetRight("every epoch read its shard in the same order: call sampler.set_epoch(epoch) at the start "
                          "of each epoch (the sampler shuffles with seed + epoch)")
