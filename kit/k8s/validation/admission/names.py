"""Kubernetes' name, label and quantity formats, as the operators' webhooks call them.

Ported from k8s.io/apimachinery ``pkg/util/validation/validation.go`` (``IsDNS1123Subdomain``,
``IsDNS1035Label``, ``IsDNS1123Label``, ``IsQualifiedName``, ``IsValidLabelValue``, ``IsDomainPrefixedPath``),
``pkg/api/validation/path/name.go`` (``IsValidPathSegmentName``) and ``pkg/api/resource/quantity.go``
(``ParseQuantity``); each function returns the reasons a value is invalid, empty when it is valid.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_HTTP_PATH = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")


def dns1123_subdomain(value: str) -> list[str]:
    """Lower case alphanumerics, '-' and '.', at most 253 characters (a CRD object name, a queue name)."""
    found = [] if len(value) <= 253 else ["must be no more than 253 characters"]
    if not _DNS1123_SUBDOMAIN.match(value):
        found.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                     "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')")
    return found


def dns1123_label(value: str) -> list[str]:
    """Lower case alphanumerics and '-', at most 63 characters (a Namespace name)."""
    found = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    if not re.match(rf"^{_DNS1123_LABEL}$", value):
        found.append("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
                     "must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')")
    return found


def path_segment_name(value: str) -> list[str]:
    """Anything but '.' and '..', without '/' or '%' (the name of an RBAC object)."""
    if value in (".", ".."):
        return [f"may not be {value!r}"]
    return [f"may not contain {bad!r}" for bad in ("/", "%") if bad in value]


def dns1035_label(value: str) -> list[str]:
    """A lower case letter, then alphanumerics or '-', at most 63 characters (a Service name)."""
    found = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    if not _DNS1035_LABEL.match(value):
        found.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                     "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name')")
    return found


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: an optional DNS subdomain prefix and '/', then a name of at most 63."""
    prefix, slash, name = value.rpartition("/")
    found = []
    if slash and not prefix:
        found.append("prefix part must be non-empty")
    elif slash:
        found += [f"prefix part {reason}" for reason in dns1123_subdomain(prefix)]
    if len(name) > 63:
        found.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.match(name):
        found.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                     "and end with an alphanumeric character")
    return found


def label_value(value: str) -> list[str]:
    """A label value: empty, or at most 63 alphanumerics, '-', '_' or '.' starting and ending alphanumeric."""
    found = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    if not _LABEL_VALUE.match(value):
        found.append("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                     "or '.', and must start and end with an alphanumeric character")
    return found


def domain_prefixed_path(value: str) -> list[str]:
    """``acme.io/foo``: a DNS subdomain, '/', then HTTP path characters."""
    if not value:
        return ["must not be empty"]
    host, slash, path = value.partition("/")
    if not slash or not host or not path:
        return ['must be a domain-prefixed path (such as "acme.io/foo")']
    found = [f"domain {host!r}: {reason}" for reason in dns1123_subdomain(host)]
    if not _HTTP_PATH.match(path):
        found.append(f"path {path!r} has characters an HTTP path may not have")
    return found


_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2 ** 10), "Mi": Decimal(2 ** 20), "Gi": Decimal(2 ** 30), "Ti": Decimal(2 ** 40),
    "Pi": Decimal(2 ** 50), "Ei": Decimal(2 ** 60),
}
_QUANTITY = re.compile(r"^(?P<number>[+-]?(\d+\.?\d*|\.\d+))(?P<suffix>[a-zA-Z]*|[eE][+-]?\d+)$")


def quantity(value: Any) -> Decimal | None:
    """A resource quantity (``"500m"``, ``"2Gi"``, ``4``) as an exact number; ``None`` when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        return None
    suffix = match["suffix"]
    try:
        number = Decimal(match["number"])
        if suffix[:1] in ("e", "E"):
            return number * Decimal(10) ** int(suffix[1:])
    except (InvalidOperation, ValueError):
        return None
    return number * _SUFFIXES[suffix] if suffix in _SUFFIXES else None
