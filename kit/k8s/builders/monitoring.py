"""Monitoring on a cluster with the Prometheus Operator (kube-prometheus-stack): what to scrape, what to alert on.

Stage 10 runs a Prometheus on loopback; on a cluster the operator runs it, and these resources tell it what
to do (``monitoring.coreos.com/v1``, prometheus-operator v0.93.0):

* ``ServiceMonitor`` ``kit-ray-head``: the Ray head's Service, port ``metrics`` (KubeRay v1.7 adds a
  container port ``metrics`` 8080 and starts Ray with ``--metrics-export-port=8080``; Ray and Ray Serve
  metrics are exported there);
* ``PodMonitor`` ``kit-ray-workers``: the Ray worker pods, same port (workers have no Service);
* ``PodMonitor`` ``kit-kserve-predictor``: the InferenceService's predictor pods (KServe labels them
  ``serving.kserve.io/inferenceservice: <name>``), ``/metrics`` on the model server's port 8080;
* ``PrometheusRule`` ``kit-digits-slo``: :func:`kit.observe.rules.rules_file` at the SRE workbook's windows;
* ``NetworkPolicy`` ``ingress-prometheus``: the kit's namespace admits only its own pods and the KubeRay
  operator (:func:`kit.k8s.builders.core.network_policies`), so Prometheus, in its own namespace, is let in
  on the metrics port only.

kube-prometheus-stack's Prometheus selects monitors and rules labelled ``release: <its Helm release>``
(:data:`RELEASE_LABEL`; its chart's ``serviceMonitorSelector``/``ruleSelector`` defaults).
"""

from __future__ import annotations

from typing import Any

from kit import versions
from kit.config.train import MODEL_NAME
from kit.k8s.builders.serving import KSERVE_PORT

API_VERSION = "monitoring.coreos.com/v1"
#: The namespace and Helm release of kube-prometheus-stack (its documented install: ``-n monitoring``).
MONITORING_NAMESPACE = "monitoring"
RELEASE_LABEL = {"release": "kube-prometheus-stack"}
#: KubeRay's default metrics port (name and number) on head and worker containers.
RAY_METRICS_PORT = ("metrics", 8080)
INTERVAL = "15s"


def _meta(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(RELEASE_LABEL)}


def ray_head_service_monitor(namespace: str, cluster: str = versions.RAY_CLUSTER) -> dict[str, Any]:
    labels = {f"{versions.RAY_GROUP}/node-type": "head", f"{versions.RAY_GROUP}/cluster": cluster}
    return {"apiVersion": API_VERSION, "kind": "ServiceMonitor", "metadata": _meta("kit-ray-head", namespace),
            "spec": {"selector": {"matchLabels": labels}, "targetLabels": [f"{versions.RAY_GROUP}/cluster"],
                     "endpoints": [{"port": RAY_METRICS_PORT[0], "path": "/metrics", "interval": INTERVAL}]}}


def ray_workers_pod_monitor(namespace: str, cluster: str = versions.RAY_CLUSTER) -> dict[str, Any]:
    labels = {f"{versions.RAY_GROUP}/node-type": "worker", f"{versions.RAY_GROUP}/cluster": cluster}
    return {"apiVersion": API_VERSION, "kind": "PodMonitor", "metadata": _meta("kit-ray-workers", namespace),
            "spec": {"selector": {"matchLabels": labels}, "podTargetLabels": [f"{versions.RAY_GROUP}/cluster"],
                     "podMetricsEndpoints": [{"port": RAY_METRICS_PORT[0], "path": "/metrics",
                                              "interval": INTERVAL}]}}


def kserve_pod_monitor(namespace: str, isvc: str = MODEL_NAME) -> dict[str, Any]:
    labels = {f"{versions.KSERVE_GROUP}/inferenceservice": isvc}
    return {"apiVersion": API_VERSION, "kind": "PodMonitor", "metadata": _meta("kit-kserve-predictor", namespace),
            "spec": {"selector": {"matchLabels": labels},
                     "podMetricsEndpoints": [{"portNumber": KSERVE_PORT, "path": "/metrics", "interval": INTERVAL}]}}


def prometheus_rule(namespace: str, drift_threshold: float | None = None) -> dict[str, Any]:
    """The SLO burn-rate alerts (cluster windows) and the drift alert as a ``PrometheusRule``."""
    from kit.observe.rules import CLUSTER_WINDOWS, DRIFT_THRESHOLD, rules_file

    threshold = DRIFT_THRESHOLD if drift_threshold is None else drift_threshold
    return {"apiVersion": API_VERSION, "kind": "PrometheusRule", "metadata": _meta("kit-digits-slo", namespace),
            "spec": rules_file(CLUSTER_WINDOWS, threshold)}


def prometheus_ingress(namespace: str, monitoring_namespace: str = MONITORING_NAMESPACE) -> dict[str, Any]:
    """Let pods of ``monitoring_namespace`` scrape the metrics port (8080: Ray's and KServe's) and nothing else."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "ingress-prometheus", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": monitoring_namespace}}}],
                "ports": [{"protocol": "TCP", "port": RAY_METRICS_PORT[1]}]}]}}


def monitoring(namespace: str) -> list[dict[str, Any]]:
    """Everything above, for ``clusters/standalone/monitoring.yaml``."""
    return [ray_head_service_monitor(namespace), ray_workers_pod_monitor(namespace), kserve_pod_monitor(namespace),
            prometheus_rule(namespace), prometheus_ingress(namespace)]
