"""The serving artifact: what training hands to serving, in one format.

Rank 0 of :func:`kit.train.loop.train_func` ends every run (in-process, torchrun, Ray
Train, Kubeflow, a RayJob or TrainJob on a cluster) with :func:`write_artifact`. A model
directory holds:

- ``model.pt``: the trained network's ``state_dict``;
- ``metadata.json``: name, version, input shape, classes, preprocessing, accuracy on the
  held-out split, the full training configuration and the SHA-256 of ``model.pt``.

Every server (Ray Serve, KServe, the FastAPI baseline) and the benchmark load it with
:func:`load_model`, which rebuilds the network from the recorded configuration and checks
the hash first: a damaged or mismatched file is an :class:`ArtifactError` naming the file
and the fix. :func:`load_metadata` reads the metadata without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit.config.train import MODEL_NAME, TrainConfig, standard_model_dir
from kit.errors import KitError

log = logging.getLogger(__name__)

WEIGHTS = "model.pt"
METADATA = "metadata.json"
FORMAT_VERSION = 2
#: What a notebook that runs on its own trains when no artifact exists yet (seconds on a CPU).
SMALL_MODEL = {"dataset": "digits", "model": "mlp", "hidden": 64, "epochs": 8, "batch_size": 32, "lr": 0.01}
TRAIN_FIX = ("train one: `python -m kit train --launcher in-process --model-dir DIR` "
             "(or run stages 03-05, which write it to the standard location)")


class ArtifactError(KitError, RuntimeError):
    """A model directory is missing, incomplete, corrupt or altered; the message names the file."""

    def __init__(self, message: str, fix: str = TRAIN_FIX) -> None:
        super().__init__(message, fix=fix)


@dataclass(frozen=True)
class ModelMetadata:
    """What a server needs to know about a model without reading its weights."""

    name: str = MODEL_NAME
    version: str = "1"
    input_shape: tuple[int, ...] = (64,)
    classes: tuple[int, ...] = tuple(range(10))
    #: how a request's rows become the model's input, e.g. ``{"scale": 0.0625, "input_range": [0, 16]}``
    preprocessing: dict = field(default_factory=lambda: {"scale": 1.0})
    #: accuracy on the held-out split, never trained on
    accuracy: float | None = None
    #: the :class:`TrainConfig` the model was trained with (``model`` and ``hidden`` rebuild the network)
    train_config: dict = field(default_factory=dict)
    #: SHA-256 of the weights file, checked on every load
    weights_sha256: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def features(self) -> int:
        return math.prod(self.input_shape)

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.train_config)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> ModelMetadata:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown metadata field(s) {sorted(unknown)}")
        for key in ("input_shape", "classes"):
            if key in data:
                data = {**data, key: tuple(data[key])}
        return cls(**data)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace_atomically(path: Path, write) -> None:
    """Write ``path`` through a temporary file in the same directory, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_artifact(model_dir: str | Path, network: Any, config: TrainConfig, *, accuracy: float | None,
                   input_shape: tuple[int, ...], classes: tuple[int, ...], preprocessing: dict,
                   version: str = "1") -> ModelMetadata:
    """Save ``network``'s weights and their metadata to ``model_dir`` (created); return the metadata.

    Weights first, metadata last (each replaced atomically), so a reader never sees metadata
    whose hash describes weights that are not there yet.
    """
    import torch

    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu() for key, value in network.state_dict().items()}
    weights = directory / WEIGHTS
    _replace_atomically(weights, lambda tmp: torch.save(state, tmp))
    metadata = ModelMetadata(
        name=MODEL_NAME, version=version, input_shape=tuple(input_shape), classes=tuple(classes),
        preprocessing=dict(preprocessing), accuracy=None if accuracy is None else round(accuracy, 6),
        train_config=config.to_dict(), weights_sha256=file_sha256(weights),
    )
    _replace_atomically(directory / METADATA, lambda tmp: tmp.write_text(metadata.to_json()))
    log.info("wrote the serving artifact to %s (accuracy %s)", directory, metadata.accuracy)
    return metadata


def load_metadata(model_dir: str | Path) -> ModelMetadata:
    """Read and check ``metadata.json`` (no torch); raise :class:`ArtifactError` naming the path."""
    directory = Path(model_dir)
    path = directory / METADATA
    if not directory.is_dir():
        raise ArtifactError(f"model directory {directory} does not exist")
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: a model directory holds {WEIGHTS} and {METADATA}")
    try:
        metadata = ModelMetadata.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise ArtifactError(f"{path} is not valid model metadata: {error}") from None
    if metadata.format_version != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format_version {metadata.format_version}, this kit reads {FORMAT_VERSION}",
                            fix="retrain the model with this kit: " + TRAIN_FIX)
    try:
        metadata.config  # noqa: B018 - validates the recorded training configuration
    except ValueError as error:
        raise ArtifactError(f"{path}: train_config is not a valid TrainConfig: {error}") from None
    return metadata


def verify(model_dir: str | Path) -> ModelMetadata:
    """The metadata, after checking that ``model.pt`` is there and has the recorded SHA-256."""
    metadata = load_metadata(model_dir)
    weights = Path(model_dir) / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{weights} is missing: a model directory holds {WEIGHTS} and {METADATA}")
    actual = file_sha256(weights)
    if actual != metadata.weights_sha256:
        raise ArtifactError(
            f"{weights} has SHA-256 {actual[:12]}..., but {METADATA} records {metadata.weights_sha256[:12]}...: "
            "the weights were changed or replaced after training",
            fix="copy the whole model directory again, or " + TRAIN_FIX)
    return metadata


def build_network(metadata: ModelMetadata):
    """A fresh network of the architecture the metadata's training configuration names."""
    from kit.train import models

    config = metadata.config
    return models.build_model(config.model, metadata.features, len(metadata.classes), config.hidden)


def load_model(model_dir: str | Path):
    """The network (in eval mode, on the CPU) and metadata saved in ``model_dir``, hash checked."""
    import torch

    metadata = verify(model_dir)
    weights = Path(model_dir) / WEIGHTS
    network = build_network(metadata)
    try:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as error:  # torch raises many types for a damaged file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArtifactError(f"{weights} cannot be loaded as this model's weights: {first_line}") from None
    return network.eval(), metadata


def missing_model(model_dir: str | Path | None = None) -> tuple[Path, str | None]:
    """The model directory (default: the standard one) and why it holds no servable model, or None if it does."""
    directory = Path(model_dir) if model_dir else standard_model_dir()
    try:
        verify(directory)
    except ArtifactError as error:
        return directory, str(error)
    return directory, None


def ensure_trained(model_dir: str | Path | None = None, **small_config: Any) -> Path:
    """The trained model at ``model_dir`` (default: the standard location stages 03-05 write to).

    When there is none (a notebook run on its own), train a small one there first with the
    same :func:`kit.train.loop.train_func` (in this process) and say so in one line.
    ``small_config`` overrides :data:`SMALL_MODEL`.
    """
    directory, reason = missing_model(model_dir)
    if reason is None:
        return directory
    from kit.train import launchers

    config = {**SMALL_MODEL, **small_config, "model_dir": str(directory)}
    print(f"No trained model to serve ({reason}); training a small one with train_func "
          f"({config['epochs']} epochs) into {directory}.", flush=True)
    launchers.run_in_process(config)
    return directory
