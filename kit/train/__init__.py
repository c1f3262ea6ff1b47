"""The training track: data, models, the one training loop, its entry point, launchers and Tune."""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
