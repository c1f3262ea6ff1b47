"""Pod-level building blocks shared by every builder: containers that pass the
Pod Security Standards ``restricted`` profile, with requests and limits.

Kubernetes admits a pod into a ``restricted`` namespace only when it runs as a
non-root user, cannot gain privileges, drops all Linux capabilities and uses the
runtime's default seccomp profile. Ray images run as uid 1000 and write to
/tmp/ray, so Ray pods also get an emptyDir there.
"""

from __future__ import annotations

from typing import Any

RAY_UID = 1000


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


def pod_template(containers: list[dict[str, Any]],
                 volumes: list[dict[str, Any]] | None = None, labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod template whose pod-level securityContext also satisfies ``restricted``."""
    spec: dict[str, Any] = {"securityContext": restricted_pod_security_context(), "containers": containers}
    if volumes:
        spec["volumes"] = volumes
    template: dict[str, Any] = {"spec": spec}
    if labels:
        template["metadata"] = {"labels": labels}
    return template
