"""Stage 10: observe what you deployed.

- :mod:`kit.observe.prometheus`: a real Prometheus on loopback (the config the kit writes, start/stop,
  PromQL over the HTTP API, alerts), and :func:`~kit.observe.prometheus.ray_targets` for Ray's metrics port;
- :mod:`kit.observe.model`: the digits KServe predictor with the kit's metrics, structured request logs with
  a request id, fault injection and a drift score;
- :mod:`kit.observe.rules`: SLOs, multi-window burn-rate alerts, ``promtool test rules``;
- :mod:`kit.observe.drift`: input drift with scipy's two-sample KS test;
- :mod:`kit.observe.textparse`: the same figures from the exporters' text when Prometheus is not installed;
- :mod:`kit.observe.logs`: Ray's state and log APIs for a failed task.

Cluster manifests (PrometheusRule, ServiceMonitor, PodMonitor): :mod:`kit.k8s.builders.monitoring`.
"""
