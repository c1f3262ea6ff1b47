"""Stage 09 and the clusters/ directory: the deployment plan, the generated layout, the operator installer."""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
