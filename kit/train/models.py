"""Small models for 8x8 digits: an MLP, a CNN and a recurrent MLP, their width set by ``hidden``.

Both take flattened 64-feature rows (what :mod:`kit.train.data` yields), so any model
runs on any data set. ``hidden`` scales the work per sample: the lessons on
scaling and GPUs raise it to give each step enough compute to measure.
"""

from __future__ import annotations

from torch import nn

#: Model names accepted by ``TrainConfig.model``.
from kit.config.train import MODELS


class MLP(nn.Sequential):
    """Two hidden layers of ``hidden`` units with ReLU."""

    def __init__(self, num_features: int = 64, num_classes: int = 10, hidden: int = 128):
        super().__init__(
            nn.Linear(num_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )


class SmallCNN(nn.Module):
    """Two 3x3 convolutions on the 8x8 image, then a linear classifier."""

    def __init__(self, num_features: int = 64, num_classes: int = 10, hidden: int = 128):
        super().__init__()
        side = int(num_features**0.5)
        if side * side != num_features:
            raise ValueError(f"cnn needs square images: num_features={num_features} is not a square")
        channels = max(8, hidden // 4)
        self.side = side
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(channels * (side // 2) ** 2, num_classes)

    def forward(self, x):
        x = x.view(-1, 1, self.side, self.side)
        return self.classifier(self.features(x).flatten(1))


class RecurrentMLP(nn.Module):
    """One small residual block (``hidden`` wide) applied ``steps`` times with the same weights.

    An RNN unrolled, or a decoder generating ``steps`` tokens: each call runs ``5 * steps`` small
    operations in sequence, and each has a fixed cost (dispatch here, a kernel launch on a GPU) that
    does not grow with the batch. So one row costs almost as much as sixteen: the per-call cost that
    dynamic batching amortises in real model servers. The kit's model for showing when batching pays
    (:mod:`kit.bench.serve`); hidden 128 is 0.3 MB of weights, yet tens of ms per call on one core.
    """

    def __init__(self, num_features: int = 64, num_classes: int = 10, hidden: int = 128, steps: int = 1024):
        super().__init__()
        self.steps = steps
        self.embed = nn.Linear(num_features, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.block = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        h = self.embed(x).relu()
        for _ in range(self.steps):
            h = h + self.block(self.norm(h)).relu() / self.steps
        return self.head(h)


def build_model(name: str, num_features: int = 64, num_classes: int = 10, hidden: int = 128) -> nn.Module:
    """A fresh model by name; an unknown name raises ``ValueError`` naming the field and the choices."""
    builders = {"mlp": MLP, "cnn": SmallCNN, "recurrent": RecurrentMLP}
    if name not in builders:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {name!r}")
    return builders[name](num_features=num_features, num_classes=num_classes, hidden=hidden)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
