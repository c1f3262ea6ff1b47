"""Kubernetes resources as plain dicts, built from the same config a local run uses.

A builder returns a dict; writing YAML, validating and applying are separate steps
that any caller can compose. Submodules are imported on use: builders (``ray``,
``pods``), ``crds`` (the upstream CRD schemas as JSON Schema), ``validate``
(``python -m kit validate``: schemas and the checks they cannot express), ``policy``
(Pod Security ``restricted`` and the kit's Ray rules), ``problems`` (what a check
reports) and ``traverse`` (finding pod specs, containers and Ray cluster specs).
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
