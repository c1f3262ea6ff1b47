"""The one predict function every server calls: validate, preprocess, predict.

:class:`Predictor` loads the serving artifact training wrote (:func:`kit.train.artifact.load_model`,
hash checked), validates a batch, applies the artifact's preprocessing and predicts. The
FastAPI baseline, Ray Serve and KServe all call it, so a benchmark compares the servers
and not three different models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import KitError
from kit.serve import numpy_model
from kit.train.artifact import SMALL_MODEL, WEIGHTS, ArtifactError, ModelMetadata, load_model, missing_model, verify

#: Largest batch one request may carry; more is a client error (HTTP 413).
MAX_BATCH = 256


class InvalidInput(KitError, ValueError):
    """A request's data cannot be predicted on; the message says what is wrong (HTTP 4xx)."""

    def __init__(self, message: str, status: int = 422,
                 fix: str = "send {\"instances\": [[64 numbers], ...]}: rows of the model's input shape") -> None:
        super().__init__(message, fix=fix)
        self.status = status


def digit_rows() -> np.ndarray:
    """scikit-learn's 8x8 digits as raw pixels (float32, 0..16), what :func:`kit.train.data.digit_pixels` gives.

    Read from scikit-learn's own CSV file without importing scikit-learn (about 70 MiB) or
    :mod:`kit.train.data` (torch): a notebook that only sends requests stays small.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if path is None or not path.exists():  # another scikit-learn layout: ask it
        from kit.train.data import digit_pixels

        return digit_pixels()[0]
    return np.loadtxt(path, delimiter=",", dtype=np.float32)[:, :-1]


def sample_instances(n: int = 2, seed: int = 0) -> list[list[float]]:
    """``n`` real digit images as JSON-ready rows of 64 raw pixel values (the request payload)."""
    pixels = digit_rows()
    rows = np.random.default_rng(seed).choice(len(pixels), size=n, replace=False)
    return pixels[rows].tolist()


def ensure_model(model_dir: str | Path | None = None) -> Path:
    """:func:`kit.train.artifact.ensure_trained`, but a missing model is trained in a child process.

    The child imports torch and exits; this process (a notebook kernel that only sends requests) never
    does, which keeps about 180 MiB out of it for the rest of the session.
    """
    import json
    import subprocess
    import sys

    directory, reason = missing_model(model_dir)
    if reason is None:
        return directory
    config = {**SMALL_MODEL, "model_dir": str(directory)}
    print(f"No trained model to serve ({reason}); training a small one with train_func "
          f"({config['epochs']} epochs) into {directory}, in a child process.", flush=True)
    command = [sys.executable, "-m", "kit.train.launchers", "in-process", "--config", json.dumps(config)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        raise ArtifactError(f"training the small model failed (exit {done.returncode}):\n{tail}")
    verify(directory)
    return directory


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


#: How a Predictor runs the model: "torch", "numpy" (the MLP without importing torch: about 180 MiB less
#: per process), or "auto" (numpy where it can run the model, else torch).
BACKENDS = ("torch", "numpy", "auto")


class Predictor:
    """Validate -> preprocess -> predict, for every server. Loads the artifact once."""

    def __init__(self, model_dir: str | Path, threads: int = 1, max_batch: int = MAX_BATCH,
                 backend: str = "torch") -> None:
        if backend not in BACKENDS:
            raise KitError(f"unknown predictor backend {backend!r}", fix=f"use one of {', '.join(BACKENDS)}")
        self.model_dir = Path(model_dir)
        self.max_batch = max_batch
        self.metadata = verify(model_dir)
        self.network: Any
        if backend == "auto":
            backend = "numpy" if numpy_model.supports(self.metadata) else "torch"
        if backend == "numpy":
            if not numpy_model.supports(self.metadata):
                raise KitError(f"the numpy backend runs the kit's MLP only, not {self.metadata.config.model!r}",
                               fix='use backend="torch" (or "auto")')
            self.network = numpy_model.NumpyMLP(numpy_model.load_state_dict(self.model_dir / WEIGHTS))
        else:
            import torch

            torch.set_num_threads(threads)  # one replica, one core: replicas scale out, not up
            self.network, self.metadata = load_model(model_dir)
        self.backend = backend

    @property
    def name(self) -> str:
        return self.metadata.name

    def validate(self, instances) -> np.ndarray:
        return validate_instances(instances, self.metadata, self.max_batch)

    def predict_array(self, array: np.ndarray) -> list[int]:
        """Class labels for an already validated (n, features) array."""
        scaled = array * np.float32(self.metadata.preprocessing["scale"])
        if isinstance(self.network, numpy_model.NumpyMLP):
            best = self.network.logits(scaled).argmax(axis=1).tolist()
        else:
            import torch

            with torch.inference_mode():
                best = self.network(torch.from_numpy(scaled)).argmax(dim=1).tolist()
        return [self.metadata.classes[i] for i in best]

    def predict(self, instances) -> list[int]:
        """Validate and predict: the one predict function every server calls."""
        return self.predict_array(self.validate(instances))
