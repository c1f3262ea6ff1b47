"""The Ray Serve application: a FastAPI ingress that preprocesses, then a batched model.

Two deployments form the graph ``DigitsIngress -> DigitsClassifier``:

- ``DigitsIngress`` owns the HTTP API (:mod:`kit.serve.api`: pydantic request models,
  short JSON 4xx errors, a body limit), validates and preprocesses the rows, and calls the
  classifier through a ``DeploymentHandle``. It is light: it loads the metadata only.
- ``DigitsClassifier`` loads the weights and predicts. With ``max_batch_size > 1`` its
  ``@serve.batch`` method gathers concurrent requests into one forward pass; batch size
  and wait timeout are its ``user_config``, so they change without restarting replicas.

``deploy(config, one_hop=True)`` runs the one-hop shape instead: ``DigitsService`` is the HTTP
ingress *and* the batched model (the same :class:`ModelStep`), one Python hop fewer per request.
``ServeConfig.backend`` says how the model replicas run the model (torch, or NumPy for the MLP:
:mod:`kit.serve.numpy_model`); :mod:`kit.serve.shape` picks the shape and backend that fit the memory.

One :class:`ServeConfig` drives both the local run (:func:`deploy`, on 127.0.0.1) and the
``serveConfigV2`` of a KubeRay RayService (:func:`serve_config_v2`). On a remote Ray cluster
(PROFILE='kind'/'cluster', :mod:`kit.machine.ray_cluster`) :func:`deploy` serves on the head's
address and loads the model from the shared storage, where it copies it first.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from fastapi import FastAPI
from ray import serve

from kit import versions
from kit.config.serve import CLASSIFIER, INGRESS, SERVICE, ServeConfig, deployment_options, serve_config_v2
from kit.serve import api
from kit.serve.predictor import InvalidInput, Predictor, validate_instances
from kit.train.artifact import ModelMetadata, load_metadata

if TYPE_CHECKING:
    from kit.serve.loadgen import LoadResult

__all__ = ["CLASSIFIER", "INGRESS", "SERVICE", "ServeApp", "ServeConfig", "build_app", "build_one_hop_app", "deploy",
           "kill_drill", "model_handle", "serve_config_v2", "shutdown"]

#: Serve logs one access line per request by default, and warns from every replica when one dies:
#: too much for a notebook under load (the drill reports what was lost instead).
QUIET_LOGS = {"log_level": "ERROR", "enable_access_log": False}


class ModelStep:
    """The model step: one forward pass per (batch of) request(s). Shared by both application shapes."""

    def __init__(self, model_dir: str, backend: str = "torch") -> None:
        self.predictor = Predictor(model_dir, backend=backend)
        self.batching = True

    def reconfigure(self, user_config: dict) -> None:
        """Called with ``user_config`` at start and on every change, without a restart."""
        size = int(user_config.get("max_batch_size", 1))
        self.batching = size > 1
        if self.batching:
            # @serve.batch adds these setters to the method; its stub does not declare them
            self.predict_batched.set_max_batch_size(size)  # type: ignore[attr-defined]
            self.predict_batched.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
                float(user_config.get("batch_wait_timeout_s", 0.005)))

    def check_health(self) -> None:
        """Serve restarts a replica whose health check raises."""
        probe = np.zeros((1, self.predictor.metadata.features), dtype=np.float32)
        self.predictor.predict_array(probe)

    async def predict(self, rows: np.ndarray) -> list[int]:
        if self.batching:
            return await self.predict_batched(rows)
        return self.predictor.predict_array(rows)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def predict_batched(self, requests: list[np.ndarray]) -> list[list[int]]:
        """Concurrent requests arrive here together: one forward pass, split back per request."""
        labels = self.predictor.predict_array(np.concatenate(requests))
        bounds = np.cumsum([len(r) for r in requests])[:-1]
        return [part.tolist() for part in np.split(np.asarray(labels), bounds)]

    def replica_pid(self) -> int:
        import os

        return os.getpid()


@serve.deployment
class DigitsClassifier(ModelStep):
    """The model deployment of the two-hop application (called through a DeploymentHandle)."""


def v1_routes(app: FastAPI) -> type:
    """A base class whose methods are the kit's v1 routes on ``app``; subclasses define ``labels(rows)``."""

    class V1Routes:
        metadata: ModelMetadata

        async def labels(self, rows: np.ndarray) -> list[int]:
            raise NotImplementedError

        @app.get("/healthz")
        async def healthz(self) -> dict:
            return {"status": "ok"}

        @app.get("/v1/models/{model_name}")
        async def model(self, model_name: str) -> dict:
            api.check_model_name(model_name, self.metadata)
            return api.model_info(self.metadata)

        @app.post("/v1/models/{model_name}:predict")
        async def http_predict(self, model_name: str, request: api.PredictRequest) -> dict:
            api.check_model_name(model_name, self.metadata)
            rows = validate_instances(request.instances, self.metadata)
            return api.predict_response(self.metadata, await self.labels(rows))

    return V1Routes


