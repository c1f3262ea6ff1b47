"""The digits as a small Ray Dataset for stage 04: rows in the object store, streamed to Ray Train's workers.

The rows come from the file scikit-learn's ``load_digits`` reads (64 pixels and the label per row), read
here with pyarrow (which Ray Data has loaded already; scikit-learn would cost this process memory). The
Dataset holds them as a few blocks in the object store, and a worker's ``iter_torch_batches`` streams them
block by block. On a cluster a Dataset is read where it lives instead (``ray.data.read_parquet("s3://...")``):
read tasks on the nodes, blocks streamed to the workers while later blocks are still being read.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import KitError
from kit.train.data import DIGITS_SCALE, FEATURES

if TYPE_CHECKING:
    import ray.data

#: Where scikit-learn keeps the digits (found without importing scikit-learn into this process).
DIGITS_CSV = Path("datasets", "data", "digits.csv.gz")


def digits_csv() -> Path:
    """The path of scikit-learn's ``digits.csv.gz`` (1,797 rows: 64 pixels 0..16, then the label)."""
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / DIGITS_CSV
        if path.is_file():
            return path
    raise KitError("scikit-learn's digits.csv.gz was not found",
                   fix="install the kit's environment (make setup): scikit-learn ships the digits")


def digits_rows(rows: int | None = None, path: str | Path | None = None) -> list[dict[str, Any]]:
    """The first ``rows`` digits (all when None) as ``{"x": 64 float32 pixels scaled to 0..1, "y": label}``."""
    import numpy as np
    import pyarrow.csv

    read = pyarrow.csv.ReadOptions(autogenerate_column_names=True)
    table = pyarrow.csv.read_csv(str(path or digits_csv()), read_options=read)
    if rows is not None:
        table = table.slice(0, rows)
    values = np.stack([column.to_numpy() for column in table.columns], axis=1)
    x = values[:, :FEATURES].astype(np.float32) * np.float32(DIGITS_SCALE)
    return [{"x": pixels, "y": int(label)} for pixels, label in zip(x, values[:, FEATURES], strict=True)]


def digits_dataset(rows: int | None = None, blocks: int = 4) -> ray.data.Dataset:
    """The first ``rows`` digits as a Ray Dataset (columns ``x`` and ``y``) of ``blocks`` blocks in the object store."""
    import ray.data

    return ray.data.from_items(digits_rows(rows), override_num_blocks=blocks)
