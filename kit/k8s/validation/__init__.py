"""Offline checks that a manifest would be admitted: CRD schemas, the operators' rules, the kit's policy."""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