_app = api.new_app("kit Ray Serve ingress")


@serve.deployment
@serve.ingress(_app)
class DigitsIngress(v1_routes(_app)):  # type: ignore[misc]  # a base class made at import time
    """The preprocess step and HTTP API; calls the classifier through a DeploymentHandle."""

    def __init__(self, classifier, model_dir: str) -> None:
        self.classifier = classifier
        self.metadata = load_metadata(model_dir)

    async def labels(self, rows: np.ndarray) -> list[int]:
        from ray.serve.exceptions import BackPressureError

        try:
            return await self.classifier.predict.remote(rows)
        except BackPressureError:
            raise InvalidInput("the model is overloaded; retry later", status=503) from None


_one_hop_app = api.new_app("kit Ray Serve one-hop")


@serve.deployment
@serve.ingress(_one_hop_app)
class DigitsService(ModelStep, v1_routes(_one_hop_app)):  # type: ignore[misc]
    """One hop: the HTTP API and the model in one deployment (the proxy calls it; no handle in between)."""

    def __init__(self, model_dir: str, backend: str = "torch") -> None:
        super().__init__(model_dir, backend)
        self.metadata = self.predictor.metadata

    async def labels(self, rows: np.ndarray) -> list[int]:
        return await self.predict(rows)


def build_app(config: ServeConfig):
    """The bound application (``serve.run`` target): ingress -> classifier, options from ``config``."""
    options = deployment_options(config)
    # @serve.deployment turns the classes into Deployments (with .options); mypy sees the plain classes
    classifier = DigitsClassifier.options(  # type: ignore[attr-defined]
        **options[CLASSIFIER]).bind(str(config.model_dir), config.backend)
    return DigitsIngress.options(  # a subclass of a made-at-import class: mypy sees Any
        **options[INGRESS]).bind(classifier, str(config.model_dir))


def build_one_hop_app(config: ServeConfig):
    """One deployment (:class:`DigitsService`) that is both the HTTP ingress and the batched model.

    The classifier's options (replicas, batching ``user_config``) plus the ingress's queue bound.
    """
    options = {**deployment_options(config)[CLASSIFIER], "max_queued_requests": config.max_queued_requests}
    return DigitsService.options(**options).bind(str(config.model_dir), config.backend)


def app_builder(args: dict):
    """Entry point for ``serveConfigV2`` (``import_path: kit.serve.rayserve:app_builder``)."""
    return build_app(ServeConfig(**args))


def start_serve(request_timeout_s: float = ServeConfig.request_timeout_s, port: int | None = None) -> str:
    """Start Serve's HTTP proxy (idempotent); return its base URL.

    Locally on 127.0.0.1; on a remote cluster on the head node only, on all its interfaces, and the URL
    is the head's host (:func:`kit.machine.ray_cluster.serve_host`), never this notebook's loopback.
    """
    import logging

    from kit.machine import ray_cluster

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the driver's "connecting to Serve" lines
    port = port or versions.PORTS["ray-serve"]
    bind, public = ray_cluster.serve_host()
    http_options = {"host": bind, "port": port, "request_timeout_s": request_timeout_s}
    if ray_cluster.is_remote():
        serve.start(http_options=http_options, logging_config=QUIET_LOGS, proxy_location="HeadOnly")
    else:
        serve.start(http_options=http_options, logging_config=QUIET_LOGS)
    return f"http://{public}:{port}"


@dataclass(frozen=True)
class ServeApp:
    name: str
    url: str
    config: ServeConfig
    #: the deployment that runs the model: DigitsClassifier (graph) or DigitsService (one hop)
    model_deployment: str = CLASSIFIER

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{load_metadata(self.config.model_dir).name}:predict"


