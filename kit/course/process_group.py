"""A local gloo process group that runs a learner's training function on every rank (stage 03's exercise).

:func:`run_train_function` starts ``nproc`` processes with ``torchrun --standalone``; each
joins a gloo process group, builds the same tiny data set and the same seeded model, and
calls the learner's ``train(model, dataset, epochs)`` on them. The function travels by value
(cloudpickle), so one defined in a notebook cell works. Each rank reports, as one
``KIT_PG {json}`` line, which samples it read (in order), a checksum of its weights before
and after, its accuracy on the whole data set, or the exception it raised.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD_PREFIX = "KIT_PG "
#: Samples, features and classes of the data set every rank builds (two well separated blobs).
SAMPLES, FEATURES, CLASSES = 64, 4, 2


@dataclass(frozen=True)
class RankReport:
    """What one rank did with the learner's function."""

    rank: int
    world_size: int
    seen: list[int]  # dataset indices in the order the rank read them
    initial_checksum: float
    final_checksum: float
    accuracy: float
    error: str = ""

    @property
    def weights_changed(self) -> bool:
        return abs(self.final_checksum - self.initial_checksum) > 1e-6


def _dumps(func: Callable, *args: Any) -> bytes:
    """``(func, *args)`` pickled with ``func`` by value when its module is not the kit's (a notebook, a test)."""
    try:
        import cloudpickle
    except ImportError:  # Ray vendors it
        from ray import cloudpickle
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    by_value = module is not None and module.__name__ != "__main__" and not module.__name__.startswith("kit.")
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps((func, *args))
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


# --------------------------------------------------------------------------- in each rank


def _dataset():
    """The same 64 labelled points on every rank; it records each index it is asked for, in order."""
    import torch
    from torch.utils.data import Dataset

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(SAMPLES) % CLASSES
    features = torch.randn(SAMPLES, FEATURES, generator=generator) + 3.0 * (2 * labels[:, None] - 1)

    class Recording(Dataset):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def __len__(self) -> int:
            return SAMPLES

        def __getitem__(self, index: int):
            self.seen.append(int(index))
            return features[index], labels[index]

    return Recording(), features, labels


def _checksum(model) -> float:
    """A position-weighted sum of the weights (a plain sum would hide a softmax layer's changes: they sum to zero)."""
    import torch

    module = getattr(model, "module", model)  # a DistributedDataParallel wraps the model in .module
    flat = torch.cat([p.detach().double().flatten() for p in module.parameters()])
    return round(float((flat * torch.arange(1, len(flat) + 1, dtype=torch.float64)).sum()), 8)


def _emit(record: dict) -> None:
    os.write(sys.stdout.fileno(), (RECORD_PREFIX + json.dumps(record) + "\n").encode())


def _rank_main(payload_path: str) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    func, epochs = pickle.loads(Path(payload_path).read_bytes())
    dist.init_process_group(backend="gloo", timeout=timedelta(seconds=60))
    rank, world_size = dist.get_rank(), dist.get_world_size()
    dataset, features, labels = _dataset()
    torch.manual_seed(0)
    model = torch.nn.Linear(FEATURES, CLASSES)
    initial = _checksum(model)
    record: dict[str, Any] = {"rank": rank, "world_size": world_size, "initial_checksum": initial}
    try:
        trained = func(model, dataset, epochs)
        if trained is None:
            trained = model
        module = getattr(trained, "module", trained)
        with torch.no_grad():
            accuracy = float((module(features).argmax(1) == labels).float().mean())
        record.update(final_checksum=_checksum(trained), accuracy=round(accuracy, 4))
    except Exception as error:  # the learner's code may raise anything: report it, do not hang the group
        record.update(final_checksum=initial, accuracy=0.0, error=f"{type(error).__name__}: {error}")
    record["seen"] = dataset.seen
    _emit(record)
    dist.destroy_process_group()


# --------------------------------------------------------------------------- from the notebook


def run_train_function(func: Callable, nproc: int = 2, epochs: int = 2, timeout_s: float = 240) -> list[RankReport]:
    """Run ``func(model, dataset, epochs)`` on every rank of a local gloo group; one report per rank."""
    from kit.train import launchers as launch

    with tempfile.TemporaryDirectory(prefix="kit-pg-") as directory:
        payload = Path(directory) / "train.pkl"
        payload.write_bytes(_dumps(func, epochs))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   "-m", "kit.course.process_group", str(payload)]
        with launch.private_tmpdir(launch.child_env(nproc)) as env:
            lines = launch.stream_command(command, env, on_line=None, timeout_s=timeout_s)
    reports = [RankReport(**json.loads(line.split(RECORD_PREFIX, 1)[1])) for line in lines if RECORD_PREFIX in line]
    return sorted(reports, key=lambda r: r.rank)


def epochs_of(report: RankReport, epochs: int) -> list[list[int]]:
    """The rank's reads split into its ``epochs`` (equal parts)."""
    per_epoch = len(report.seen) // epochs if epochs else 0
    return [report.seen[i * per_epoch:(i + 1) * per_epoch] for i in range(epochs)] if per_epoch else []


if __name__ == "__main__":
    _rank_main(sys.argv[1])
