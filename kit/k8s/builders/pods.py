"""Pod-level building blocks shared by every builder: containers that pass the
Pod Security Standards ``restricted`` profile, with requests and limits.

Kubernetes admits a pod into a ``restricted`` namespace only when it runs as a
non-root user, cannot gain privileges, drops all Linux capabilities and uses the
runtime's default seccomp profile. Ray images run as uid 1000 and write to
/tmp/ray, so Ray pods also get an emptyDir there.

A pod gets a Kubernetes API token only when it calls the API (``calls_api``): the
token is what an attacker who runs code in the pod would use next, and none of the
kit's workloads but the Ray autoscaler needs one. Such pods also carry
:data:`API_ACCESS_LABEL`, which the namespace's egress policy lets reach the API
server (:func:`kit.k8s.builders.core.network_policies`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kit.errors import KitError
from kit.k8s import traverse

RAY_UID = 1000
#: On the pods that call the Kubernetes API (they keep their token and may reach the API server).
API_ACCESS_LABEL = "cnai-kit/api-access"


def restricted_security_context(uid: int = RAY_UID) -> dict[str, Any]:
    """Container securityContext accepted by the PSS ``restricted`` profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod_security_context(uid: int = RAY_UID) -> dict[str, Any]:
    """Pod-level securityContext accepted by the PSS ``restricted`` profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu: str, memory: str, gpus: int = 0) -> dict[str, Any]:
    """Requests equal to limits (Guaranteed QoS: no surprise evictions mid-training)."""
    amount = {"cpu": cpu, "memory": memory}
    if gpus:
        amount["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amount), "limits": dict(amount)}


def container(
    name: str,
    image: str,
    cpu: str,
    memory: str,
    *,
    gpus: int = 0,
    command: list[str] | None = None,
    args: list[str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    env: list[dict[str, Any]] | None = None,
    volume_mounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A restricted-compliant container; optional fields are left out when empty."""
    spec: dict[str, Any] = {"name": name, "image": image}
    for key, value in (("command", command), ("args", args), ("ports", ports), ("env", env)):
        if value:
            spec[key] = value
    spec["resources"] = resources(cpu, memory, gpus)
    spec["securityContext"] = restricted_security_context()
    if volume_mounts:
        spec["volumeMounts"] = volume_mounts
    return spec


def api_access(enabled: bool = False) -> dict[str, Any]:
    """Pod spec field for the service account token: mounted only for pods that call the Kubernetes API."""
    return {"automountServiceAccountToken": enabled}


def pod_template(containers: list[dict[str, Any]], volumes: list[dict[str, Any]] | None = None,
                 labels: dict[str, Any] | None = None, *, calls_api: bool = False) -> dict[str, Any]:
    """A pod template whose pod-level securityContext also satisfies ``restricted``; without ``calls_api``
    the pod gets no API token, with it the pod keeps its token and carries :data:`API_ACCESS_LABEL`."""
    spec: dict[str, Any] = {"securityContext": restricted_pod_security_context(), **api_access(calls_api),
                            "containers": containers}
    if volumes:
        spec["volumes"] = volumes
    labels = {**(labels or {}), **({API_ACCESS_LABEL: "true"} if calls_api else {})}
    return {"metadata": {"labels": labels}, "spec": spec} if labels else {"spec": spec}


# --------------------------------------------------------------------------- images pinned by digest

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ImagePinError(KitError, ValueError):
    """An image pin that is not ``IMAGE@sha256:<64 hex digits>``."""


def parse_pins(pins: Iterable[str]) -> dict[str, str]:
    """``["repo:tag@sha256:..."]`` -> {``repo:tag``: ``repo:tag@sha256:...``}: which image each pin replaces."""
    parsed: dict[str, str] = {}
    for pin in pins:
        image, _, digest = pin.partition("@")
        if not image or not _DIGEST.match(digest):
            raise ImagePinError(f"image pin {pin!r} is not IMAGE@sha256:<64 hex digits>",
                                fix="pin the reference the manifests use, e.g. "
                                    "ghcr.io/cloud-native-ai-kit/kit:0.1.0-ray2.60.0-cpu@sha256:<digest from "
                                    "`docker buildx imagetools inspect` or your registry>")
        parsed[image] = pin
    return parsed


def check_pins(docs: Iterable[dict[str, Any]], pins: Mapping[str, str]) -> None:
    """Refuse pins that name no image of ``docs``: a misspelt pin would leave its image unpinned unnoticed."""
    used = {image for doc in docs for _, image in traverse.images(doc)}
    unused = [image for image in pins if image not in used]
    if unused:
        raise ImagePinError(f"no manifest uses {', '.join(unused)}; the images in use: {', '.join(sorted(used))}",
                            fix="pin an image exactly as the manifests name it (tag included), then @sha256:...")


def pin_images(docs: Iterable[dict[str, Any]], pins: Mapping[str, str]) -> list[dict[str, Any]]:
    """Copies of ``docs`` in which every ``image`` field naming a key of ``pins`` (:func:`parse_pins`)
    becomes its digest-pinned reference; other images stay as built."""
    pinned = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        for path, image in traverse.images(doc):
            if image in pins:
                parent: Any = doc
                for part in path[:-1]:
                    parent = parent[part]
                parent[path[-1]] = pins[image]
        pinned.append(doc)
    return pinned
