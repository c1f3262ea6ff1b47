"""``python -m kit validate``: check manifests offline, strictly, before a cluster sees them.

Every document must pass, and nothing passes silently:

- custom resources (KubeRay, Kubeflow Trainer, training-operator, Kueue, KServe)
  against the upstream CRD schemas, unknown fields rejected (:mod:`kit.k8s.validation.crds`);
- built-in kinds against Kubernetes :data:`KUBERNETES_VERSION` with the
  ``kubernetes-validate`` library in strict mode (it stops at the first error of a resource);
- an empty file, a document without apiVersion, kind or metadata.name, a kind no
  schema knows and an apiVersion that is not served are errors;
- rules the schemas cannot express: RayJob ``submissionMode`` and
  ``ttlSecondsAfterFinished``, worker group replica bounds, the Kueue queue label,
  images pinned (no ``:latest``, no missing tag) and Ray images at the kit's Ray
  version, no resource defined twice;
- the kit's policy (:mod:`kit.k8s.validation.policy`), unless ``policy=False`` / ``--no-policy``.

**Queue label rule.** The workloads Kueue admits (RayJob, RayCluster, RayService,
TrainJob, PyTorchJob) must carry the label ``kueue.x-k8s.io/queue-name``:

- when ``queue=NAME`` (``--queue NAME``) is given: on every such workload, equal to NAME;
- otherwise, when the documents checked together include a LocalQueue: on every such
  workload, naming one of those LocalQueues (in the same namespace when both set one);
- otherwise the label is not required (the queue may already exist on the cluster).

``validate_paths`` checks all files given together, so a directory holding the
LocalQueue and the jobs obeys the second form.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kit.k8s import traverse
from kit.k8s.builders.kueue import QUEUE_LABEL
from kit.k8s.validation import crds
from kit.k8s.validation.policy import check_policy
from kit.k8s.validation.problems import PathParts, Problem, format_path, resource_name
from kit.versions import IMAGES, RAY

#: Newest Kubernetes version kubernetes-validate 1.37.0 ships schemas for: built-in kinds are checked
#: against it (tests/test_validate.py fails when the library ships a newer one).
KUBERNETES_VERSION = "1.37.0"

#: RayJob ``spec.submissionMode`` values in KubeRay v1.7.0. The CRD has no enum and no
#: descriptions (KubeRay strips them), so the set comes from ``JobSubmissionMode`` in
#: ray-operator/apis/ray/v1/rayjob_types.go (SidecarMode since v1.5.0) and the Ray docs.
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")

#: (API group, kind) of the workloads Kueue admits in the kit.
QUEUED_KINDS = frozenset({
    ("ray.io", "RayJob"), ("ray.io", "RayCluster"), ("ray.io", "RayService"),
    ("trainer.kubeflow.org", "TrainJob"), ("kubeflow.org", "PyTorchJob"),
})



class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe YAML loader that refuses duplicate keys: PyYAML keeps the last silently, kubectl refuses."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeConstructor reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the first value would be silently lost)",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

_RAY_IMAGE_REPO = re.compile(r"(^|/)rayproject/ray(-[a-z]+)?$")
_RAY_TAG = re.compile(rf"^{re.escape(RAY)}(-|$)")
#: The kit's own image (any registry): its tag names the Ray version it was built on (versions.IMAGES["kit"]).
_KIT_IMAGE_REPO = re.compile(r"(^|/)kit$")
_KIT_TAG_RAY = re.compile(r"-ray(?P<ray>[0-9][^-]*)-")
_MAX_LISTED_FIELDS = 25


@dataclass(frozen=True)
class Document:
    """One YAML document and where it came from (file and position in the file)."""

    source: str
    index: int
    body: Any

    @property
    def resource(self) -> str:
        return resource_name(self.body)

    def problem(self, path: PathParts | str, message: str) -> Problem:
        where = path if isinstance(path, str) else format_path(path)
        return Problem(self.source, self.resource, where, message)


@dataclass
class Loaded:
    """Files read from the paths given, their documents, and the problems met reading them."""

    files: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

KIND_API = "kind.x-k8s.io/"


# --------------------------------------------------------------------------- reading files


def manifest_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.yaml``/``*.yml`` files under a directory, sorted."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load_paths(paths: Iterable[Path | str]) -> Loaded:
    """Read every manifest file under ``paths``: documents, plus problems for what cannot be read."""
    loaded = Loaded()
    for given in map(Path, paths):
        if not given.exists():
            loaded.problems.append(Problem(str(given), "-", "", "no such file or directory"))
            continue
        files = manifest_files(given)
        if not files:
            loaded.problems.append(Problem(str(given), "-", "", "no *.yaml or *.yml files in this directory"))
        for path in files:
            loaded.files.append(str(path))
            documents, problems = load_file(path)
            loaded.documents += documents
            loaded.problems += problems
    return loaded


def kustomize_roots(paths: Iterable[Path | str]) -> list[Path]:
    """Directories under ``paths`` that hold a ``kustomization.yaml``: each is built and checked as one set."""
    roots = {k.parent for given in map(Path, paths) if given.is_dir() for k in given.rglob("kustomization.yaml")}
    return sorted(roots)


def load_kustomization(root: Path, kubectl: str = "kubectl") -> Loaded:
    """``kubectl kustomize root``, parsed: what the cluster would receive from this directory."""
    loaded = Loaded(files=[str(root / "kustomization.yaml")])
    source = f"{root} (kustomize build)"
    if not shutil.which(kubectl):
        loaded.problems.append(Problem(source, "-", "", "kubectl is needed to build a kustomization"))
        return loaded
    out = subprocess.run([kubectl, "kustomize", str(root)], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=120)
    if out.returncode:
        loaded.problems.append(Problem(source, "-", "", "kustomize build failed: " + out.stderr.strip()))
        return loaded
    bodies = [b for b in yaml.safe_load_all(out.stdout) if b is not None]
    loaded.documents = [Document(source, i, body) for i, body in enumerate(bodies)]
    return loaded


def _is_kind_config(document: Document) -> bool:
    return isinstance(document.body, dict) and str(document.body.get("apiVersion", "")).startswith(KIND_API)


def load_sets(paths: Iterable[Path | str]) -> tuple[list[Loaded], int]:
    """The sets checked together: each kustomization built, then the files outside any kustomization.

    kind's own cluster config (``kind.x-k8s.io``) is not a Kubernetes resource: it is counted and
    left to ``kind``. Returns the sets and how many such configs were set aside.
    """
    paths = [Path(p) for p in paths]
    roots = kustomize_roots(paths)
    sets = [load_kustomization(root) for root in roots]
    loose = Loaded()
    for given in paths:
        for path in manifest_files(given) if given.exists() else [given]:
            if any(root == path.parent or root in path.parents for root in roots):
                continue  # part of a kustomization: checked as built
            single = load_paths([path])
            loose.files += single.files
            loose.documents += single.documents
            loose.problems += single.problems
    skipped = sum(map(_is_kind_config, loose.documents))
    loose.documents = [d for d in loose.documents if not _is_kind_config(d)]
    return [*sets, loose], skipped


def load_file(path: Path) -> tuple[list[Document], list[Problem]]:
    """The non-empty YAML documents of one file; an empty file or bad YAML is a problem."""
    try:
        with path.open(encoding="utf-8") as stream:
            bodies = list(yaml.load_all(stream, Loader=StrictLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        return [], [Problem(str(path), "-", "", "not valid YAML: " + " ".join(str(error).split()))]
    documents = [Document(str(path), i, body) for i, body in enumerate(bodies) if body is not None]
    if not documents:
        return [], [Problem(str(path), "-", "", "empty file: no YAML document to validate")]
    return documents, []


# --------------------------------------------------------------------------- public entry points


def validate_documents(docs: Iterable[Any], source: str = "<documents>", *, queue: str | None = None,
                       policy: bool = True, crd_dir: Path | str | None = None) -> list[Problem]:
    """Problems of documents (parsed YAML: dicts) checked together; an empty set is a problem."""
    documents = [Document(source, i, body) for i, body in enumerate(docs) if body is not None]
    if not documents:
        return [Problem(source, "-", "", "no documents to validate")]
    return check(documents, queue=queue, policy=policy, crd_dir=crd_dir)


def validate_paths(paths: Iterable[Path | str], *, queue: str | None = None, policy: bool = True,
                   crd_dir: Path | str | None = None) -> list[Problem]:
    """Problems of every manifest file under ``paths`` (files or directories), checked together."""
    loaded = load_paths(paths)
    return loaded.problems + check(loaded.documents, queue=queue, policy=policy, crd_dir=crd_dir)


def check(documents: Sequence[Document], *, queue: str | None = None, policy: bool = True,
          crd_dir: Path | str | None = None) -> list[Problem]:
    """All checks on documents that belong together (one set for the cross-document rules).

    Raises :class:`kit.k8s.validation.crds.CRDDirNotFoundError` when no CRD directory is found.
    """
    index = crds.load_index(crd_dir)
    problems: list[Problem] = []
    for document in documents:
        problems += check_document(document, index)
        if policy and isinstance(document.body, dict):
            problems += check_policy([document.body], document.source)
    problems += queue_label_problems(documents, queue)
    problems += duplicate_problems(documents)
    return problems


def check_document(document: Document, index: crds.CRDIndex) -> list[Problem]:
    """Shape, schema and semantic problems of one document."""
    body = document.body
    if not isinstance(body, dict):
        return [document.problem("", f"a document must be a mapping, got {_type_name(body)}")]
    found: list[tuple[PathParts, str]] = []
    for key in ("apiVersion", "kind"):
        if not isinstance(body.get(key), str) or not body[key]:
            found.append(((key,), f"missing required field {key!r} (every resource has apiVersion and kind)"))
    if found:
        return [document.problem(path, message) for path, message in found]
    found += metadata_problems(body)
    found += schema_problems(body, index)
    found += semantic_problems(body)
    return [document.problem(path, message) for path, message in sorted(found, key=_path_order)]


def _path_order(item: tuple[PathParts, str]) -> tuple[str, str]:
    return format_path(item[0]), item[1]


# --------------------------------------------------------------------------- schemas


def metadata_problems(body: dict[str, Any]) -> list[tuple[PathParts, str]]:
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return [(("metadata",), "missing required field 'metadata' (with at least a name)")]
    if not metadata.get("name") and not metadata.get("generateName"):
        return [(("metadata", "name"), "missing required field 'name' (or generateName)")]
    return []


def schema_problems(body: dict[str, Any], index: crds.CRDIndex) -> list[tuple[PathParts, str]]:
    """Problems against the CRD schema (custom kinds) or Kubernetes' own schema (built-in kinds)."""
    group = body["apiVersion"].rpartition("/")[0]
    if group in index.groups():
        return _custom_resource_problems(body, index, group)
    return _builtin_problems(body)


