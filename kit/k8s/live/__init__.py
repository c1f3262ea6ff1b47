"""A real cluster, one module per concern.

- :mod:`~kit.k8s.live.context` — which cluster (``detect``) and the one kubeconfig reader;
- :mod:`~kit.k8s.live.kubectl` — ``apply`` / ``delete`` server-side, kubectl errors turned into fixes;
- :mod:`~kit.k8s.live.kinds` — readiness verdicts of each kind the kit waits on;
- :mod:`~kit.k8s.live.api` — :class:`~kit.k8s.live.api.KubeAPI`, the reads as JSON-shaped dicts;
- :mod:`~kit.k8s.live.diagnostics` — snapshots, self-explaining reports and bundles;
- :mod:`~kit.k8s.live.waits` — ``wait_for`` and its errors;
- :mod:`~kit.k8s.live.portforward` — ``kubectl port-forward`` as a managed subprocess;
- :mod:`~kit.k8s.live.preflight` — ``kit cluster preflight``: operators, storage, capacity and access vs a plan.
"""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
