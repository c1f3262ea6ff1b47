"""A real cluster: context, apply and delete, waits that explain themselves, diagnostics, port-forward."""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
