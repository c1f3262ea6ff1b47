"""Benchmarks behind ``python -m kit bench <name>`` (:mod:`kit.cli.bench`): measured side by side in one run.

Each benchmark (:mod:`kit.bench.ray`, :mod:`kit.bench.train`, :mod:`kit.bench.serve`) returns its
figures with the machine it ran on, the medians and the ratios the issues set goals for, and
formats them as a table; the command saves JSON (and a plot where useful) under the kit's work
directory (``build/bench/``). They are not tests: timings on a shared 2-core machine are
reported, never asserted.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from kit import paths, versions
from kit.machine import resources


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
    """Write ``build/bench/<name>.json`` (each benchmark's figures include :func:`machine`)."""
    path = out_dir() / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
