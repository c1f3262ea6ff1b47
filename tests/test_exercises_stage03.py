"""Stage 03 exercises reject wrong answers with specific messages and accept right ones (no processes)."""

from __future__ import annotations

import math

import pytest
import torch

from kit.course import ddpdemo, exercises
from kit.course.exercises import NotYetRight


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


def _contiguous(n, rank, world_size):
    per_rank = math.ceil(n / world_size)
    return list(range(rank * per_rank, min((rank + 1) * per_rank, n)))


def _raises(n, rank, world_size):
    raise ValueError("oops")


@pytest.mark.parametrize(("answer", "message"), [
    ([0, 2, 4], "`shard` is a list; write a function"),
    (lambda n, rank, world_size: list(range(rank, n, world_size)),
     r"shard\(10, rank=1, world_size=3\) gave 3 indices \[1, 4, 7\], but every rank must get ceil\(10/3\) = 4"),
    (_contiguous, r"shard\(10, rank=0, world_size=2\) gave \[0, 1, 2, 3, 4\], a contiguous block"),
    (lambda n, rank, world_size: list(range(n)), r"gave \[0, 1, 2, .*\(10 indices\); DistributedSampler gives"),
    (lambda n, rank, world_size: None, "returned NoneType, expected a list of indices"),
    (lambda n, rank, world_size: [0.0, 2.0], "expected whole-number indices"),
    (_raises, r"raised ValueError: oops"),
])
def test_shard_rejects_wrong_answers(answer, message):
    _wrong("03.shard_indices", answer, message)


def test_shard_accepts_the_sampler_semantics_and_tensors():
    assert exercises.check("03.shard_indices", ddpdemo.shard_indices) is ddpdemo.shard_indices
    as_tensor = lambda n, rank, world_size: torch.tensor(ddpdemo.shard_indices(n, rank, world_size))  # noqa: E731
    exercises.check("03.shard_indices", as_tensor)


@pytest.mark.parametrize(("answer", "message"), [
    ("mean", "`average` is a str; write a function"),
    (lambda grads: [sum(c) for c in zip(*grads, strict=True)],
     r"returned the sum \[4.0, 8.0, 4.0\].*divides by the world size \(2\)"),
    (lambda grads: [sum(g) / len(g) for g in grads], "returned 2 numbers, one per rank"),
    (lambda grads: list(grads[0]), "returned rank 0's own gradient"),
    (lambda grads: [sum(c) / 2 for c in zip(*grads, strict=True)],
     r"returned \[1.0, 2.0, 2.0\], expected \[0.5, 1.0, 1.0\]"),
    (lambda grads: 3.0, "expected one list of numbers"),
])
def test_average_rejects_wrong_answers(answer, message):
    _wrong("03.averaged_gradient", answer, message)


def test_average_accepts_lists_and_tensors():
    exercises.check("03.averaged_gradient", ddpdemo.average_gradients)
    exercises.check("03.averaged_gradient", lambda grads: torch.tensor(grads).mean(0))


def test_skip_ahead_gives_the_references(capsys):
    assert exercises.check("03.shard_indices", ...) is ddpdemo.shard_indices
    assert exercises.check("03.averaged_gradient", ...) is ddpdemo.average_gradients
    assert "not solved yet" in capsys.readouterr().out


# --- 03.ddp_train: the check runs the learner's function on a real 2-process gloo group -----------------

def _train_with(sampler: bool = True, ddp: bool = True, set_epoch: bool = True):
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    def train(model, dataset, epochs):
        shard = DistributedSampler(dataset, seed=0) if sampler else None
        loader = DataLoader(dataset, batch_size=8, sampler=shard, shuffle=shard is None)
        net = DistributedDataParallel(model) if ddp else model
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for epoch in range(epochs):
            if shard is not None and set_epoch:
                shard.set_epoch(epoch)
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(net(x), y).backward()
                optimizer.step()
        return net

    return train


def _raises_inside(model, dataset, epochs):
    raise RuntimeError("no process group here?")


@pytest.mark.parametrize(("answer", "message"), [
    ("train", "`train` is a str; write a function train"),
    (_train_with(sampler=False), "every rank read all 64 samples in its first epoch: the ranks trained on the same"),
    (_train_with(ddp=False), "each rank ended with different weights: without DistributedDataParallel"),
    (_train_with(set_epoch=False), r"call sampler.set_epoch\(epoch\)"),
    (_raises_inside, "rank 0 raised RuntimeError: no process group here"),
])
def test_ddp_train_rejects_wrong_functions(answer, message):
    _wrong("03.ddp_train", answer, message)


def test_ddp_train_accepts_the_reference_on_two_ranks():
    from kit.course import process_group
    from kit.course.exercises import stage03

    reference = exercises.skip_ahead("03.ddp_train")
    assert exercises.check("03.ddp_train", reference) is reference
    reports = stage03.last_ddp_run
    assert [r.rank for r in reports] == [0, 1] and all(r.accuracy > 0.9 for r in reports)
    first_epochs = [set(ddp_shard[0]) for ddp_shard in (process_group.epochs_of(r, 2) for r in reports)]
    assert not first_epochs[0] & first_epochs[1]  # disjoint shards (64 samples split evenly: no padding)


@pytest.mark.parametrize(("speedup", "expected"), [
    (1.9, "close to the ideal ×2"), (1.62, "a real gain, but short of the ideal ×2"),
    (1.0, "no real gain"), (0.7, "slower than one worker"),
])
def test_speedup_wording_follows_the_number(speedup, expected):
    assert expected in ddpdemo.explain_speedup(speedup, workers=2, cpu_slots=2)
    assert f"×{speedup:.2f}" in ddpdemo.explain_speedup(speedup, workers=2, cpu_slots=2)


def test_speedup_on_fewer_cpus_than_workers_says_no_gain_was_possible():
    """Binder's one CPU: the wording must not blame costs for a gain that could not exist."""
    text = ddpdemo.explain_speedup(0.5, workers=2, cpu_slots=1)
    assert "×0.50 with 2 workers on 1 CPU" in text and "no gain was possible" in text
