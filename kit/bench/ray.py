"""Local Ray start-up as a learner meets it (``python -m kit bench ray``).

Each row runs in fresh Python processes, as a notebook's kernel is one: the first notebook of a
Jupyter server starts Ray, every next one attaches to it (:mod:`kit.machine.ray_session`). The
bench process plays the Jupyter server (``$JPY_PARENT_PID``), so the Ray it owns stops with it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from kit.bench import machine
from kit.errors import KitError

_KERNEL = """
import time
began = time.perf_counter()
from kit.machine import local_ray as raylocal
info = raylocal.start()
total = time.perf_counter() - began
raylocal.stop()
print(f"{total:.3f} {info.start_seconds:.3f} {int(info.attached)}")
"""

FIRST = "first notebook: import + start Ray"
NEXT = "next notebook: import + attach"
NEXT_GOAL_S = 5.0


def _kernel(env: dict[str, str]) -> tuple[float, float, bool]:
    out = subprocess.run([sys.executable, "-c", _KERNEL], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise KitError(f"a kernel-like process failed to start local Ray:\n{out.stderr[-3000:]}",
                       fix="Run `python -m kit doctor`, then the bench again.")
    total, init, attached = out.stdout.split()[-3:]
    return float(total), float(init), attached == "1"


def bench_ray(repeat: int = 3) -> dict:
    """Start-up of the first notebook, of each next notebook, and of a re-run start cell."""
    from kit.machine import local_ray as raylocal
    from kit.machine import ray_session

    env = dict(os.environ, **{ray_session.OWNER_ENV: str(os.getpid())})
    rows: dict[str, list[float]] = {FIRST: [], "first notebook: ray start only": [], NEXT: [],
                                    "next notebook: attach only": [], "re-run of the start cell (reuse)": []}
    for _ in range(max(1, repeat - 1)):  # a fresh Ray each time: the previous one is stopped first
        total, init, attached = _kernel(env)
        assert not attached, "a Ray session was already running"
        rows[FIRST].append(total)
        rows["first notebook: ray start only"].append(init)
        for _ in range(repeat):
            total, init, attached = _kernel(env)
            assert attached, "the next notebook did not attach to the running Ray"
            rows[NEXT].append(total)
            rows["next notebook: attach only"].append(init)
        raylocal.start()
        began = time.perf_counter()
        raylocal.start()
        rows["re-run of the start cell (reuse)"].append(time.perf_counter() - began)
        raylocal.stop()  # disconnects; this process owns the session, so Ray stops too
        session = ray_session.find(raylocal.temp_root(), os.getpid())
        if session is not None:
            ray_session.stop(session)
    return {"machine": machine(), "next_goal_s": NEXT_GOAL_S,
            "rows": {label: {"median": statistics.median(v), "runs": v} for label, v in rows.items()}}


def format_ray(data: dict) -> str:
    """The figures as the table the command prints."""
    title = "local Ray start-up (fresh kernel processes)"
    lines = [f"machine: {data['machine']}", f"{title:<46} {'median s':>9}   runs"]
    for label, row in data["rows"].items():
        lines.append(f"{label:<46} {row['median']:>9.2f}   {', '.join(f'{v:.2f}' for v in row['runs'])}")
    nxt = data["rows"][NEXT]["median"]
    lines.append(f"moving to the next stage, goal ≤ {data['next_goal_s']:g} s: measured {nxt:.1f} s "
                 f"({'met' if nxt <= data['next_goal_s'] else 'not met'})")
    return "\n".join(lines)
