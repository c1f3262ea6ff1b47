"""Hand-written manifest fixtures shared by the validator and policy tests."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
VALID = FIXTURES / "valid"
INVALID = FIXTURES / "invalid"
POLICY = FIXTURES / "policy"


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def by_kind(kind: str) -> dict:
    """A deep copy of the valid fixture of ``kind``."""
    for path in sorted(VALID.glob("*.yaml")):
        for doc in load(path):
            if doc["kind"] == kind:
                return copy.deepcopy(doc)
    raise LookupError(kind)
