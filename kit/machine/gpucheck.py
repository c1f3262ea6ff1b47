"""``python -m kit.machine.gpucheck`` (``make test-gpu``): the training paths on CUDA, fp32 vs bf16.

Runs :func:`kit.train.loop.train_func` in this process and under torchrun (one process per
GPU, at most two) on the GPU, once in fp32 and once with bf16 autocast, and prints the
step time of each, and the GPU energy per epoch of each run, read from NVML by codecarbon
(:func:`kit.evaluate.energy.measure_energy`; start-up included). GPU-only: exits 1 with a clear
message when torch sees no CUDA device, and when a run did not use the GPU or the precision it
asked for, or its energy was not measured through NVML. About a minute on one GPU.
"""

from __future__ import annotations

import functools
import sys
from statistics import median

CONFIG = {"dataset": "synthetic", "samples": 60_000, "model": "cnn", "hidden": 256, "batch_size": 512,
          "epochs": 3, "device": "cuda"}


def no_cuda_message() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    import torch

    if torch.cuda.is_available():
        return None
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    return (f"kit.machine.gpucheck: torch {torch.__version__} ({build}) sees no CUDA device. Run it on a machine "
            "with an NVIDIA GPU and a CUDA build of torch (pip install torch==<pin> from PyPI); "
            "check nvidia-smi and CUDA_VISIBLE_DEVICES.")


def step_ms(result) -> float:
    """Median steady-state step time in milliseconds (first epoch dropped)."""
    history = result.history[1:] or result.history
    return median(h["epoch_s"] / h["steps"] for h in history) * 1000


def main(argv: list[str] | None = None) -> int:
    message = no_cuda_message()
    if message:
        print(message, file=sys.stderr)
        return 1
    import torch

    from kit.train import launchers as launch

    nproc = min(2, torch.cuda.device_count())
    bf16_ok = torch.cuda.is_bf16_supported()
    print(f"GPU: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch {torch.__version__}, "
          f"bf16 supported: {bf16_ok}")
    from kit.evaluate.energy import measure_energy

    rows: list[tuple[str, str, float, float, float, float]] = []
    problems: list[str] = []
    for path in ("in-process", f"torchrun x{nproc}"):
        for bf16 in (False, True):
            config = dict(CONFIG, bf16=bf16)
            if path == "in-process":
                run = functools.partial(launch.run_in_process, config)
            else:
                run = functools.partial(launch.run_torchrun, dict(config, workers=nproc), on_line=None)
            reading = measure_energy(run, f"{path} {bf16=}")
            result = reading.result
            if "GPU: NVML" not in reading.method:
                problems.append(f"{path}: GPU energy not measured through NVML ({reading.method})")
            final = result.final
            if final is None:
                problems.append(f"{path}: no epoch finished")
                continue
            expected = "bf16" if bf16 and bf16_ok else "fp32"
            if not result.result["device"].startswith("cuda"):
                problems.append(f"{path}: ran on {result.result['device']}, not CUDA")
            if result.result["precision"] != expected:
                problems.append(f"{path}: precision {result.result['precision']}, expected {expected}")
            gpu_j_per_epoch = reading.gpu_kwh * 3.6e6 / len(result.history or [None])
            rows.append((path, result.result["precision"], step_ms(result), final["samples_per_s"],
                         final["test_accuracy"], gpu_j_per_epoch))
    print(f"\n{'path':<16}{'precision':<11}{'step ms':>9}{'samples/s':>12}{'test acc':>10}{'GPU J/epoch':>13}")
    for path, precision, ms, throughput, accuracy, joules in rows:
        print(f"{path:<16}{precision:<11}{ms:>9.2f}{throughput:>12.0f}{accuracy:>10.3f}{joules:>13.1f}")
    print("GPU J/epoch: measured (NVML energy counters, via codecarbon), start-up included")
    for path in ("in-process", f"torchrun x{nproc}"):
        times = {precision: ms for name, precision, ms, _, _, _ in rows if name == path}
        energy = {precision: joules for name, precision, _, _, _, joules in rows if name == path}
        if "fp32" in times and "bf16" in times:
            print(f"{path}: bf16 step time / fp32 = {times['bf16'] / times['fp32']:.2f}, "
                  f"GPU energy per epoch bf16 / fp32 = {energy['bf16'] / max(energy['fp32'], 1e-9):.2f}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
