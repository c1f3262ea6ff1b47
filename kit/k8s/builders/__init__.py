"""Kubernetes resources as plain dicts, built from the same config a local run uses.

A builder returns a dict; writing YAML (:func:`to_yaml`), validating
(:mod:`kit.k8s.validation`) and applying (:mod:`kit.k8s.live.kubectl`) are separate steps
that any caller can compose. Submodules are imported on use: ``core`` (namespace, quota,
Job), ``pods`` (restricted containers and pod templates), ``kueue``, ``ray``, ``training``
(TrainJob, PyTorchJob, RayJob), ``runtime`` (the restricted Trainer runtime) and ``serving``
(RayService, InferenceService). API groups, versions and default names come from
:mod:`kit.versions`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from kit.lazy import submodule_getattr


def to_yaml(docs: dict[str, Any] | Iterable[dict[str, Any]]) -> str:
    """One or more resources as a multi-document YAML string, keys in the order built."""
    items = [docs] if isinstance(docs, dict) else list(docs)
    return "---\n".join(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False) for doc in items)


__getattr__ = submodule_getattr(__name__)
