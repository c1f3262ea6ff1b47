"""The upstream CRDs of the kit's operators, as strict JSON Schema.

The CRD files are data, not part of the kit: they are read from the first of

1. the directory named by ``$KIT_CRD_DIR``,
2. ``../shared/crds`` next to the repository (CI has it),
3. ``build/crds`` in the checkout (git-ignored), where ``make lab`` / ``make test``
   (``python -m kit crds ensure``, :mod:`kit.k8s.validation.crd_fetch`) download them when
   none of the above holds them; a read-only install uses ``~/.cache/cloud-native-ai-kit/crds``,

that holds ``*.yaml`` files. Each served version's ``openAPIV3Schema`` becomes a
JSON Schema (draft 2020-12) that rejects unknown fields, as the API server's
strict field validation does. Files are parsed only when a document needs them:
a RayCluster does not pay for the 2 MB KServe CRD.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit import paths
from kit.errors import KitError
from kit.paths import REPO_ROOT

CRD_DIR_ENV = "KIT_CRD_DIR"

SHARED_CRD_DIR = REPO_ROOT.parent / "shared" / "crds"
#: Where ``python -m kit crds fetch`` / ``ensure`` put the files in a writable checkout (``make clean`` removes it).
FETCHED_CRD_DIR = REPO_ROOT / "build" / "crds"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Top-level ``metadata`` of every custom resource: the API server checks it as ObjectMeta.
OBJECT_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": "string"},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "selfLink": {"type": "string"},
    },
    "additionalProperties": False,
}

# OpenAPI v3 keywords that mean the same in JSON Schema and are copied as they are.
_COPIED_KEYWORDS = frozenset({
    "type", "required", "enum", "format", "pattern", "default", "minimum", "maximum",
    "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "multipleOf",
})
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


class CRDDirNotFoundError(KitError, FileNotFoundError):
    """No directory with CRD files: the message names every place tried, ``fix`` how to get them."""


def fetch_fix() -> str:
    """How to get the CRD files: download them, or point $KIT_CRD_DIR at a copy."""
    return (f"online, run `make crds` (or `python -m kit crds fetch`): it downloads the pinned files to "
            f"{download_dir()} and checks each one's SHA-256; offline, {copy_fix()}")


def copy_fix() -> str:
    """Without a network: copy the files by hand and point ``$KIT_CRD_DIR`` at them."""
    return ("copy the files from a machine that has them (a checkout's ../shared/crds or build/crds; "
            f"`python -m kit crds urls` lists each URL and SHA-256) into {fetched_dir()}, or into any directory "
            f"and set {CRD_DIR_ENV} to it")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cloud-native-ai-kit/crds``, by default under ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cloud-native-ai-kit" / "crds"


def fetched_dir() -> Path:
    """Where downloaded CRDs live: ``build/crds`` in a writable checkout, else the user cache."""
    return FETCHED_CRD_DIR if os.access(REPO_ROOT, os.W_OK) else user_cache_dir()


def download_dir() -> Path:
    """Where ``python -m kit crds fetch`` writes: ``$KIT_CRD_DIR`` when set (the lookup reads only there), else
    :func:`fetched_dir`."""
    named = os.environ.get(CRD_DIR_ENV)
    return Path(named).expanduser() if named else fetched_dir()


def candidate_dirs() -> list[tuple[str, Path]]:
    """The places searched for CRDs, in order, each with where it comes from."""
    places: list[tuple[str, Path]] = []
    if os.environ.get(CRD_DIR_ENV):
        places.append((f"${CRD_DIR_ENV}", Path(os.environ[CRD_DIR_ENV]).expanduser()))
    places.append(("next to the repository", SHARED_CRD_DIR))
    places.append(("downloaded by `python -m kit crds fetch`", fetched_dir()))
    return places


def origin_of(directory: Path) -> str:
    """Where ``directory`` sits in :func:`candidate_dirs` (``"given"`` when it is none of them)."""
    return next((origin for origin, path in candidate_dirs() if path == directory), "given")


def find_crd_dir() -> Path:
    """The first candidate directory that holds ``*.yaml`` files, or :class:`CRDDirNotFoundError`.

    ``$KIT_CRD_DIR``, when set, is the only place searched: a wrong value is an
    error rather than a silent fall back to other CRDs.
    """
    places = candidate_dirs()
    if os.environ.get(CRD_DIR_ENV):
        places = places[:1]
    for _, directory in places:
        if directory.is_dir() and any(directory.glob("*.yaml")):
            return directory
    tried = "\n".join(f"  - {path} ({origin})" for origin, path in places)
    raise CRDDirNotFoundError("no CRD files (*.yaml) found; tried:\n" + tried, fix=fetch_fix())


def describe() -> str:
    """One line for learners: where the CRD schemas come from, or exactly how to get them."""
    try:
        directory = find_crd_dir()
    except CRDDirNotFoundError as error:
        return f"CRD schemas: MISSING, so custom resources cannot be validated.\nFix: {error.fix}"
    count = len(list(directory.glob("*.yaml")))
    return f"CRD schemas: {count} files in {paths.display(directory)} ({origin_of(directory)})"


# --------------------------------------------------------------------------- OpenAPI -> JSON Schema


def to_json_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Convert one OpenAPI v3 (Kubernetes structural) schema into a strict JSON Schema.

    - an object schema without ``x-kubernetes-preserve-unknown-fields: true`` and
      without ``additionalProperties`` rejects fields it does not declare (the API
      server prunes or, with strict field validation, rejects them);
    - ``x-kubernetes-int-or-string`` accepts an integer or a string;
    - ``nullable: true`` also accepts null;
    - ``x-kubernetes-embedded-resource`` objects accept apiVersion, kind and metadata;
    - ``x-kubernetes-list-type: set`` requires unique items;
    - CEL rules (``x-kubernetes-validations``), descriptions and the other
      OpenAPI-only keywords are dropped: only the API server evaluates CEL.
    """
    out: dict[str, Any] = {key: value for key, value in openapi.items() if key in _COPIED_KEYWORDS}
    if openapi.get("exclusiveMinimum") is True and "minimum" in out:
        out["exclusiveMinimum"] = out.pop("minimum")
    if openapi.get("exclusiveMaximum") is True and "maximum" in out:
        out["exclusiveMaximum"] = out.pop("maximum")
    if isinstance(openapi.get("properties"), dict):
        out["properties"] = {name: to_json_schema(sub) for name, sub in openapi["properties"].items()}
    if isinstance(openapi.get("items"), dict):
        out["items"] = to_json_schema(openapi["items"])
    additional = openapi.get("additionalProperties")
    if isinstance(additional, dict):
        out["additionalProperties"] = to_json_schema(additional)
    elif isinstance(additional, bool):
        out["additionalProperties"] = additional
    if isinstance(openapi.get("not"), dict):
        out["not"] = to_json_schema(openapi["not"])

    int_or_string = openapi.get("x-kubernetes-int-or-string") is True
    for keyword in _SUBSCHEMA_LISTS:
        branches = openapi.get(keyword)
        if not isinstance(branches, list):
            continue
        if int_or_string and all(set(branch) <= {"type"} for branch in branches):
            continue  # the usual anyOf [integer, string]: the type list below says it
        out[keyword] = [to_json_schema(branch) for branch in branches]
    if int_or_string:
        out["type"] = ["integer", "string"]

    if openapi.get("x-kubernetes-embedded-resource") is True:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if openapi.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True

    is_object = out.get("type") == "object" or "properties" in out
    preserves_unknown = openapi.get("x-kubernetes-preserve-unknown-fields") is True
    if is_object and not preserves_unknown and "additionalProperties" not in out:
        out["additionalProperties"] = False

    if openapi.get("nullable") is True:
        _accept_null(out)
    return out


