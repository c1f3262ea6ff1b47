"""Reading manifest fields that may be missing or of the wrong type (the schema check reports those)."""

from __future__ import annotations

from typing import Any


def dig(node: Any, *keys: str) -> dict[str, Any]:
    """The mapping at ``node[k1][k2]...``, or ``{}`` when any step is missing or not a mapping."""
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    """The mappings of a list (other items skipped); ``[]`` when ``value`` is not a list."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def integer(value: Any) -> int | None:
    """``value`` when it is an integer (not a boolean), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def items(value: Any) -> list[Any]:
    """``value`` when it is a list, else ``[]``."""
    return value if isinstance(value, list) else []
