"""Energy trade-offs measured side by side in one run (``python -m kit bench energy``, :mod:`kit.cli.bench`).

One process trains the digits model with 1 and with 2 workers (both under torchrun, so both pay the same
launcher start-up, after one unmeasured warm-up run; each row's energy includes its start-up, which the
row names), then serves the 1-worker model's predictions in float32 and in int8 dynamic
quantization (:func:`kit.serve.speed.quantize_dynamic`, as stage 08) at several batch sizes. Every
piece of work runs inside :func:`kit.evaluate.energy.measure_energy`, and each row reports accuracy
on the held-out split, p95 latency per call (inference), energy (per epoch / per 1,000 predictions),
CPU-seconds, and whether the energy was *measured* or *estimated* with the method codecarbon used.
Where codecarbon falls back to its constant model (no RAPL, no GPU), energy is a fixed power x wall
time: the CPU-seconds column then shows the work, and the table says so.
"""

from __future__ import annotations

import functools
import math
import tempfile
import time
from statistics import quantiles
from typing import Any

import numpy as np

from kit import paths
from kit.bench import machine

#: The model the trade-off is about: the kit's digits MLP.
TRAIN = {"dataset": "digits", "model": "mlp", "hidden": 64, "batch_size": 32, "lr": 0.01, "seed": 0}


def _train_row(workers: int, epochs: int, model_dir: str, country: str) -> dict[str, Any]:
    from kit.evaluate.energy import measure_energy
    from kit.train import launchers

    config = dict(TRAIN, epochs=epochs, workers=workers, model_dir=model_dir)
    launchers.prepare(config, processes=True)  # data materialised before the measurement
    reading = measure_energy(lambda: launchers.run_torchrun(config, on_line=None),
                             f"train, {workers} worker(s), torchrun", units=epochs, country_iso_code=country)
    final = reading.result.final or {}
    startup = reading.result.startup_s
    started = f"{startup:.0f} s start-up" if startup is not None else "start-up not reported"
    return {"work": f"train {epochs} ep, {workers} worker(s), {started}", "kind": "train",
            "workers": workers, "startup_s": startup,
            "accuracy": final.get("test_accuracy"), "p95_ms": None, "seconds": reading.seconds,
            "cpu_seconds": reading.cpu_seconds, "joules": reading.joules, "joules_per": reading.per(1),
            "per": "epoch", "energy": reading.kind, "method": reading.method}


