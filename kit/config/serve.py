"""The Ray Serve application's configuration, without importing Ray.

One :class:`ServeConfig` drives the local run (:func:`kit.serve.rayserve.deploy`) and
the ``serveConfigV2`` of a KubeRay RayService (:func:`serve_config_v2`), so what you
measured locally is what the cluster runs. Kept free of Ray imports so that manifest
builders stay fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

INGRESS = "DigitsIngress"
CLASSIFIER = "DigitsClassifier"
#: the one-hop shape's only deployment: HTTP ingress and model together
SERVICE = "DigitsService"
APP_BUILDER = "kit.serve.rayserve:app_builder"


@dataclass(frozen=True)
class ServeConfig:
    """Everything that shapes the application; the same values go to ``serve.run`` and to KubeRay."""

    model_dir: str
    name: str = "digits"
    route_prefix: str = "/"
    #: fixed replica count of the classifier; ignored when ``autoscaling`` is set
    num_replicas: int = 1
    #: e.g. {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8}
    autoscaling: dict[str, Any] | None = None
    max_ongoing_requests: int = 32
    #: requests waiting for a replica beyond this are answered 503 (no unbounded queue)
    max_queued_requests: int = 64
    #: 1 turns dynamic batching off
    max_batch_size: int = 16
    batch_wait_timeout_s: float = 0.005
    #: end-to-end HTTP timeout (answered 408); cluster-wide, fixed when Serve starts
    request_timeout_s: float = 10.0
    health_check_period_s: float = 5.0
    #: logical CPUs per replica: small, so that several fit on a laptop
    replica_cpus: float = 0.25
    ingress_replicas: int = 1
    #: how the model replicas run the model: "torch", or "numpy"/"auto" (the MLP without torch: less memory)
    backend: str = "torch"

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 1

    def user_config(self) -> dict[str, Any]:
        return {"max_batch_size": self.max_batch_size, "batch_wait_timeout_s": self.batch_wait_timeout_s}


def deployment_options(config: ServeConfig) -> dict[str, dict[str, Any]]:
    """Per-deployment options, shared by :func:`build_app` and :func:`serve_config_v2`."""
    classifier: dict[str, Any] = {
        "max_ongoing_requests": config.max_ongoing_requests,
        "health_check_period_s": config.health_check_period_s,
        "ray_actor_options": {"num_cpus": config.replica_cpus},
        "user_config": config.user_config(),
    }
    if config.autoscaling:
        classifier["autoscaling_config"] = dict(config.autoscaling)
    else:
        classifier["num_replicas"] = config.num_replicas
    ingress = {
        "num_replicas": config.ingress_replicas,
        "max_ongoing_requests": config.max_ongoing_requests,
        "max_queued_requests": config.max_queued_requests,
        "health_check_period_s": config.health_check_period_s,
        "ray_actor_options": {"num_cpus": config.replica_cpus},
    }
    return {INGRESS: ingress, CLASSIFIER: classifier}


def serve_config_v2(config: ServeConfig, model_dir: str = "/models/digits", port: int = 8000) -> dict[str, Any]:
    """The RayService ``serveConfigV2`` for ``config`` (the model read from ``model_dir`` in the pod)."""
    options = deployment_options(config)
    args = {**asdict(config), "model_dir": model_dir}
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": port, "request_timeout_s": config.request_timeout_s},
        "applications": [
            {
                "name": config.name,
                "route_prefix": config.route_prefix,
                "import_path": APP_BUILDER,
                "args": args,
                "deployments": [{"name": name, **opts} for name, opts in options.items()],
            }
        ],
    }