def _custom_resource_problems(body: dict[str, Any], index: crds.CRDIndex,
                              group: str) -> list[tuple[PathParts, str]]:
    api_version, kind = body["apiVersion"], body["kind"]
    kinds = index.kinds(group)
    if kind not in kinds:
        return [(("kind",), f"unknown kind {kind!r}: the CRDs of group {group} define {', '.join(kinds)}")]
    schema = index.json_schema(api_version, kind)
    if schema is None:
        served = ", ".join(f"{group}/{v}" for v in index.served_versions(group, kind))
        return [(("apiVersion",), f"unknown apiVersion {api_version!r} for {kind}: the CRD serves {served}")]
    validator = _validator(index, api_version, kind, schema)
    found: list[tuple[PathParts, str]] = []
    for error in validator.iter_errors(body):
        found += describe_error(error)
    return found


_validators: dict[tuple[str, str, str], jsonschema.protocols.Validator] = {}


def _validator(index: crds.CRDIndex, api_version: str, kind: str,
               schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    key = (str(index.directory), api_version, kind)
    if key not in _validators:
        cls = jsonschema.Draft202012Validator
        _validators[key] = cls(schema, format_checker=_format_checker())
    return _validators[key]


def _format_checker() -> jsonschema.FormatChecker:
    """Draft 2020-12 formats plus the OpenAPI integer formats the CRDs use (int32, int64)."""
    checker = jsonschema.FormatChecker()
    checker.checkers = dict(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
    for name, bits in (("int32", 32), ("int64", 64)):
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        checker.checks(name)(lambda value, low=low, high=high: not _ints(value) or low <= value <= high)
    return checker


def _builtin_problems(body: dict[str, Any]) -> list[tuple[PathParts, str]]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return describe_error(error)
    except kubernetes_validate.SchemaNotFoundError:
        return [_unknown_builtin(body["apiVersion"], body["kind"])]
    return []


def _unknown_builtin(api_version: str, kind: str) -> tuple[PathParts, str]:
    known = builtin_api_versions(kind)
    if known:
        return (("apiVersion",), f"unknown apiVersion {api_version!r} for {kind}: Kubernetes "
                                 f"{KUBERNETES_VERSION} serves it as {', '.join(known)}")
    return (("kind",), f"unknown kind {kind!r} in apiVersion {api_version!r}: not a Kubernetes "
                       f"{KUBERNETES_VERSION} kind, and no CRD defines it")


def builtin_api_versions(kind: str) -> list[str]:
    """apiVersions under which Kubernetes :data:`KUBERNETES_VERSION` defines ``kind``.

    Read from the schema files kubernetes-validate ships; used only to explain an error.
    """
    folder = (importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema"
              / f"v{KUBERNETES_VERSION}-local-strict")
    versions: set[str] = set()
    for entry in folder.iterdir():
        if not entry.name.startswith(f"{kind.lower()}-"):
            continue
        schema = json.loads(entry.read_text(encoding="utf-8"))
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        for gvk in gvks:
            if gvk.get("kind") == kind:
                group = gvk.get("group")
                versions.add(f"{group}/{gvk['version']}" if group else gvk["version"])
        enum = ((schema.get("properties") or {}).get("apiVersion") or {}).get("enum") or []
        kind_enum = ((schema.get("properties") or {}).get("kind") or {}).get("enum") or []
        if kind in kind_enum:
            versions.update(enum)
    return sorted(versions)


def describe_error(error: jsonschema.ValidationError) -> list[tuple[PathParts, str]]:
    """A JSON Schema error as (field path, what was expected), one per unknown or missing field."""
    path: PathParts = tuple(error.absolute_path)
    instance, value = error.instance, error.validator_value
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        declared = list((error.schema.get("properties") or {}).keys())
        pattern_props = error.schema.get("patternProperties") or {}
        unknown = [k for k in instance if k not in declared
                   and not any(re.search(p, str(k)) for p in pattern_props)]
        return [((*path, str(k)), _unknown_field_message(str(k), declared)) for k in unknown]
    if error.validator == "required" and isinstance(instance, dict):
        return [((*path, name), f"missing required field {name!r}") for name in value if name not in instance]
    if error.validator == "type":
        return [(path, f"expected {_or_list(value)}, got {_type_name(instance)} {_short(instance)}")]
    if error.validator == "enum":
        return [(path, f"expected one of {', '.join(map(repr, value))}; got {_short(instance)}")]
    if error.validator == "format":
        return [(path, f"{_short(instance)} is not a valid {value}")]
    if error.validator == "pattern":
        return [(path, f"{_short(instance)} does not match the required pattern {value}")]
    return [(path, error.message)]


def _unknown_field_message(name: str, declared: list[str]) -> str:
    if not declared:
        return f"unknown field {name!r}: this object declares no fields (the API server would drop it)"
    allowed = ", ".join(sorted(declared)[:_MAX_LISTED_FIELDS])
    more = ", ..." if len(declared) > _MAX_LISTED_FIELDS else ""
    return f"unknown field {name!r}; expected one of: {allowed}{more}"


def _or_list(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"


def _type_name(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
             dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- semantic rules


def semantic_problems(body: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Rules the schemas cannot express, on one document."""
    found = image_problems(body)
    for base, cluster in traverse.ray_cluster_specs(body):
        found += ray_cluster_problems(base, cluster)
    if body.get("kind") == "RayJob" and isinstance(body.get("spec"), dict):
        found += rayjob_problems(body["spec"])
    return found


def rayjob_problems(spec: dict[str, Any]) -> list[tuple[PathParts, str]]:
    found: list[tuple[PathParts, str]] = []
    mode = spec.get("submissionMode")
    if mode is not None and mode not in SUBMISSION_MODES:
        found.append((("spec", "submissionMode"),
                      f"expected one of {', '.join(SUBMISSION_MODES)}; got {_short(mode)}"))
    if "ttlSecondsAfterFinished" in spec and spec.get("shutdownAfterJobFinishes") is not True:
        found.append((("spec", "ttlSecondsAfterFinished"),
                      "ttlSecondsAfterFinished only takes effect with shutdownAfterJobFinishes: true"))
    return found


def ray_cluster_problems(base: PathParts, cluster: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Worker group replica bounds and ``rayVersion`` of one RayCluster spec."""
    found: list[tuple[PathParts, str]] = []
    version = cluster.get("rayVersion")
    if version is not None and str(version) != RAY:
        found.append(((*base, "rayVersion"),
                      f"rayVersion {_short(version)} does not match the kit's Ray version {RAY} "
                      "(kit.versions.RAY)"))
    groups = cluster.get("workerGroupSpecs")
    for i, group in enumerate(groups if isinstance(groups, list) else []):
        if not isinstance(group, dict):
            continue
        path = (*base, "workerGroupSpecs", i)
        low, high, replicas = group.get("minReplicas"), group.get("maxReplicas"), group.get("replicas")
        if _ints(low, high) and low > high:
            found.append(((*path, "minReplicas"), f"minReplicas ({low}) must be <= maxReplicas ({high})"))
        elif _ints(low, high, replicas) and not low <= replicas <= high:
            found.append(((*path, "replicas"),
                          f"replicas ({replicas}) must be between minReplicas ({low}) "
                          f"and maxReplicas ({high})"))
    return found


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry/repo:tag@digest`` -> (repository, tag or None, digest or None)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:], digest or None
    return name, None, digest or None


def image_problems(body: dict[str, Any]) -> list[tuple[PathParts, str]]:
    """Images pinned (a tag other than ``latest``, or a digest); Ray images at the kit's Ray version."""
    found: list[tuple[PathParts, str]] = []
    for path, image in traverse.images(body):
        repository, tag, digest = split_image(image)
        if _RAY_IMAGE_REPO.search(repository):
            if tag is None or not _RAY_TAG.match(tag):
                found.append((path, f"Ray image {image!r} does not match the kit's Ray version {RAY}: "
                                    f"use the kit's image {IMAGES['kit']} (Ray, torch and kit) or Ray's own "
                                    f"{IMAGES['ray']} (kit.versions.IMAGES)"))
        elif tag == "latest":
            found.append((path, f"image {image!r} uses the :latest tag; pin a version tag or digest"))
        elif _KIT_IMAGE_REPO.search(repository) and tag is not None:
            match = _KIT_TAG_RAY.search(tag)
            if match is None or match["ray"] != RAY:
                found.append((path, f"kit image {image!r} was not built on Ray {RAY}: its tag must name ray{RAY} "
                                    f"like {IMAGES['kit']} (`make image` builds it)"))
        elif tag is None and digest is None:
            found.append((path, f"image {image!r} has no tag (that means :latest); "
                                "pin a version tag or digest"))
    return found


# --------------------------------------------------------------------------- cross-document rules


def _namespace(body: dict[str, Any]) -> str | None:
    metadata = body.get("metadata")
    return metadata.get("namespace") if isinstance(metadata, dict) else None


def _queued(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("apiVersion"), str):
        return False
    return (body["apiVersion"].rpartition("/")[0], body.get("kind")) in QUEUED_KINDS


def queue_label_problems(documents: Sequence[Document], queue: str | None = None) -> list[Problem]:
    """The queue label rule of the module docstring."""
    local_queues = [d.body for d in documents
                    if isinstance(d.body, dict) and d.body.get("kind") == "LocalQueue"
                    and str(d.body.get("apiVersion", "")).startswith("kueue.x-k8s.io/")]
    if queue is None and not local_queues:
        return []
    queue_names = sorted({str((q.get("metadata") or {}).get("name")) for q in local_queues})
    problems = []
    for document in documents:
        if not _queued(document.body):
            continue
        labels = (document.body.get("metadata") or {}).get("labels") or {}
        path = ("metadata", "labels", QUEUE_LABEL)
        value = labels.get(QUEUE_LABEL) if isinstance(labels, dict) else None
        expected = repr(queue) if queue is not None else "one of the LocalQueues " + ", ".join(queue_names)
        if value is None:
            problems.append(document.problem(path, f"missing label {QUEUE_LABEL} (expected {expected}): "
                                                   "without it Kueue does not admit the workload"))
        elif queue is not None and value != queue:
            problems.append(document.problem(path, f"queue label is {value!r}, expected {queue!r}"))
        elif queue is None and not _names_local_queue(document.body, value, local_queues):
            problems.append(document.problem(path, f"queue label {value!r} names no LocalQueue in these "
                                                   f"manifests (expected {expected}, same namespace)"))
    return problems


def _names_local_queue(body: dict[str, Any], value: str, local_queues: list[dict[str, Any]]) -> bool:
    namespace = _namespace(body)
    for queue in local_queues:
        queue_namespace = _namespace(queue)
        same_namespace = namespace is None or queue_namespace is None or namespace == queue_namespace
        if (queue.get("metadata") or {}).get("name") == value and same_namespace:
            return True
    return False


def duplicate_problems(documents: Sequence[Document]) -> list[Problem]:
    """The same apiVersion group, kind, namespace and name defined twice: the second silently wins."""
    seen: dict[tuple[str, str, str, str], Document] = {}
    problems = []
    for document in documents:
        body = document.body
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            continue
        name = body["metadata"].get("name")
        if not name:
            continue
        key = (str(body.get("apiVersion", "")).rpartition("/")[0], str(body.get("kind")),
               str(_namespace(body) or ""), str(name))
        if key in seen:
            first = seen[key]
            problems.append(document.problem("metadata.name", f"defined twice: also in {first.source} "
                                                              f"(document {first.index + 1})"))
        else:
            seen[key] = document
    return problems


# --------------------------------------------------------------------------- server dry-run

Runner = Callable[..., subprocess.CompletedProcess]


def server_dry_run(paths: Sequence[str], *, kubectl: str = "kubectl", run: Runner = subprocess.run,
                   timeout: float = 60.0) -> list[Problem]:
    """``kubectl apply --dry-run=server`` on each path; one problem when no cluster is reachable.

    The API server adds what offline checks cannot: CEL rules, admission webhooks
    and the cluster's own Pod Security level.
    """
    if shutil.which(kubectl) is None:
        return [Problem("-", "-", "", f"server dry-run: {kubectl} not found on PATH")]
    try:
        probe = run([kubectl, "version", "-o", "json", "--request-timeout=5s"],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        probe = None
    if probe is None or probe.returncode != 0 or '"serverVersion"' not in (probe.stdout or ""):
        detail = _last_line(probe.stderr if probe is not None else "") or "timed out"
        return [Problem("-", "-", "", f"server dry-run: no cluster reachable ({kubectl}: {detail})")]
    problems = []
    for path in paths:
        command = [kubectl, "apply", "--dry-run=server", "-f", path]
        if Path(path).is_dir():
            command.append("--recursive")
        result = run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
            problems += [Problem(path, "-", "", f"server dry-run: {line}") for line in lines or ["failed"]]
    return problems


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------- command line

_FETCH_DEFAULT = "<user cache>"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kit validate",
        description="Validate Kubernetes manifests offline: CRD and Kubernetes schemas (strict), "
                    "the kit's rules and its restricted Pod Security policy.",
        epilog="exit status: 0 all valid, 1 problems found, 2 usage or setup error",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="manifest file or directory (*.yaml, *.yml)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument("--no-policy", action="store_true", help="skip the policy checks (kit.k8s.validation.policy)")
    p.add_argument("--queue", metavar="NAME",
                   help=f"require the label {QUEUE_LABEL}=NAME on queued workloads")
    p.add_argument("--server-dry-run", action="store_true",
                   help="also run kubectl apply --dry-run=server (needs a reachable cluster)")
    p.add_argument("--crd-dir", metavar="DIR", help=f"CRD directory (default: ${crds.CRD_DIR_ENV}, "
                                                     "../shared/crds, then the user cache)")
    p.add_argument("--fetch-crds", nargs="?", const=_FETCH_DEFAULT, metavar="DIR",
                   help="download the pinned CRD files (default: the user cache dir), then exit "
                        "unless PATHs are given")
    return p


def cli(argv: list[str]) -> int:
    """``python -m kit validate PATH... [--json] [--no-policy] [--queue NAME] [--server-dry-run]``."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help exits 0, a usage error 2
        return int(exit_.code or 0)
    if args.fetch_crds is not None:
        status = _fetch(None if args.fetch_crds == _FETCH_DEFAULT else args.fetch_crds)
        if status or not args.paths:
            return status
    if not args.paths:
        print("usage: python -m kit validate PATH... (files or directories; --help for options)",
              file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    sets, kind_configs = load_sets(args.paths)
    problems: list[Problem] = []
    try:
        for loaded in sets:
            problems += loaded.problems
            if loaded.documents:
                problems += check(loaded.documents, queue=args.queue, policy=not args.no_policy,
                                  crd_dir=args.crd_dir)
    except crds.CRDDirNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    if args.server_dry_run:
        problems += server_dry_run(args.paths)
    if kind_configs and not args.json:
        print(f"(set aside {kind_configs} kind cluster config(s): not Kubernetes resources)")
    resources = sum(len(s.documents) for s in sets)
    _report(problems, resources, sum(len(s.files) for s in sets), as_json=args.json)
    return 1 if problems else 0


def summary(problem_count: int, resources: int, files: int) -> str:
    counted = f"{resources} resource{'s' * (resources != 1)} in {files} file{'s' * (files != 1)}"
    if not problem_count:
        return f"{counted}: all valid"
    return f"{problem_count} problem{'s' * (problem_count != 1)} in {counted}"


def _report(problems: list[Problem], resources: int, files: int, *, as_json: bool) -> None:
    if as_json:
        report = {"files": files, "resources": resources, "valid": not problems,
                  "problems": [p.to_dict() for p in problems],
                  "summary": summary(len(problems), resources, files)}
        print(json.dumps(report, indent=2))
        return
    for problem in problems:
        print(problem)
    print(summary(len(problems), resources, files))


def _fetch(dest: str | None) -> int:
    try:
        written = crds.fetch(dest)
    except crds.CRDFetchError as error:
        print(f"fetch failed: {error}", file=sys.stderr)
        return 1
    print(f"downloaded {len(written)} files to {written[0].parent}")
    return 0
