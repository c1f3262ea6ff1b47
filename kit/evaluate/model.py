"""The artifact under evaluation: its network, its held-out data and what a prediction costs.

:func:`held_out` rebuilds the exact split the model was trained with (data set, size, test
fraction and seed are in ``metadata.json``) and returns its test rows, which training never saw.

Cost is measured in this process with one torch thread (as one serving replica runs):

- latency per batch: ``time.perf_counter()`` around each forward pass (softmax included), after
  one warm-up call; the median and the 95th percentile of ``repeats`` calls;
- CPU-seconds per 1,000 predictions: ``time.process_time()`` (this process's user + system CPU time,
  all its threads) around predicting at least 2,000 rows at that batch size, scaled to 1,000 rows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.train.artifact import ModelMetadata

#: Batch sizes whose latency and CPU cost an evaluation reports (1: an online request; 64: a batch job).
COST_BATCHES = (1, 64)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def predict_proba(network, x: np.ndarray) -> np.ndarray:
    """Class probabilities of a torch network (float32 or quantized) for rows ``x`` in the model's space."""
    import torch

    with torch.inference_mode():
        logits = network(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return softmax(logits.double().numpy())


@dataclass(frozen=True)
class Cost:
    """What predicting costs at one batch size, measured as the module docstring says."""

    batch: int
    p50_ms: float
    p95_ms: float
    cpu_s_per_1000: float


class Scorer:
    """Probabilities from a torch network (float32 or quantized), in the model's input space."""

    def __init__(self, network, metadata: ModelMetadata) -> None:
        self.network, self.metadata = network, metadata

    @classmethod
    def load(cls, model_dir: str | Path) -> Scorer:
        from kit.train.artifact import load_model

        network, metadata = load_model(model_dir)
        return cls(network, metadata)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return predict_proba(self.network, x)


def held_out(metadata: ModelMetadata) -> tuple[np.ndarray, np.ndarray]:
    """The test rows (model space) and labels of the split ``metadata``'s model was trained on."""
    from kit.train import data

    config = metadata.config
    split = data.build_split(config.dataset, config.samples, config.test_fraction, config.seed)
    return split.x_test.numpy().astype(np.float32), split.y_test.numpy()


def input_range(metadata: ModelMetadata) -> tuple[float | None, float | None, float]:
    """(low, high, span) of the model's inputs: the recorded request range x the scale, or unbounded
    (standardised features: span 1, one standard deviation)."""
    recorded = metadata.preprocessing.get("input_range")
    if not recorded:
        return None, None, 1.0
    scale = float(metadata.preprocessing.get("scale", 1.0))
    low, high = float(recorded[0]) * scale, float(recorded[1]) * scale
    return low, high, high - low


@contextmanager
def one_thread() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_cost(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batches: tuple[int, ...] = COST_BATCHES,
                 repeats: int = 50, min_rows: int = 2000) -> list[Cost]:
    """:class:`Cost` at each batch size (rows taken cyclically from ``x``)."""
    results = []
    with one_thread():
        for batch in batches:
            rows = np.resize(x, (batch, x.shape[1])).astype(np.float32)
            predict(rows)  # warm-up
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                predict(rows)
                times.append(time.perf_counter() - began)
            calls = max(1, -(-min_rows // batch))
            cpu_began = time.process_time()
            for _ in range(calls):
                predict(rows)
            cpu = time.process_time() - cpu_began
            ordered = sorted(times)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            results.append(Cost(batch, round(statistics.median(times) * 1e3, 4), round(p95 * 1e3, 4),
                                round(cpu / (calls * batch) * 1000, 5)))
    return results