def _accept_null(schema: dict[str, Any]) -> None:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]


def resource_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of a whole custom resource: the version's schema plus ObjectMeta and required fields."""
    schema = to_json_schema(openapi)
    props = schema.setdefault("properties", {})
    props["metadata"] = OBJECT_META_SCHEMA
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# --------------------------------------------------------------------------- index


@dataclass(frozen=True)
class CRDFile:
    """One CRD found in a file: its API group and kind (versions are read when needed)."""

    path: Path
    group: str
    kind: str


@dataclass
class CRDIndex:
    """All CRDs of one directory, by group and kind; schemas are parsed on first use."""

    directory: Path
    files: dict[tuple[str, str], CRDFile] = field(default_factory=dict)
    _schemas: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)

    def groups(self) -> set[str]:
        return {group for group, _ in self.files}

    def kinds(self, group: str) -> list[str]:
        return sorted(kind for g, kind in self.files if g == group)

    def served_versions(self, group: str, kind: str) -> list[str]:
        """Served versions of ``group``/``kind`` (empty when no CRD defines it)."""
        return sorted(self._versions(group, kind))

    def openapi_schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """The CRD's ``openAPIV3Schema`` for ``apiVersion``/``kind``, None when not served."""
        group, _, version = api_version.rpartition("/")
        return self._versions(group, kind).get(version)

    def json_schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """Strict JSON Schema for ``apiVersion``/``kind``, None when no served CRD version matches."""
        openapi = self.openapi_schema(api_version, kind)
        return None if openapi is None else _converted(self.directory, api_version, kind, openapi)

    def _versions(self, group: str, kind: str) -> dict[str, dict[str, Any]]:
        key = (group, kind)
        if key not in self._schemas:
            crd_file = self.files.get(key)
            found: dict[str, dict[str, Any]] = {}
            if crd_file is not None:
                for doc in _crd_documents(crd_file.path):
                    spec = doc.get("spec") or {}
                    if spec.get("group") == group and (spec.get("names") or {}).get("kind") == kind:
                        found.update(_served_schemas(spec))
            self._schemas[key] = found
        return self._schemas[key]


