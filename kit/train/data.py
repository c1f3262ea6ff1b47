"""Data sets for the training track: small, offline, deterministic, sharded per rank.

``digits`` is scikit-learn's bundled 8x8 handwritten digits (1,797 images, no
download). ``synthetic`` is a generated 10-class problem of the same shape
(64 features = 8x8) whose size you choose, so scaling and GPU lessons have work.

The train/test split is made once, stratified and seeded; the test set is never
seen by training (feature scaling uses training statistics only). :func:`materialize`
writes the split to one ``.pt`` file so that workers need only ``torch`` to load it
(a Kubeflow job venv or a container has no scikit-learn), and every launcher feeds
the same tensors. :func:`train_loader` shards the training set per rank with
``DistributedSampler``: the same code path for 1 process, torchrun and Ray Train.

Importing this module imports neither torch nor scikit-learn (each function imports what it needs):
a launcher checks for a materialised split without paying for torch in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

#: Data set names accepted by ``TrainConfig.dataset``.
from kit.config.train import DATASETS

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

FEATURES = 64  # 8x8 images, flattened
CLASSES = 10
#: Pixels of the digits are 0..16; the models see pixel * DIGITS_SCALE (the servers do the same).
DIGITS_SCALE = 1 / 16
DIGITS_RANGE = (0, 16)


@dataclass(frozen=True)
class Split:
    """A train/test split as tensors, with the indices of each row in the full data set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    train_index: torch.Tensor
    test_index: torch.Tensor
    name: str

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        return CLASSES

    def as_dict(self) -> dict[str, torch.Tensor | str]:
        return {field: getattr(self, field) for field in self.__dataclass_fields__}


def digit_pixels():
    """scikit-learn's 8x8 digits as raw pixels (float32, 0..16) and labels: what a client sends a server."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def preprocessing(dataset: str) -> dict:
    """How a server turns a request's rows into what the model saw in training (the artifact records it)."""
    if dataset == "digits":
        return {"scale": DIGITS_SCALE, "input_range": list(DIGITS_RANGE)}
    return {"scale": 1.0, "note": "standardised features (training statistics), sent as they are"}


def _arrays(dataset: str, samples: int, seed: int):
    """Features and labels as numpy arrays (imports scikit-learn, so only the launching process calls it)."""
    if dataset == "digits":
        pixels, labels = digit_pixels()
        return pixels.astype("float64") * DIGITS_SCALE, labels
    if dataset == "synthetic":
        from sklearn.datasets import make_classification

        return make_classification(
            n_samples=samples,
            n_features=FEATURES,
            n_informative=32,
            n_redundant=8,
            n_classes=CLASSES,
            n_clusters_per_class=2,
            class_sep=1.5,
            random_state=seed,
        )
    raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")


def build_split(
    dataset: str = "digits", samples: int = 20_000, test_fraction: float = 0.2, seed: int = 0
) -> Split:
    """Load or generate a data set and split it, stratified and seeded, into train and test tensors."""
    import numpy as np
    import torch
    from sklearn.model_selection import train_test_split

    x, y = _arrays(dataset, samples, seed)
    index = np.arange(len(y))
    train_index, test_index = train_test_split(index, test_size=test_fraction, stratify=y, random_state=seed)
    x_train, x_test = x[train_index], x[test_index]
    if dataset == "synthetic":  # standardise with training statistics only: nothing leaks from test
        mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    def tensor(a, dtype):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    return Split(
        x_train=tensor(x_train, torch.float32),
        y_train=tensor(y[train_index], torch.int64),
        x_test=tensor(x_test, torch.float32),
        y_test=tensor(y[test_index], torch.int64),
        train_index=tensor(train_index, torch.int64),
        test_index=tensor(test_index, torch.int64),
        name=dataset,
    )


def cache_path(
    dataset: str, samples: int, test_fraction: float, seed: int, directory: Path | None = None
) -> Path:
    """File name of a materialised split: every parameter that changes the data is in the name."""
    from kit.paths import work_dir

    size = f"-{samples}" if dataset == "synthetic" else ""
    name = f"{dataset}{size}-test{test_fraction:g}-seed{seed}.pt"
    return (directory or work_dir("data")) / name


def materialize(dataset: str = "digits", samples: int = 20_000, test_fraction: float = 0.2, seed: int = 0,
                directory: Path | None = None) -> Path:
    """Write the split to a ``.pt`` file once (atomically) and return its path."""
    import torch

    path = cache_path(dataset, samples, test_fraction, seed, directory)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(build_split(dataset, samples, test_fraction, seed).as_dict(), tmp)
        os.replace(tmp, path)
    return path


def load_split(path: str | Path) -> Split:
    """Load a split written by :func:`materialize` (needs only torch)."""
    import torch

    data = torch.load(path, weights_only=True)
    return Split(**data)


def train_loader(
    split: Split, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0
) -> DataLoader:
    """This rank's shard of the training set, reshuffled each epoch (call ``sampler.set_epoch``).

    ``DistributedSampler`` gives every rank the same number of samples, padding the
    last shard with repeated samples when the set does not divide evenly: DDP needs
    the same number of steps on every rank.
    """
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    dataset = TensorDataset(split.x_train, split.y_train)
    sampler: DistributedSampler[tuple[torch.Tensor, ...]] = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def shard_sampler(loader: DataLoader) -> DistributedSampler:
    """The ``DistributedSampler`` of a :func:`train_loader` (also after Ray Train wrapped the loader)."""
    from torch.utils.data import DistributedSampler

    sampler = loader.sampler
    if not isinstance(sampler, DistributedSampler):
        raise TypeError(f"expected a train_loader(), whose sampler is a DistributedSampler; got {sampler!r}")
    return sampler


def eval_loader(split: Split, batch_size: int = 1024) -> DataLoader:
    """The whole held-out test set, in order (every rank evaluates it; it is small)."""
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(split.x_test, split.y_test), batch_size=batch_size, shuffle=False)


def materialize_elsewhere(dataset: str = "digits", samples: int = 20_000, test_fraction: float = 0.2,
                          seed: int = 0, directory: Path | None = None) -> Path:
    """:func:`materialize`, in a short-lived Python process when the file is missing and this process has not
    loaded torch: torch and scikit-learn (over 150 MiB) then stay out of the caller (a notebook kernel)."""
    path = cache_path(dataset, samples, test_fraction, seed, directory)
    if path.exists():
        return path
    if "torch" in sys.modules:
        return materialize(dataset, samples, test_fraction, seed, directory)
    from kit import paths

    code = ("import sys; from pathlib import Path; from kit.train.data import materialize; "
            "materialize(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.source_root()), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", code, dataset, str(samples), str(test_fraction), str(seed), str(path.parent)],
                   check=True, env=env)
    return path
