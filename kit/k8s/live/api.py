"""The few reads the waits and diagnostics need from the API server, as JSON-shaped dicts.

Everything else in :mod:`kit.k8s.live` works on those dicts, so tests pass a fake with the
same methods instead of :class:`KubeAPI`.
"""

from __future__ import annotations

from typing import Any, Protocol

from kit.k8s.live.context import load_client_config
from kit.k8s.live.kinds import Resource, kind_of
from kit.versions import API_RESOURCES

#: A list of resources (named here: inside the classes ``list`` is their method).
Resources = list[Resource]


class ClusterReader(Protocol):
    """What :func:`kit.k8s.live.waits.wait_for` and the diagnostics read; :class:`KubeAPI` or a fake."""

    def get(self, kind: str, name: str, namespace: str) -> Resource | None: ...

    def list(self, kind: str, namespace: str) -> Resources: ...

    def pods(self, namespace: str, selector: str) -> Resources: ...

    def events(self, namespace: str) -> Resources: ...

    def workloads(self, namespace: str) -> Resources: ...

    def log_tail(self, namespace: str, pod: str, container: str, lines: int) -> str: ...


class KubeAPI:
    """The reads of :class:`ClusterReader` through the kubernetes client (in-cluster or kubeconfig)."""

    def __init__(self) -> None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            load_client_config()
        self._api = client.ApiClient()
        self.core = client.CoreV1Api()
        self.custom = client.CustomObjectsApi()
        self.batch = client.BatchV1Api()

    def _plain(self, obj: Any) -> Any:
        return self._api.sanitize_for_serialization(obj)

    def get(self, kind: str, name: str, namespace: str) -> Resource | None:
        from kubernetes.client.rest import ApiException

        spec = kind_of(kind)
        try:
            if kind == "Job":
                return dict(self._plain(self.batch.read_namespaced_job(name, namespace)))
            return dict(self.custom.get_namespaced_custom_object(spec.group, spec.version, namespace, spec.plural,
                                                                 name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str) -> Resources:
        spec = kind_of(kind)
        if kind == "Job":
            return list(self._plain(self.batch.list_namespaced_job(namespace)).get("items", []))
        return list(self.custom.list_namespaced_custom_object(spec.group, spec.version, namespace,
                                                              spec.plural)["items"])

    def pods(self, namespace: str, selector: str) -> Resources:
        return list(self._plain(self.core.list_namespaced_pod(namespace, label_selector=selector)).get("items", []))

    def events(self, namespace: str) -> Resources:
        return list(self._plain(self.core.list_namespaced_event(namespace)).get("items", []))

    def workloads(self, namespace: str) -> Resources:
        workload = API_RESOURCES["Workload"]
        return list(self.custom.list_namespaced_custom_object(workload.group, workload.version, namespace,
                                                              workload.plural)["items"])

    def log_tail(self, namespace: str, pod: str, container: str, lines: int) -> str:
        return str(self.core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=lines))
