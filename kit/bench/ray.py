"""Local Ray start-up, cold (fresh process), warm (restart) and reuse (``python -m kit bench ray``)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from kit.bench import machine

_COLD_START = """
import time
began = time.perf_counter()
from kit.machine import local_ray as raylocal
info = raylocal.start()
total = time.perf_counter() - began
raylocal.stop()
print(f"{total:.3f} {info.start_seconds:.3f}")
"""


WARM = "warm: start again after stop, same process"
WARM_GOAL_S = 5.0


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
        WARM: warm,
        "re-run of the start cell (reuse)": reuse,
    }
    return {"machine": machine(), "warm_goal_s": WARM_GOAL_S,
            "rows": {label: {"median": statistics.median(v), "runs": v} for label, v in rows.items()}}


def format_ray(data: dict) -> str:
    """The figures as the table the command prints."""
    lines = [f"machine: {data['machine']}", f"{'local Ray start-up':<46} {'median s':>9}   runs"]
    for label, row in data["rows"].items():
        lines.append(f"{label:<46} {row['median']:>9.2f}   {', '.join(f'{v:.2f}' for v in row['runs'])}")
    warm = data["rows"][WARM]["median"]
    lines.append(f"warm start goal ≤ {data['warm_goal_s']:g} s: measured {warm:.1f} s "
                 f"({'met' if warm <= data['warm_goal_s'] else 'not met'})")
    return "\n".join(lines)
