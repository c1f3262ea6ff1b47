"""Configuration the kit checks up front: training, serving, cluster sizing, the notebook profile.

Nothing here imports torch or Ray: building or validating a manifest reads these.
"""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
