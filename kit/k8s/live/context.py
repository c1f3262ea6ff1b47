"""Which cluster: the profile this environment points at, and the one reader of kubeconfig files.

:func:`read_kubeconfig` merges ``$KUBECONFIG`` (a list separated by ``os.pathsep``) or
``~/.kube/config`` the way kubectl does: the first file that sets ``current-context`` wins,
and the first entry of each name wins. :func:`detect`, ``python -m kit cluster profile``,
:class:`kit.k8s.live.api.KubeAPI` and the doctor all read kubeconfig through it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.k8s.live.kubectl import ClusterError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class ClusterContext:
    """Where ``PROFILE`` work would go: the profile, the context's name and namespace, and why."""

    profile: str
    context: str | None
    namespace: str
    source: str

    def __str__(self) -> str:
        where = f"context {self.context!r}, namespace {self.namespace!r}" if self.context else "no cluster"
        return f"{self.profile}: {where} (from {self.source})"


@dataclass(frozen=True)
class Kubeconfig:
    """The kubeconfig files kubectl would read, merged like kubectl merges them."""

    paths: list[Path]  # every file named, in order, present or not
    current_context: str | None = None
    source: Path | None = None  # the file that set current-context
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> its "context" mapping

    @property
    def existing(self) -> list[Path]:
        return [path for path in self.paths if path.is_file()]

    @property
    def namespace(self) -> str:
        """The current context's namespace, ``default`` when it sets none."""
        context = self.contexts.get(self.current_context or "", {})
        return str(context.get("namespace") or "default")


def kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The kubeconfig files kubectl reads: ``$KUBECONFIG`` (an ``os.pathsep`` list) or ``~/.kube/config``."""
    environ = os.environ if environ is None else environ
    if environ.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    return [Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"]


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def read_kubeconfig(environ: Mapping[str, str] | None = None) -> Kubeconfig:
    """Read and merge the kubeconfig files as kubectl does; unreadable or missing files count as empty."""
    paths = kubeconfig_paths(environ)
    current: str | None = None
    source: Path | None = None
    contexts: dict[str, dict[str, Any]] = {}
    for path in paths:
        data = _read_file(path)
        if current is None and data.get("current-context"):
            current, source = str(data["current-context"]), path
        for entry in data.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in contexts:
                contexts[str(entry["name"])] = dict(entry.get("context") or {})
    return Kubeconfig(paths, current, source, contexts)


def load_client_config(environ: Mapping[str, str] | None = None) -> str:
    """Configure the ``kubernetes`` client from the same files and context as kubectl; return the context.

    The client reads ``$KUBECONFIG`` once, when it is imported, and lets the *last* file's
    current-context win: both are set explicitly here.
    """
    from kubernetes import config

    kubeconfig = read_kubeconfig(environ)
    if not kubeconfig.existing or kubeconfig.current_context is None:
        raise ClusterError(f"no kubeconfig with a current context in {', '.join(map(str, kubeconfig.paths))}",
                           fix="create a cluster (`make test-cluster` or `kind create cluster`) or set $KUBECONFIG")
    config.load_kube_config(config_file=os.pathsep.join(map(str, kubeconfig.existing)),
                            context=kubeconfig.current_context)
    return kubeconfig.current_context


def detect(environ: Mapping[str, str] | None = None, service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> ClusterContext:
    """The profile this environment points at, as kubectl would see it.

    In a pod with a service account token: ``cluster``. Otherwise the kubeconfig's
    current context (the first file that sets one wins, as in kubectl): a ``kind-*``
    context is ``kind``, any other is ``cluster``; no kubeconfig or no context: ``local``.
    """
    environ = os.environ if environ is None else environ
    token = service_account_dir / "token"
    if environ.get("KUBERNETES_SERVICE_HOST") and token.exists():
        ns_file = service_account_dir / "namespace"
        namespace = ns_file.read_text().strip() if ns_file.exists() else "default"
        return ClusterContext("cluster", "in-cluster", namespace, f"service account token {token}")
    kubeconfig = read_kubeconfig(environ)
    if kubeconfig.current_context is None:
        sources = ", ".join(str(p) for p in kubeconfig.paths)
        return ClusterContext("local", None, "default", f"no current context in {sources}")
    name = kubeconfig.current_context
    profile = "kind" if name.startswith("kind-") else "cluster"
    return ClusterContext(profile, name, kubeconfig.namespace, f"current-context in {kubeconfig.source}")
