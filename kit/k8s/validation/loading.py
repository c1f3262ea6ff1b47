"""Reading manifests: files, directories and kustomize builds, as :class:`Document` sets checked together.

YAML is read strictly (a duplicate key is an error, as kubectl makes it); kind's own
cluster config (``kind.x-k8s.io``) is set aside, since it is not a Kubernetes resource.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.k8s.validation.problems import PathParts, Problem, format_path, resource_name


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
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


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


#: kind's own cluster config (not a Kubernetes resource: left to ``kind``).
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
    given_paths = [Path(p) for p in paths]
    roots = kustomize_roots(given_paths)
    sets = [load_kustomization(root) for root in roots]
    loose = Loaded()
    for given in given_paths:
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


