"""This machine: CPUs/memory/GPUs as the container sees them, a local Ray, the doctor, GPU and image checks."""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
