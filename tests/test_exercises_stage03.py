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
