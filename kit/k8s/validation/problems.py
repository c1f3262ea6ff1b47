"""What a check reports: one :class:`Problem` per broken rule, with where and what."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: A location inside a document: keys and list indexes, e.g. ("spec", "containers", 0).
PathParts = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Problem:
    """One broken rule: the file, the resource ``Kind/name``, the field path and what was expected."""

    file: str
    resource: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}: {self.resource}: {where}{self.message}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def format_path(parts: Iterable[str | int]) -> str:
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``.

    Keys that are not plain identifiers (label keys, for instance) are quoted:
    ``metadata.labels["kueue.x-k8s.io/queue-name"]``.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def resource_name(doc: Any) -> str:
    """``Kind/name`` of a document, with ``?`` for what is missing."""
    if not isinstance(doc, Mapping):
        return "?/?"
    metadata = doc.get("metadata")
    name = None
    if isinstance(metadata, Mapping):
        name = metadata.get("name") or metadata.get("generateName")
    return f"{doc.get('kind') or '?'}/{name or '?'}"


def is_int(*values: Any) -> bool:
    """Every value is an integer (``True`` and ``False`` are not)."""
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def type_name(value: Any) -> str:
    """The JSON Schema name of a value's type: string, integer, object ..."""
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
             dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def short_value(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
