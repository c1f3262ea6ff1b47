"""Where a notebook's work runs: ``local``, ``kind`` or ``cluster``.

Every notebook has one parameter, ``PROFILE``. ``local`` runs everything on this
machine with real engines (local Ray, the Kubeflow SDK's local backend, Serve and
the KServe model server on loopback). ``kind`` and ``cluster`` send the same work
to Kubernetes: a throw-away kind cluster or the cluster of your kube context.
The parameter cell reads its default from the environment variable :data:`ENV_VAR`
(a hackathon's JupyterHub sets it to ``cluster``); papermill and the learner override it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.errors import KitError

PROFILES = ("local", "kind", "cluster")
#: The environment variable every notebook's parameter cell takes its default PROFILE from.
ENV_VAR = "KIT_PROFILE"


class ProfileError(KitError, ValueError):
    """A PROFILE value that is not one of :data:`PROFILES`."""


@dataclass(frozen=True)
class Profile:
    name: str
    on_kubernetes: bool
    description: str

    def __str__(self) -> str:
        return f"PROFILE={self.name!r}: {self.description}"


_DESCRIPTIONS = {
    "local": "everything runs on this machine (local Ray, Kubeflow local backend, servers on 127.0.0.1)",
    "kind": "work is submitted to the kind cluster made by `make test-cluster` (Docker needed)",
    "cluster": "work is submitted to the cluster of your current kube context",
}


def resolve(name: str) -> Profile:
    """Validate a PROFILE value (case-insensitive) and describe it."""
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise ProfileError(f"PROFILE={name!r} is not a profile",
                           fix=f"set PROFILE to one of {', '.join(map(repr, PROFILES))} in the notebook's first cell")
    return Profile(key, key != "local", _DESCRIPTIONS[key])


def detect() -> str:
    """The profile this environment suggests: in-cluster or a cluster context -> that, else local.

    See :func:`kit.k8s.live.context.detect` for the rules and for the context it found.
    """
    from kit.k8s.live.context import detect as detect_context

    return detect_context().profile