def deploy(config: ServeConfig, port: int | None = None, one_hop: bool = False) -> ServeApp:
    """Run (or replace) the application ``config.name`` and wait until it is healthy.

    ``one_hop``: the :func:`build_one_hop_app` shape (proxy -> model) instead of proxy -> ingress -> model.
    On a remote cluster the replicas load the model from the shared storage
    (:func:`kit.machine.ray_cluster.shared_model_dir`), not from this notebook's disk.
    """
    from kit.machine import ray_cluster

    if ray_cluster.is_remote():
        config = dataclasses.replace(config, model_dir=str(ray_cluster.shared_model_dir(config.model_dir)))
    base = start_serve(config.request_timeout_s, port)
    builder = build_one_hop_app if one_hop else build_app
    serve.run(builder(config), name=config.name, route_prefix=config.route_prefix, logging_config=QUIET_LOGS)
    prefix = config.route_prefix.rstrip("/")
    return ServeApp(config.name, base + prefix, config, SERVICE if one_hop else CLASSIFIER)


def model_handle(app: ServeApp):
    """A ``DeploymentHandle`` to ``app``'s model deployment: Python calls, no HTTP (what an ingress holds)."""
    return serve.get_deployment_handle(app.model_deployment, app_name=app.name)


def delete(name: str) -> None:
    """Remove one application; Serve and its port stay up."""
    serve.delete(name)


def shutdown(port: int | None = None, timeout: float = 15.0) -> None:
    """Stop every Serve application and the proxy, and wait until the port is free."""
    from kit.serve.process import port_is_free

    serve.shutdown()
    port = port or versions.PORTS["ray-serve"]
    deadline = time.monotonic() + timeout
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.2)


def replica_actor_names(app: str, deployment: str = CLASSIFIER) -> list[str]:
    """Names of the live replica actors of ``deployment`` in ``app``."""
    import ray

    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith(prefix))


def kill_replica(app: str, deployment: str = CLASSIFIER) -> str:
    """Kill one replica of ``deployment`` the hard way (as an OOM kill would); return its name."""
    import ray

    names = replica_actor_names(app, deployment)
    if not names:
        raise RuntimeError(f"no running replica of {deployment} in application {app!r}")
    ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
    return names[0]


def _healthy(app_name: str) -> bool:
    status = serve.status().applications.get(app_name)
    return status is not None and all(d.status == "HEALTHY" for d in status.deployments.values())


@dataclass(frozen=True)
class DrillResult:
    """What the replica-kill drill measured."""

    killed: str
    kill_at_s: float
    load: LoadResult
    #: from the kill to the first success after the last failure (0: no request was lost)
    recovery_s: float
    replicas_back_s: float | None

    @property
    def lost(self) -> int:
        return self.load.errors

    def __str__(self) -> str:
        back = f"{self.replicas_back_s:.1f} s" if self.replicas_back_s is not None else "not yet (still starting)"
        return (f"killed {self.killed.split('#')[-1]} at {self.kill_at_s:.1f} s: {self.lost} of "
                f"{sum(self.load.statuses.values())} requests failed {dict(self.load.statuses)}; serving again "
                f"after {self.recovery_s:.2f} s; replica replaced after {back}")


def kill_drill(app: ServeApp, body: dict, duration_s: float = 6.0, kill_at_s: float = 2.0,
               concurrency: int = 4, settle_s: float = 30.0) -> DrillResult:
    """Load ``app`` while one classifier replica is killed; count the lost requests and time recovery.

    After the load run, waits (up to ``settle_s``) until the replacement replica is healthy.
    """
    import threading

    from kit.serve import loadgen

    deployment = app.model_deployment
    before = len(replica_actor_names(app.name, deployment))
    box: dict = {}
    runner = threading.Thread(target=lambda: box.update(result=loadgen.run_load(
        app.predict_url, body, concurrency=concurrency, duration_s=duration_s, label="kill drill")))
    runner.start()
    time.sleep(kill_at_s)
    killed_at = time.monotonic()
    killed = kill_replica(app.name, deployment)
    replicas_back = None
    while runner.is_alive():
        if replicas_back is None and len(set(replica_actor_names(app.name, deployment)) - {killed}) >= before:
            replicas_back = time.monotonic() - killed_at
        time.sleep(0.2)
    runner.join()
    deadline = time.monotonic() + settle_s
    while replicas_back is None and time.monotonic() < deadline:  # wait for the replacement to be healthy
        if len(set(replica_actor_names(app.name, deployment)) - {killed}) >= before and _healthy(app.name):
            replicas_back = time.monotonic() - killed_at
        time.sleep(0.2)
    load = box["result"]
    kill_t = kill_at_s
    failures = [t for t, ok in load.timeline if not ok and t >= kill_t - 0.5]
    recovery = 0.0
    if failures:
        after = [t for t, ok in load.timeline if ok and t > max(failures)]
        recovery = (min(after) - kill_t) if after else float("inf")
    return DrillResult(killed, kill_t, load, max(0.0, recovery), replicas_back)