def _infer_row(name: str, network, x: np.ndarray, y: np.ndarray, batch: int, seconds: float,
               country: str) -> dict[str, Any]:
    from kit.evaluate.energy import measure_energy
    from kit.evaluate.model import one_thread, predict_proba

    scorer = functools.partial(predict_proba, network)
    accuracy = float((scorer(x).argmax(axis=1) == y).mean())
    rows = np.resize(x, (max(batch, len(x) // batch * batch), x.shape[1])).astype(np.float32)
    batches = [rows[i:i + batch] for i in range(0, len(rows), batch)]
    with one_thread():
        began = time.perf_counter()
        for chunk in batches:
            scorer(chunk)
        passes = max(1, math.ceil(seconds / max(time.perf_counter() - began, 1e-6)))
        latencies: list[float] = []

        def work() -> None:
            for _ in range(passes):
                for chunk in batches:
                    start = time.perf_counter()
                    scorer(chunk)
                    latencies.append(time.perf_counter() - start)

        reading = measure_energy(work, f"{name}, batch {batch}", units=passes * len(rows), country_iso_code=country)
    p95 = quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
    return {"work": f"predict {name}, batch {batch}", "kind": "predict", "model": name, "batch": batch,
            "accuracy": accuracy, "p95_ms": p95 * 1e3, "seconds": reading.seconds, "cpu_seconds": reading.cpu_seconds,
            "joules": reading.joules, "joules_per": reading.per(1000), "per": "1,000 predictions",
            "predictions": passes * len(rows), "energy": reading.kind, "method": reading.method}


def bench_energy(quick: bool = False, country: str = "FRA", batches: tuple[int, ...] = (1, 16, 64),
                 workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Run the trade-off benchmark (see the module docstring) and return its rows."""
    from kit.evaluate.model import held_out
    from kit.serve.speed import quantize_dynamic
    from kit.train.artifact import load_model

    began = time.perf_counter()
    epochs = 4 if quick else 8
    rows = []
    with tempfile.TemporaryDirectory(dir=paths.work_dir("bench")) as scratch:
        from kit.train import launchers

        # unmeasured warm-up: the first torchrun of a session also pays for a cold file cache
        launchers.run_torchrun(dict(TRAIN, epochs=1, workers=1, model_dir=f"{scratch}/warm-up"), on_line=None)
        for count in workers:
            rows.append(_train_row(count, epochs, f"{scratch}/w{count}", country))
        network, metadata = load_model(f"{scratch}/w{workers[0]}")
    x, y = held_out(metadata)
    variants = {"float32": network, "int8 dynamic": quantize_dynamic(network)}
    for batch in batches:
        for name, model in variants.items():
            rows.append(_infer_row(name, model, x, y, batch, 0.5 if quick else 1.5, country))
    methods = sorted({row["method"] for row in rows})
    return {"machine": machine(), "train_config": dict(TRAIN, epochs=epochs), "country": country, "rows": rows,
            "methods": methods, "estimated": any(row["energy"] == "estimated" for row in rows),
            "total_s": time.perf_counter() - began}


def format_energy(report: dict[str, Any]) -> str:
    """The trade-off table, the energy method(s) in full, and what the figures can and cannot say."""
    m = report["machine"]
    lines = [f"Machine: {m['cpus']:g} CPU(s), {m['cpu_model']}, GPUs: {', '.join(m['gpus']) or 'none'}; "
             f"grid intensity: {report['country']} (codecarbon's offline table)", "",
             f"{'work':<42}{'accuracy':>9}{'p95 ms':>9}{'seconds':>9}{'CPU-s':>8}{'energy J':>10}"
             f"{'J per':>10}  per / label"]
    for row in report["rows"]:
        p95 = f"{row['p95_ms']:.3f}" if row["p95_ms"] is not None else "-"
        accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "-"
        lines.append(f"{row['work']:<42}{accuracy:>9}{p95:>9}{row['seconds']:>9.2f}{row['cpu_seconds']:>8.2f}"
                     f"{row['joules']:>10.3g}{row['joules_per']:>10.3g}  {row['per']}, {row['energy']}")
    lines.append("")
    lines += [f"energy method: {method}" for method in report["methods"]]
    if report["estimated"]:
        lines.append("Estimated energy here is codecarbon's constant model: a fixed power x wall time, so its "
                     "ratios are ratios of wall time; the CPU-s column is the work done. Measured figures need "
                     "RAPL (/sys/class/powercap) or an NVIDIA GPU (NVML).")
    train = [row for row in report["rows"] if row["kind"] == "train"]
    if len(train) == 2:
        one, two = train
        energy, cpu = two["joules_per"] / one["joules_per"], two["cpu_seconds"] / one["cpu_seconds"]
        lines.append(f"{two['workers']} vs {one['workers']} worker(s): energy per epoch x{energy:.2f}, "
                     f"CPU-s x{cpu:.2f}, accuracy {one['accuracy']:.4f} -> {two['accuracy']:.4f} "
                     "(each run includes its start-up)")
    predict = {(row["model"], row["batch"]): row for row in report["rows"] if row["kind"] == "predict"}
    for batch in sorted({b for _, b in predict}):
        f32, i8 = predict.get(("float32", batch)), predict.get(("int8 dynamic", batch))
        if f32 and i8:
            ratio = i8["joules_per"] / f32["joules_per"]
            lines.append(f"int8 vs float32 at batch {batch}: energy per 1,000 x{ratio:.2f}, "
                         f"accuracy {f32['accuracy']:.4f} -> {i8['accuracy']:.4f}")
    lines.append(f"total benchmark time: {report['total_s']:.0f} s")
    return "\n".join(lines)