def _served_schemas(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    schemas = {}
    for version in spec.get("versions") or []:
        schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
        if version.get("served") and isinstance(schema, dict):
            schemas[version["name"]] = schema
    return schemas


_converted_cache: dict[tuple[str, str, str], dict[str, Any]] = {}


def _converted(directory: Path, api_version: str, kind: str, openapi: dict[str, Any]) -> dict[str, Any]:
    key = (str(directory), api_version, kind)
    if key not in _converted_cache:
        _converted_cache[key] = resource_schema(openapi)
    return _converted_cache[key]


def _crd_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        docs = list(yaml.load_all(stream, Loader=_Loader))
    return [doc for doc in docs if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]


_VERSIONS_KEY = re.compile(r"^  versions:", re.MULTILINE)
_DOC_MARKER = re.compile(r"^---", re.MULTILINE)


def _scan_headers(path: Path) -> Iterator[CRDFile]:
    """The CRDs a file defines, read from the part before ``spec.versions`` when that is possible.

    controller-gen writes ``versions`` last, so the head of the file has apiVersion,
    kind, group and names: parsing it alone skips megabytes of schema. Files that do
    not look like that (several documents, another layout) are parsed whole.
    """
    text = path.read_text(encoding="utf-8")
    cut = _VERSIONS_KEY.search(text)
    if cut and len(_DOC_MARKER.findall(text)) <= 1:
        try:
            head = yaml.load(text[: cut.start()], Loader=_Loader)
        except yaml.YAMLError:
            head = None
        if isinstance(head, dict):
            spec = head.get("spec") or {}
            if head.get("kind") != "CustomResourceDefinition":
                return
            group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
            if group and kind:
                yield CRDFile(path, group, kind)
                return
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            spec = doc.get("spec") or {}
            group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
            if group and kind:
                yield CRDFile(path, group, kind)


@functools.lru_cache(maxsize=8)
def _index_of(directory: str) -> CRDIndex:
    index = CRDIndex(Path(directory))
    for path in sorted(Path(directory).glob("*.yaml")):
        for crd_file in _scan_headers(path):
            index.files[(crd_file.group, crd_file.kind)] = crd_file
    return index


def load_index(directory: Path | str | None = None) -> CRDIndex:
    """The CRD index of ``directory`` (default: :func:`find_crd_dir`); cached per directory.

    Raises :class:`CRDDirNotFoundError` when the directory holds no ``*.yaml`` file.
    """
    chosen = Path(directory).expanduser() if directory is not None else find_crd_dir()
    if not chosen.is_dir() or not any(chosen.glob("*.yaml")):
        raise CRDDirNotFoundError(f"no CRD files (*.yaml) in {chosen}", fix=fetch_fix())
    return _index_of(str(chosen.resolve()))
