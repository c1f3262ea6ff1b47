"""Apply and delete with kubectl: server-side apply of built documents, files or kustomize directories,
with kubectl's errors turned into fixes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.versions import FIELD_MANAGER

#: How kubectl is run: ``subprocess.run`` or a fake with its signature (tests).
Runner = Callable[..., "subprocess.CompletedProcess[str]"]
#: What apply and delete take: a resource (dict), several, a file or a kustomize directory.
Applicable = str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]]


class ClusterError(KitError, RuntimeError):
    """kubectl failed, or no cluster is configured; the message has kubectl's output, ``fix`` what to do."""


#: kubectl error text -> what to do about it.
KUBECTL_HINTS: tuple[tuple[str, str], ...] = (
    (r"no matches for kind|ensure CRDs are installed",
     "the operator that defines this kind is not installed: run clusters/install-operators.sh"),
    (r"violates PodSecurity", "the namespace enforces Pod Security 'restricted': run `python -m kit validate` on "
                              "the manifest and fix the securityContext fields it names"),
    (r"exceeded quota", "the namespace's ResourceQuota is full: delete finished work or lower the requests"),
    (r"Unable to connect|connection refused|no such host|dial tcp",
     "no cluster reachable: start it (kind: `make test-cluster` or `kind create cluster`) or check your context"),
    (r"[Ff]orbidden|cannot (create|get|list|patch)", "RBAC: your user may not do this; ask an admin for a Role"),
    (r"namespaces? \"[^\"]+\" not found", "the namespace does not exist: apply clusters/base/namespace.yaml first"),
)


def kubectl_hint(output: str) -> str:
    """The fix for a kubectl error message, or an empty string."""
    for pattern, hint in KUBECTL_HINTS:
        if re.search(pattern, output):
            return hint
    return ""


def _sources(what: Applicable) -> tuple[list[str], str | None]:
    """kubectl file arguments and stdin text for documents, a file or a kustomize directory."""
    if isinstance(what, (str, Path)):
        path = Path(what)
        if path.is_dir() and (path / "kustomization.yaml").exists():
            return ["-k", str(path)], None
        return ["-f", str(path)] + (["--recursive"] if path.is_dir() else []), None
    from kit.k8s.builders import to_yaml

    docs = [dict(what)] if isinstance(what, Mapping) else [dict(doc) for doc in what]
    return ["-f", "-"], to_yaml(docs)


def apply_command(args: list[str], *, dry_run: str | None = None, kubectl: str = "kubectl") -> list[str]:
    """``kubectl apply --server-side`` with the kit's field manager; ``dry_run`` is ``server`` or ``client``."""
    command = [kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", *args]
    return [*command, f"--dry-run={dry_run}"] if dry_run else command


def delete_command(args: list[str], *, wait: bool = True, kubectl: str = "kubectl") -> list[str]:
    """``kubectl delete`` that ignores what is already gone."""
    return [kubectl, "delete", "--ignore-not-found", f"--wait={'true' if wait else 'false'}", *args]


def run_kubectl(command: list[str], stdin: str | None, run: Runner, timeout: float) -> str:
    """Run kubectl; its stdout, or a :class:`ClusterError` with its output and the fix."""
    try:
        result = run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ClusterError(f"{command[0]} not found",
                           fix="install kubectl: https://kubernetes.io/docs/tasks/tools/") from None
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`{' '.join(command)}` did not finish in {timeout:g} s",
                           fix="check that the cluster is reachable (`kubectl get nodes`)") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout or "").strip()
        raise ClusterError(f"`{' '.join(command)}` failed:\n{output}",
                           fix=kubectl_hint(output) or "read kubectl's message above")
    return str(result.stdout)


def apply(what: Applicable, *, dry_run: str | None = None, run: Runner = subprocess.run,
          timeout: float = 120) -> str:
    """Apply documents (a dict or list of dicts), a file, or a kustomize directory, server-side."""
    args, stdin = _sources(what)
    return run_kubectl(apply_command(args, dry_run=dry_run), stdin, run, timeout)


def delete(what: Applicable, *, wait: bool = True, run: Runner = subprocess.run, timeout: float = 300) -> str:
    """Delete what :func:`apply` created; what is already gone is not an error."""
    args, stdin = _sources(what)
    return run_kubectl(delete_command(args, wait=wait), stdin, run, timeout)
