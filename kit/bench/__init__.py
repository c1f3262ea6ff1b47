"""Benchmarks behind ``python -m kit bench <name>``: measured side by side in one run.

Each benchmark prints the machine it ran on, a table of medians and the ratios the
issues set goals for, and saves JSON (and a plot where useful) under the kit's work
directory (``build/bench/``). They are not tests: timings on a shared 2-core machine
are reported, never asserted.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

from kit import paths, versions
from kit.machine import resources

#: name -> (module with a ``cli(argv) -> int``, what it measures)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "ray": ("kit.bench.ray", "local Ray start-up: cold, warm and reuse"),
    "train": ("kit.bench.train", "Ray Train vs torchrun epoch time, launcher start-up, 1 vs 2 workers"),
    "serve": ("kit.bench.serve", "FastAPI baseline vs Ray Serve (unbatched, batched) vs KServe v1/v2"),
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    found = resources.detect()
    return {
        "cpus": found.cpus,
        "cpu_source": found.cpu_source,
        "cpu_model": _cpu_model(),
        "memory_gib": round(found.memory_gib, 1),
        "gpus": list(found.gpu_names),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
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


def out_dir() -> Path:
    return paths.work_dir("bench")


def save(name: str, data: dict) -> Path:
    """Write ``build/bench/<name>.json`` with the machine added."""
    path = out_dir() / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return path


def usage() -> str:
    lines = ["usage: python -m kit bench <name> [options]", "", "benchmarks:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in BENCHMARKS.items()]
    return "\n".join(lines)


def cli(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in BENCHMARKS:
        print(f"unknown benchmark {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]][0])
    return int(module.cli(argv[1:]) or 0)
