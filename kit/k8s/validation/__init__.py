"""Offline checks that a manifest would be admitted: CRD schemas, the operators' rules, the kit's policy.

- :mod:`~kit.k8s.validation.validate` — ``validate_documents`` / ``validate_paths`` / ``check``: the entry points;
- :mod:`~kit.k8s.validation.loading` — files, directories and kustomize builds as documents;
- :mod:`~kit.k8s.validation.schema` — CRD and Kubernetes schemas, errors described as field paths;
- :mod:`~kit.k8s.validation.admission` — the operators' admission rules at the pinned tags, one module per
  operator, each rule citing its upstream source;
- :mod:`~kit.k8s.validation.rules` — the kit's pins (images, rayVersion, queue label, duplicates);
- :mod:`~kit.k8s.validation.policy` — Pod Security ``restricted`` and the kit's Ray rules;
- :mod:`~kit.k8s.validation.dryrun` — ``kubectl apply --dry-run=server``;
- :mod:`~kit.k8s.validation.crds` — the pinned upstream CRD files (find, index);
- :mod:`~kit.k8s.validation.crd_fetch` — download them, verified against the lock (``python -m kit crds``);
- :mod:`~kit.k8s.validation.problems` — what a check reports.

The command line is :mod:`kit.cli.validate` (``python -m kit validate``).
"""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
