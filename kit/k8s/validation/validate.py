"""Check manifests offline, strictly, before a cluster sees them (``python -m kit validate``).

Every document must pass, and nothing passes silently:

- custom resources (KubeRay, Kubeflow Trainer, training-operator, Kueue, KServe)
  against the upstream CRD schemas, unknown fields rejected, and built-in kinds against
  Kubernetes :data:`kit.versions.KUBERNETES_VERSION` (:mod:`~kit.k8s.validation.schema`);
- an empty file, a document without apiVersion, kind or metadata.name, a kind no
  schema knows and an apiVersion that is not served are errors;
- the operators' admission rules the schemas cannot express, as their webhooks and controllers
  enforce them at the pinned tags (:mod:`~kit.k8s.validation.admission`), and the kit's pins:
  images, rayVersion, the Kueue queue label, no resource defined twice (:mod:`~kit.k8s.validation.rules`);
- the kit's policy (:mod:`~kit.k8s.validation.policy`), unless ``policy=False`` / ``--no-policy``.

Files and kustomize builds are read by :mod:`~kit.k8s.validation.loading`; ``validate_paths``
checks all files given together, so a directory holding the LocalQueue and the jobs obeys
the queue label rule's second form.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kit.k8s.validation import admission, crds
from kit.k8s.validation.loading import Document, load_paths
from kit.k8s.validation.policy import check_policy
from kit.k8s.validation.problems import PathParts, Problem, format_path, type_name
from kit.k8s.validation.rules import duplicate_problems, queue_label_problems, semantic_problems
from kit.k8s.validation.schema import metadata_problems, schema_problems


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
    problems += admission.set_problems(documents)
    problems += queue_label_problems(documents, queue)
    problems += duplicate_problems(documents)
    return problems


def check_document(document: Document, index: crds.CRDIndex) -> list[Problem]:
    """Shape, schema and semantic problems of one document."""
    body = document.body
    if not isinstance(body, dict):
        return [document.problem("", f"a document must be a mapping, got {type_name(body)}")]
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


def summary(problem_count: int, resources: int, files: int) -> str:
    """``N problems in R resources in F files``, or ``...: all valid``."""
    counted = f"{resources} resource{'s' * (resources != 1)} in {files} file{'s' * (files != 1)}"
    if not problem_count:
        return f"{counted}: all valid"
    return f"{problem_count} problem{'s' * (problem_count != 1)} in {counted}"
