"""Benchmarks behind ``python -m kit bench <name>``: measured side by side in one run.

Each benchmark prints the machine it ran on, a table of medians and the ratios
the issues set goals for, and saves JSON under ``build/bench/``. They are not
tests: timings on a shared 2-core machine are reported, never asserted.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kit import resources, versions

OUT = Path(__file__).resolve().parent.parent / "build" / "bench"


def machine() -> dict:
    """What the figures were measured on."""
    found = resources.detect()
    return {
        "cpus": found.cpus,
        "memory_gib": round(found.memory_gib, 1),
        "gpus": list(found.gpu_names),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "ray": versions.RAY,
        "torch": versions.TORCH,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def save(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return path


_COLD_START = """
import time
began = time.perf_counter()
from kit import raylocal
info = raylocal.start()
total = time.perf_counter() - began
raylocal.stop()
print(f"{total:.3f} {info.start_seconds:.3f}")
"""


def bench_ray(repeat: int = 2) -> dict:
    """Local Ray start-up: cold (fresh process), warm (restart in a warm process) and reuse."""
    from kit import raylocal

    cold_total, cold_init = [], []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _COLD_START], capture_output=True, text=True, check=True)
        total, init = (float(x) for x in out.stdout.split()[-2:])
        cold_total.append(total)
        cold_init.append(init)
    warm, reuse = [], []
    raylocal.start()
    for _ in range(repeat):
        began = time.perf_counter()
        raylocal.start()
        reuse.append(time.perf_counter() - began)
        raylocal.stop()
        warm.append(raylocal.start().start_seconds)
    raylocal.stop()
    rows = {
        "cold: import + start (fresh process)": cold_total,
        "cold: ray.init only": cold_init,
        "warm: start again after stop, same process": warm,
        "re-run of the start cell (reuse)": reuse,
    }
    print(f"machine: {machine()}")
    print(f"{'local Ray start-up':<46} {'median s':>9}   runs")
    for label, values in rows.items():
        print(f"{label:<46} {statistics.median(values):>9.2f}   {', '.join(f'{v:.2f}' for v in values)}")
    goal = statistics.median(warm)
    print(f"warm start goal ≤ 5 s: measured {goal:.1f} s ({'met' if goal <= 5 else 'not met'})")
    data = {label: {"median": statistics.median(v), "runs": v} for label, v in rows.items()}
    print(f"saved {save('ray', data)}")
    return data


BENCHMARKS: dict[str, Callable[..., dict]] = {
    "ray": bench_ray,
    "serve": lambda repeat: __import__("kit.bench_serve", fromlist=["bench_serve"]).bench_serve(repeat),
}


def cli(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kit bench", description=__doc__)
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (medians are reported)")
    args = parser.parse_args(argv)
    BENCHMARKS[args.name](repeat=args.repeat)
    return 0
