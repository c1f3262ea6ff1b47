"""The upstream CRDs of the kit's operators, as strict JSON Schema.

The CRD files are data, not part of the kit: they are read from the first of

1. the directory named by ``$KIT_CRD_DIR``,
2. ``../shared/crds`` next to the repository (CI has it),
3. ``~/.cache/cloud-native-ai-kit/crds`` (``python -m kit validate --fetch-crds`` fills it),

that holds ``*.yaml`` files. Each served version's ``openAPIV3Schema`` becomes a
JSON Schema (draft 2020-12) that rejects unknown fields, as the API server's
strict field validation does. Files are parsed only when a document needs them:
a RayCluster does not pay for the 2 MB KServe CRD.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.errors import KitError
from kit.paths import REPO_ROOT
from kit.versions import CRD_SHA256, OPERATORS

CRD_DIR_ENV = "KIT_CRD_DIR"

SHARED_CRD_DIR = REPO_ROOT.parent / "shared" / "crds"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: (GitHub repo, operator in kit.versions.OPERATORS, upstream folder, files): where each CRD file comes from.
CRD_SOURCES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("ray-project/kuberay", "kuberay", "ray-operator/config/crd/bases/",
     ("ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml")),
    ("kubeflow/trainer", "kubeflow-trainer", "manifests/base/crds/",
     ("trainer.kubeflow.org_trainjobs.yaml", "trainer.kubeflow.org_trainingruntimes.yaml",
      "trainer.kubeflow.org_clustertrainingruntimes.yaml")),
    ("kubeflow/trainer", "training-operator", "manifests/base/crds/", ("kubeflow.org_pytorchjobs.yaml",)),
    ("kubernetes-sigs/kueue", "kueue", "config/components/crd/bases/",
     ("kueue.x-k8s.io_localqueues.yaml", "kueue.x-k8s.io_clusterqueues.yaml",
      "kueue.x-k8s.io_resourceflavors.yaml", "kueue.x-k8s.io_cohorts.yaml",
      "kueue.x-k8s.io_workloadpriorityclasses.yaml")),
    ("kserve/kserve", "kserve", "config/crd/full/",
     ("serving.kserve.io_inferenceservices.yaml", "serving.kserve.io_servingruntimes.yaml",
      "serving.kserve.io_clusterservingruntimes.yaml")),
    ("kserve/kserve", "kserve", "config/crd/full/llmisvc/", ("serving.kserve.io_llminferenceservices.yaml",)),
    ("prometheus-operator/prometheus-operator", "prometheus-operator", "example/prometheus-operator-crd/",
     ("monitoring.coreos.com_prometheusrules.yaml", "monitoring.coreos.com_servicemonitors.yaml",
      "monitoring.coreos.com_podmonitors.yaml")),
)
#: Files that are not CRDs but are fetched with them: local name -> (repo, operator, upstream path).
EXTRA_FILES: dict[str, tuple[str, str, str]] = {
    "runtime.torch-distributed.yaml": (
        "kubeflow/trainer", "kubeflow-trainer", "manifests/base/runtimes/torch_distributed.yaml"),
}

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


class CRDFetchError(KitError, RuntimeError):
    """Downloading the pinned CRD files failed (offline, GitHub unreachable, or a file not the pinned one)."""


def fetch_fix() -> str:
    """How to get the CRD files: download them, or point $KIT_CRD_DIR at a copy."""
    return (f"run `python -m kit validate --fetch-crds` (downloads them to {user_cache_dir()}), "
            f"or set {CRD_DIR_ENV} to a directory holding the files listed in shared/crds/README.md")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cloud-native-ai-kit/crds``, by default under ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cloud-native-ai-kit" / "crds"


def candidate_dirs() -> list[tuple[str, Path]]:
    """The places searched for CRDs, in order, each with where it comes from."""
    places: list[tuple[str, Path]] = []
    if os.environ.get(CRD_DIR_ENV):
        places.append((f"${CRD_DIR_ENV}", Path(os.environ[CRD_DIR_ENV]).expanduser()))
    places.append(("next to the repository", SHARED_CRD_DIR))
    places.append(("user cache", user_cache_dir()))
    return places


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
    origin = next((o for o, path in candidate_dirs() if path == directory), "")
    count = len(list(directory.glob("*.yaml")))
    return f"CRD schemas: {count} files in {directory} ({origin})"


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


# --------------------------------------------------------------------------- fetching


def crd_urls() -> dict[str, str]:
    """Local file name -> raw GitHub URL of the pinned upstream file (tags from kit.versions.OPERATORS)."""
    urls = {}
    for repo, operator, folder, names in CRD_SOURCES:
        for name in names:
            urls[name] = f"https://raw.githubusercontent.com/{repo}/{OPERATORS[operator]}/{folder}{name}"
    for name, (repo, operator, upstream_path) in EXTRA_FILES.items():
        urls[name] = f"https://raw.githubusercontent.com/{repo}/{OPERATORS[operator]}/{upstream_path}"
    return urls


Opener = Callable[..., Any]


def fetch(dest: Path | str | None = None, *, opener: Opener | None = None,
          timeout: float = 30.0) -> list[Path]:
    """Download the pinned CRD files into ``dest`` (default: the user cache dir); return their paths.

    Each file is written only after it downloaded completely and its SHA-256 matches the
    lock (:data:`kit.versions.CRD_SHA256`). Offline, it raises
    :class:`CRDFetchError` naming the URL and the alternatives.
    """
    target = Path(dest) if dest is not None else user_cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    opener = opener or urllib.request.urlopen
    written = []
    for name, url in crd_urls().items():
        try:
            with opener(url, timeout=timeout) as response:
                body = response.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CRDFetchError(
                f"could not download {url}: {reason}\nAre you offline? The CRD files come from GitHub.",
                fix=f"copy them from a machine that has them and set {CRD_DIR_ENV} to their directory",
            ) from error
        if not body.strip():
            raise CRDFetchError(f"downloaded an empty file from {url}", fix="try again; check your proxy")
        digest = hashlib.sha256(body).hexdigest()
        if digest != CRD_SHA256[name]:
            raise CRDFetchError(
                f"{url} is not the file the kit was tested with: SHA-256 {digest}, "
                f"expected {CRD_SHA256[name]} (kit.versions.CRD_SHA256). Nothing was written for it.",
                fix="check the pinned tag in kit.versions.OPERATORS, or report it if upstream rewrote the tag")
        partial = target / f".{name}.partial"
        partial.write_bytes(body)
        partial.replace(target / name)
        written.append(target / name)
    return written
