"""Kubernetes manifests as plain dicts: builders (validation and policy live in sibling modules)."""
