"""The model artifact both servers load, and the one predict function they all call.

A model directory holds ``model.pt`` (a torch ``state_dict``) and ``metadata.json``
(name, version, input shape, classes, preprocessing, architecture). Until the
Training track's model lands, :func:`train_demo_model` trains a small MLP on
scikit-learn's 8x8 digits in-process (a few seconds on CPU, no download) and saves it
in the same format. :class:`Predictor` validates a batch, preprocesses it and
predicts; the FastAPI baseline, Ray Serve and KServe all call it, so a benchmark
compares the servers and not three different models.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

WEIGHTS = "model.pt"
METADATA = "metadata.json"
FORMAT_VERSION = 1
#: Largest batch one request may carry; more is a client error (HTTP 413).
MAX_BATCH = 256


class ArtifactError(RuntimeError):
    """A model directory is missing, incomplete or corrupt; the message names the path."""


class InvalidInput(ValueError):
    """A request's data cannot be predicted on; the message says what is wrong (HTTP 4xx)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelMetadata:
    """What a server needs to know about a model without reading its weights."""

    name: str = "digits"
    version: str = "1"
    input_shape: tuple[int, ...] = (64,)
    classes: tuple[int, ...] = tuple(range(10))
    hidden: tuple[int, ...] = (128,)
    #: pixels of sklearn's digits are 0..16; the model was trained on pixel * scale
    preprocessing: dict = field(default_factory=lambda: {"scale": 1 / 16, "input_range": [0, 16]})
    accuracy: float | None = None
    format_version: int = FORMAT_VERSION

    @property
    def features(self) -> int:
        return math.prod(self.input_shape)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> ModelMetadata:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown metadata field(s) {sorted(unknown)}")
        for key in ("input_shape", "classes", "hidden"):
            if key in data:
                data = {**data, key: tuple(data[key])}
        return cls(**data)


def build_network(metadata: ModelMetadata):
    """The MLP described by ``metadata``: features -> hidden layers (ReLU) -> classes."""
    import torch

    sizes = [metadata.features, *metadata.hidden]
    layers: list = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-1], len(metadata.classes)))
    return torch.nn.Sequential(*layers)


def save_model(model_dir: str | Path, network, metadata: ModelMetadata) -> Path:
    """Write ``network``'s weights and ``metadata`` to ``model_dir`` (created if needed)."""
    import torch

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), model_dir / WEIGHTS)
    (model_dir / METADATA).write_text(metadata.to_json())
    return model_dir


def load_metadata(model_dir: str | Path) -> ModelMetadata:
    """Read and check ``metadata.json``; raise :class:`ArtifactError` naming the path."""
    path = Path(model_dir) / METADATA
    if not Path(model_dir).is_dir():
        raise ArtifactError(f"model directory {model_dir} does not exist (train one with train_demo_model)")
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: a model directory holds {WEIGHTS} and {METADATA}")
    try:
        metadata = ModelMetadata.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise ArtifactError(f"{path} is not valid model metadata: {error}") from None
    if metadata.format_version != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format_version {metadata.format_version}, this kit reads {FORMAT_VERSION}")
    return metadata


def load_model(model_dir: str | Path):
    """The network (in eval mode) and metadata saved in ``model_dir``."""
    import torch

    metadata = load_metadata(model_dir)
    weights = Path(model_dir) / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{weights} is missing: a model directory holds {WEIGHTS} and {METADATA}")
    network = build_network(metadata)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except Exception as error:  # torch raises many types for a damaged file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArtifactError(f"{weights} cannot be loaded as this model's weights: {first_line}") from None
    return network.eval(), metadata


