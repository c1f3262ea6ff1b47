"""``python -m kit bench ray``: local Ray start-up, cold (fresh process), warm (restart) and reuse."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from kit.bench import machine, save

_COLD_START = """
import time
began = time.perf_counter()
from kit.machine import local_ray as raylocal
info = raylocal.start()
total = time.perf_counter() - began
raylocal.stop()
print(f"{total:.3f} {info.start_seconds:.3f}")
"""


def bench_ray(repeat: int = 2) -> dict:
    """Local Ray start-up: cold (fresh process), warm (restart in a warm process) and reuse."""
    from kit.machine import local_ray as raylocal

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


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit bench ray", description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (medians are reported)")
    bench_ray(parser.parse_args(argv).repeat)
    return 0
