"""Kubernetes: builders (plain dicts), validation (CRD schemas, admission rules, policy), live (a real cluster)."""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
