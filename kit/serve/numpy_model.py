"""The MLP's forward pass in NumPy, from the same ``model.pt``, without importing torch.

``import torch`` costs a process about 180 MiB; a Serve replica that only multiplies three small
matrices does not need it. :func:`load_state_dict` reads the weights file ``torch.save`` wrote (a zip
of one pickle plus one raw buffer per tensor) with a restricted unpickler that builds NumPy arrays
and refuses any other class; :class:`NumpyMLP` applies :class:`kit.train.models.MLP`'s layers.
Other architectures (``cnn``, ``recurrent``) keep the torch path (:func:`supports`).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

from kit.train.artifact import ArtifactError, ModelMetadata

#: torch's storage class names in a pickle -> the NumPy dtype of their raw bytes (little-endian files)
_STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
                   "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                   "BoolStorage": "?"}
#: the layers of kit.train.models.MLP that hold weights (nn.Sequential indices), in order
_MLP_LAYERS = ("0", "2", "4")


def supports(metadata: ModelMetadata) -> bool:
    """Whether this module can run the model (the kit's MLP); others need torch."""
    return metadata.config.model == "mlp"


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: object) -> np.ndarray:
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * storage.itemsize for s in stride))
    return np.array(view)  # a copy: the storage buffer is read-only


class _Unpickler(pickle.Unpickler):
    """Unpickles a state dict of tensors as arrays; any other global is refused (no code runs)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a tensor state dict")

    def persistent_load(self, pid):
        kind, storage, key, _location, count = pid
        if kind != "storage" or storage not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unexpected storage {pid!r}")
        raw = self.archive.read(f"{self.prefix}/data/{key}")
        return np.frombuffer(raw, dtype=_STORAGE_DTYPES[storage], count=count)


def load_state_dict(weights: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``'d state dict, as NumPy arrays (torch's zip format)."""
    try:
        with zipfile.ZipFile(weights) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ArtifactError(f"{weights} is not a torch.save zip archive (no single data.pkl)")
            prefix = pickles[0].rsplit("/", 1)[0]
            order = f"{prefix}/byteorder"
            if order in archive.namelist() and archive.read(order).strip() != b"little":
                raise ArtifactError(f"{weights} was saved big-endian; load it with torch")
            state = _Unpickler(archive, prefix, archive.read(pickles[0])).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError) as error:
        raise ArtifactError(f"{weights} cannot be read as a state dict without torch: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ArtifactError(f"{weights} does not hold a dict of tensors")
    return dict(state)


class NumpyMLP:
    """:class:`kit.train.models.MLP` (Linear, ReLU, Linear, ReLU, Linear) in float32 NumPy."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        try:
            self.layers = [(state[f"{i}.weight"].astype(np.float32).T.copy(), state[f"{i}.bias"].astype(np.float32))
                           for i in _MLP_LAYERS]
        except KeyError as error:
            raise ArtifactError(f"the weights are not the kit's MLP: no {error.args[0]}") from None

    def logits(self, rows: np.ndarray) -> np.ndarray:
        hidden = rows
        for i, (weight, bias) in enumerate(self.layers):
            hidden = hidden @ weight + bias
            if i < len(self.layers) - 1:
                np.maximum(hidden, 0, out=hidden)
        return hidden
