"""Schema checks: custom resources against the upstream CRD schemas (unknown fields rejected) and
built-in kinds against Kubernetes :data:`kit.versions.KUBERNETES_VERSION` (``kubernetes-validate``,
strict), with each JSON Schema error described as a field path and what was expected."""

from __future__ import annotations

import json
import re
from importlib import resources as importlib_resources
from typing import Any

import jsonschema

from kit.k8s.validation import crds
from kit.k8s.validation.problems import PathParts, is_int, short_value, type_name
from kit.versions import KUBERNETES_VERSION

_MAX_LISTED_FIELDS = 25


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
        checker.checks(name)(lambda value, low=low, high=high: not is_int(value) or low <= value <= high)
    return checker


def _builtin_problems(body: dict[str, Any]) -> list[tuple[PathParts, str]]:
    validator = _builtin_validator(body["apiVersion"], body["kind"])
    if validator is None:
        return [_unknown_builtin(body["apiVersion"], body["kind"])]
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))  # what validate() raises
    return describe_error(error) if error is not None else []


_STRICT_SCHEMAS = "kubernetes-json-schema/v{version}-local-strict"


def _builtin_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """kubernetes-validate's strict validator for ``kind`` at :data:`KUBERNETES_VERSION`, built once.

    The same schema files, registry and draft as ``kubernetes_validate.validate(..., strict=True)``,
    which re-reads them (the shared definitions are megabytes) on every call.
    """
    key = ("builtin", api_version, kind)
    if key not in _validators:
        from kubernetes_validate import utils
        from referencing import Registry, Resource

        wanted = utils.major_minor(KUBERNETES_VERSION)
        version = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
        folder = _STRICT_SCHEMAS.format(version=version)
        name = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
        try:
            schema = utils.schema_contents(f"{folder}/{kind.lower()}-{name}.json", KUBERNETES_VERSION)
        except FileNotFoundError:
            return None
        registry = Resource.from_contents(_definitions(folder)) @ (Resource.from_contents(schema) @ Registry())
        _validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    return _validators[key]


_DEFINITIONS: dict[str, Any] = {}


def _definitions(folder: str) -> Any:
    if folder not in _DEFINITIONS:
        from kubernetes_validate import utils

        _DEFINITIONS[folder] = utils.schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    return _DEFINITIONS[folder]


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
        return [(path, f"expected {_or_list(value)}, got {type_name(instance)} {short_value(instance)}")]
    if error.validator == "enum":
        return [(path, f"expected one of {', '.join(map(repr, value))}; got {short_value(instance)}")]
    if error.validator == "format":
        return [(path, f"{short_value(instance)} is not a valid {value}")]
    if error.validator == "pattern":
        return [(path, f"{short_value(instance)} does not match the required pattern {value}")]
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


