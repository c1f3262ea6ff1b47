"""Kubernetes manifests as plain dicts: builders, offline validation and policy.

Submodules are imported on use: ``crds`` (the upstream CRD schemas as JSON
Schema), ``validate`` (``python -m kit validate``: schemas and the checks they
cannot express), ``policy`` (Pod Security ``restricted`` and the kit's Ray
rules), ``problems`` (what a check reports) and ``traverse`` (finding pod specs,
containers and Ray cluster specs inside any resource).
"""
