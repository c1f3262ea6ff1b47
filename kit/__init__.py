"""Cloud-Native AI Kit: the helpers behind the tutorial's notebooks.

One module per concept: ``versions`` (the version lock), ``resources`` (cgroup-aware
CPUs/memory/GPUs), ``raylocal`` (local Ray), ``doctor`` (preflight checks),
``profile`` (local / kind / cluster), ``exercises`` (checks, hints, skip-ahead),
``notebooks`` (solutions -> learner notebooks), ``manifests`` (Kubernetes resources
as plain dicts), ``bench`` (benchmarks). Submodules are imported on use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
_SUBMODULES = {
    "bench", "doctor", "exercises", "manifests", "notebooks", "profile", "raydemo", "raylocal",
    "resources", "versions",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"kit.{name}")
    raise AttributeError(f"module 'kit' has no attribute {name!r}")
