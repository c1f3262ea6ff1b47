"""``python -m kit bench observe-ray``: :func:`kit.observe.ray_metrics.observe` with the machine it ran on.

Without ``--model-dir`` it trains a tiny digits MLP first (seconds), with the kit's one training function.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from kit.bench import machine

#: A model small enough to train in seconds; the run is about metrics, not accuracy.
TINY_MODEL = {"dataset": "digits", "model": "mlp", "hidden": 32, "epochs": 2, "batch_size": 32, "device": "cpu"}


def bench_observe_ray(seconds: float = 3.0, concurrency: int = 4, model_dir: str | None = None) -> dict[str, Any]:
    from kit.observe import ray_metrics
    from kit.observe.prometheus import require

    require("prometheus")  # before training a model for nothing
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kit-observe-ray-") as tmp:
        if model_dir is None:
            from kit.bench.serve import train_model

            model_dir = str(Path(tmp) / "digits")
            train_model(Path(model_dir), TINY_MODEL)
        observed = ray_metrics.observe(model_dir, seconds=seconds, concurrency=concurrency)
    return {"machine": machine(), **observed.summary(), "wall_seconds": round(time.perf_counter() - began, 1)}


def format_observe_ray(data: dict[str, Any]) -> str:
    from kit.observe.ray_metrics import format_observation

    return format_observation(data)
