"""The curriculum: stage map, notebook tooling (solutions/ -> notebooks/), checked exercises, lesson helpers."""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
