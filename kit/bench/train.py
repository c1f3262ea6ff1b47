"""Ray Train vs torchrun (``python -m kit bench train``, :mod:`kit.cli.bench`).

The same :func:`kit.train.loop.train_func` and worker count under torchrun and Ray Train,
alternating A/B (order swapped each round): medians of steady-state epoch times (first epoch
of each run dropped; both checkpoint every epoch), their ratio against the goal
(Ray / torchrun <= 1.10), each launcher's start-up time (call -> first training step;
starting the local Ray itself is reported apart), and 1 vs 2 worker throughput.
:func:`format_train` makes the table, :func:`plot_train` the figure (``bench/train.png``).
"""

from __future__ import annotations

import tempfile
import time
from statistics import median
from typing import Any

from kit import paths
from kit.bench import machine

RATIO_GOAL = 1.10


def train_config(quick: bool) -> dict[str, Any]:
    """Enough work per epoch (about a second on one CPU) that per-step launcher overheads show."""
    return {"dataset": "synthetic", "samples": 12_000 if quick else 24_000, "model": "mlp", "hidden": 256,
            "batch_size": 64, "epochs": 3 if quick else 4, "seed": 0}


def _steady_epochs(result) -> list[float]:
    return [h["epoch_s"] for h in result.history[1:]]


def _steady_throughput(result) -> float:
    return median(h["samples_per_s"] for h in result.history[1:])


def bench_train(quick: bool = False, rounds: int | None = None, workers: int = 2) -> dict[str, Any]:
    """Run the training benchmark and return its figures (see the module docstring)."""
    from kit.machine import local_ray as raylocal
    from kit.train import launchers as launch

    rounds = rounds or (1 if quick else 2)
    config = dict(train_config(quick), workers=workers)
    launch.prepare(config)  # validate and materialise the data before any timing
    quiet = None  # no live output: timings only
    runs: dict[str, list] = {"torchrun": [], "ray-train": []}
    began = time.perf_counter()
    ray_start = raylocal.start()
    try:
        for round_index in range(rounds):
            order = ["torchrun", "ray-train"] if round_index % 2 == 0 else ["ray-train", "torchrun"]
            for name in order:
                if name == "torchrun":  # checkpoint every epoch too, as Ray Train does: the same work
                    with tempfile.TemporaryDirectory(dir=paths.work_dir("bench")) as checkpoints:
                        same_work = dict(config, checkpoint_dir=checkpoints)
                        runs[name].append(launch.run_torchrun(same_work, on_line=quiet))
                else:
                    runs[name].append(launch.run_ray_train(config))
    finally:
        if not ray_start.reused:  # leave a Ray the caller (a notebook) had started
            raylocal.stop()
    single = launch.run_torchrun(dict(config, workers=1), on_line=quiet)
    in_process = launch.run_in_process(dict(config, workers=1, epochs=1))

    epoch_s = {name: median(t for r in rs for t in _steady_epochs(r)) for name, rs in runs.items()}
    startup_s = {name: median(r.startup_s for r in rs) for name, rs in runs.items()}
    startup_s["in-process"] = in_process.startup_s
    startup_s["torchrun (1 worker)"] = single.startup_s
    throughput = {
        "1 worker": _steady_throughput(single),
        f"{workers} workers": median(_steady_throughput(r) for r in runs["torchrun"]),
    }
    return {
        "machine": machine(),
        "config": config,
        "workers": workers,
        "rounds": rounds,
        "steady_epoch_s": epoch_s,
        "ratio_ray_over_torchrun": epoch_s["ray-train"] / epoch_s["torchrun"],
        "ratio_goal": RATIO_GOAL,
        "startup_s": startup_s,
        "local_ray_start_s": ray_start.start_seconds,
        "throughput_samples_per_s": throughput,
        "speedup_2_over_1": throughput[f"{workers} workers"] / throughput["1 worker"],
        "epoch_times": {name: [_steady_epochs(r) for r in rs] for name, rs in runs.items()},
        "total_s": time.perf_counter() - began,
    }


def format_train(report: dict[str, Any]) -> str:
    """The report as a table a notebook or a terminal can print."""
    m = report["machine"]
    ratio = report["ratio_ray_over_torchrun"]
    verdict = "meets" if ratio <= report["ratio_goal"] else "misses"
    lines = [
        f"Machine: {m['cpus']:g} CPU(s) ({m['cpu_source']}), {m['memory_gib']} GiB, "
        f"GPUs: {', '.join(m['gpus']) or 'none'}; Python {m['python']}, torch {m['torch']}, Ray {m['ray']}",
        f"Work: {report['config']['samples']} synthetic samples, MLP hidden {report['config']['hidden']}, "
        f"{report['config']['epochs']} epochs, {report['workers']} workers, {report['rounds']} A/B round(s)",
        "",
        f"{'steady-state epoch (median)':<34}{'seconds':>10}",
    ]
    lines += [f"  {name:<32}{seconds:>10.3f}" for name, seconds in report["steady_epoch_s"].items()]
    goal = f"({verdict} the goal <= {report['ratio_goal']})"
    lines += [f"  {'ratio Ray Train / torchrun':<32}{ratio:>10.2f}  {goal}",
              "", f"{'start-up: call -> first step':<34}{'seconds':>10}"]
    lines += [f"  {name:<32}{seconds:>10.1f}" for name, seconds in report["startup_s"].items()]
    lines += [f"  {'(local Ray start, apart)':<32}{report['local_ray_start_s']:>10.1f}",
              "", f"{'throughput (torchrun)':<34}{'samples/s':>10}"]
    lines += [f"  {name:<32}{value:>10.0f}" for name, value in report["throughput_samples_per_s"].items()]
    lines += [f"  {'speed-up':<32}{report['speedup_2_over_1']:>10.2f}x",
              "", f"total benchmark time: {report['total_s']:.0f} s"]
    return "\n".join(lines)


def plot_train(report: dict[str, Any], path) -> None:
    """Three panels: steady epoch time, start-up time, throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = [
        (report["steady_epoch_s"], "steady-state epoch (s, median)"),
        (report["startup_s"], "start-up: call -> first step (s)"),
        (report["throughput_samples_per_s"], "throughput, torchrun (samples/s)"),
    ]
    for ax, (values, title) in zip(axes, panels, strict=True):
        ax.bar(list(values), list(values.values()), color="#4C72B0")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=20)
    m = report["machine"]
    fig.suptitle(f"{m['cpus']:g} CPUs, {m['memory_gib']} GiB, torch {m['torch']}, Ray {m['ray']}: "
                 f"Ray Train / torchrun = {report['ratio_ray_over_torchrun']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