def digits_data():
    """sklearn's 8x8 digits (1,797 images, bundled with scikit-learn): pixels 0..16 and labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int64)


def train_demo_model(
    model_dir: str | Path,
    hidden: tuple[int, ...] = (128,),
    epochs: int = 20,
    seed: int = 0,
    name: str = "digits",
    version: str = "1",
) -> ModelMetadata:
    """Train an MLP on the digits in-process and save it to ``model_dir``; return its metadata."""
    import torch

    torch.manual_seed(seed)
    pixels, labels = digits_data()
    metadata = ModelMetadata(name=name, version=version, hidden=tuple(hidden))
    scale = metadata.preprocessing["scale"]
    x, y = torch.from_numpy(pixels * scale), torch.from_numpy(labels)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:300], order[300:]
    network = build_network(metadata)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in train[torch.randperm(len(train))].split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(x[batch]), y[batch]).backward()
            optimizer.step()
    with torch.inference_mode():
        accuracy = (network(x[test]).argmax(1) == y[test]).float().mean().item()
    metadata = ModelMetadata(name=name, version=version, hidden=tuple(hidden), accuracy=round(accuracy, 4))
    save_model(model_dir, network, metadata)
    return metadata


def sample_instances(n: int = 2, seed: int = 0) -> list[list[float]]:
    """``n`` real digit images as JSON-ready rows of 64 pixel values (the request payload)."""
    pixels, _ = digits_data()
    rows = np.random.default_rng(seed).choice(len(pixels), size=n, replace=False)
    return pixels[rows].tolist()


def validate_instances(instances, metadata: ModelMetadata, max_batch: int = MAX_BATCH) -> np.ndarray:
    """A float32 array of shape (n, features), or :class:`InvalidInput` saying what is wrong."""
    features = metadata.features
    if isinstance(instances, np.ndarray):
        array = instances
    else:
        if not isinstance(instances, (list, tuple)):
            raise InvalidInput(f"instances must be a list of rows, got {type(instances).__name__}")
        try:
            array = np.asarray(instances)
        except ValueError:
            raise InvalidInput(f"instances must be rows of exactly {features} numbers (ragged rows)") from None
    if array.ndim == 0:
        raise InvalidInput(f"expected shape (n, {features}), got a single value")
    n = array.shape[0]
    if n == 0:
        raise InvalidInput("empty batch: send at least one row")
    if n > max_batch:
        raise InvalidInput(f"batch of {n} rows is over the limit of {max_batch}", status=413)
    if array.dtype == bool or array.dtype.kind not in "iuf":
        raise InvalidInput(f"instances must be numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != features:
        raise InvalidInput(f"expected shape (n, {features}), got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise InvalidInput("instances contain NaN or infinity")
    return array.astype(np.float32, copy=False)


class Predictor:
    """Validate -> preprocess -> predict, for every server. Loads the artifact once."""

    def __init__(self, model_dir: str | Path, threads: int = 1, max_batch: int = MAX_BATCH) -> None:
        import torch

        torch.set_num_threads(threads)  # one replica, one core: replicas scale out, not up
        self.network, self.metadata = load_model(model_dir)
        self.model_dir = Path(model_dir)
        self.max_batch = max_batch

    @property
    def name(self) -> str:
        return self.metadata.name

    def validate(self, instances) -> np.ndarray:
        return validate_instances(instances, self.metadata, self.max_batch)

    def predict_array(self, array: np.ndarray) -> list[int]:
        """Class labels for an already validated (n, features) array."""
        import torch

        scaled = torch.from_numpy(array * np.float32(self.metadata.preprocessing["scale"]))
        with torch.inference_mode():
            best = self.network(scaled).argmax(dim=1).tolist()
        return [self.metadata.classes[i] for i in best]

    def predict(self, instances) -> list[int]:
        """Validate and predict: the one predict function every server calls."""
        return self.predict_array(self.validate(instances))


def main(argv: list[str] | None = None) -> int:
    """``python -m kit.serve.artifact --out DIR``: train the demo model and save it (stage 09's model Job)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kit.serve.artifact", description=main.__doc__)
    parser.add_argument("--out", required=True, help="model directory to write (created)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--version", default="1", help="the model version written to metadata.json")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    metadata = train_demo_model(args.out, epochs=args.epochs, version=args.version)
    print(f"saved model {metadata.name!r} version {metadata.version} to {args.out} "
          f"(test accuracy {metadata.accuracy})")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
