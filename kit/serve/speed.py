"""Inference speed on this machine: batching and dynamic int8 quantization, measured before/after.

Times the bare forward pass (no server), one thread, median of several repeats, so the
numbers isolate what the model costs; stage 08 puts them next to what the servers add.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np


def time_forward(network, batch: int, features: int = 64, repeats: int = 20) -> float:
    """Median seconds of one forward pass of ``batch`` rows."""
    import torch

    x = torch.from_numpy(np.random.default_rng(0).random((batch, features), dtype=np.float32))
    times = []
    with torch.inference_mode():
        network(x)  # warm-up
        for _ in range(repeats):
            began = time.perf_counter()
            network(x)
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def forward_ms(model_dir: str | Path, batches: tuple[int, ...], repeats: int = 10) -> dict[int, float]:
    """Milliseconds of one forward pass of the artifact in ``model_dir`` per batch size, one thread (as a replica)."""
    import torch

    from kit.train.artifact import load_model

    torch.set_num_threads(1)
    network, metadata = load_model(model_dir)
    return {batch: round(time_forward(network, batch, metadata.features, repeats) * 1e3, 3) for batch in batches}


#: What replaces ``torch.ao.quantization.quantize_dynamic`` (deprecated since torch 2.10, still working in
#: 2.13): torchao's eager-mode API. torchao is not in the kit's lock, so the kit keeps the torch one.
QUANTIZE_REPLACEMENT = ("torchao.quantization.quantize_(model, "
                        "torchao.quantization.Int8DynamicActivationInt8WeightConfig())")


def quantize_dynamic(network):
    """int8 weights for every Linear layer, activations quantized on the fly (CPU only).

    ``torch.ao.quantization`` warns on every call that it is deprecated (torch/ao/quantization/utils.py
    ``DEPRECATION_WARNING``) and that its quantized tensors are; both still work in torch 2.13, so those two
    warnings are silenced here and only here. The replacement is :data:`QUANTIZE_REPLACEMENT`.
    """
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(network, {torch.nn.Linear}, dtype=torch.qint8)


def agreement(a, b, features: int = 64, rows: int = 256) -> float:
    """Share of random inputs on which two networks predict the same class."""
    import torch

    x = torch.from_numpy(np.random.default_rng(1).random((rows, features), dtype=np.float32))
    with torch.inference_mode():
        return float((a(x).argmax(1) == b(x).argmax(1)).float().mean())


def compare(model_dir: str | Path, batches: tuple[int, ...] = (1, 32), repeats: int = 20) -> list[dict]:
    """Rows/s of the float32 and the int8 model at each batch size."""
    import torch

    from kit.train.artifact import load_model

    torch.set_num_threads(1)
    network, metadata = load_model(model_dir)
    variants = {"float32": network, "int8 dynamic": quantize_dynamic(network)}
    rows = []
    for batch in batches:
        for name, model in variants.items():
            seconds = time_forward(model, batch, metadata.features, repeats)
            rows.append({"model": name, "batch": batch, "ms_per_call": round(seconds * 1e3, 3),
                         "rows_per_s": round(batch / seconds)})
    return rows


def verdict(rows: list[dict]) -> str:
    """What :func:`compare`'s table says, in words chosen from the numbers (never a fixed expectation)."""
    rate = {(row["model"], row["batch"]): row["rows_per_s"] for row in rows}
    small, large = min(row["batch"] for row in rows), max(row["batch"] for row in rows)
    batching = rate[("float32", large)] / rate[("float32", small)]
    lines = [f"batching {small} -> {large} rows per call: float32 rows/s x{batching:.1f}"]
    for batch in (small, large):
        ratio = rate[("int8 dynamic", batch)] / rate[("float32", batch)]
        effect = "faster" if ratio > 1.05 else "slower" if ratio < 0.95 else "about the same"
        lines.append(f"int8 vs float32 at batch {batch}: x{ratio:.2f} ({effect})")
    gains = {"batching": batching, "int8 at the large batch": rate[("int8 dynamic", large)] / rate[("float32", large)]}
    lines.append(f"the bigger lever on this machine: {max(gains, key=lambda k: gains[k])}")
    return "\n".join(lines)
