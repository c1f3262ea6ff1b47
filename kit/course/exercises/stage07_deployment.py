"""Exercise 07.deployment: the learner's own Serve application, checked by running it.

The answer is an application ``Front.bind(Model.bind(model_dir))``: ``Model`` is a ``@serve.deployment``
class with one ``@serve.batch`` method that takes a list of pixel rows and returns one label per row,
``Front`` is the ingress that holds the ``DeploymentHandle`` Serve passes it and awaits the model.
:func:`static_problems` reasons about the answer without Ray (fast, specific hints); :func:`run_burst`
runs it on the local Serve (one replica each, its own application name and route), sends a burst of
concurrent requests through the ingress, reads the batch sizes the model's method saw, and deletes it.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
from dataclasses import dataclass
from typing import Any

from kit.course.exercises import NotYetRight

#: The exercise's own application: next to the stage's application, never in its place.
APP_NAME = "exercise07"
ROUTE = "/exercise07"
BURST = 16  # concurrent requests, one row each
#: One replica of each deployment, one try of a constructor that raises (Serve's default retries it 20 times),
#: and a quick stop once the burst is answered (Serve's defaults wait 2-20 s).
RUN_OPTIONS = {"num_replicas": 1, "max_constructor_retry_count": 1, "graceful_shutdown_wait_loop_s": 0.1,
               "graceful_shutdown_timeout_s": 1.0}


@dataclass(frozen=True)
class Parts:
    """What the check found in the answer's graph."""

    ingress: Any  # ray.serve.Deployment (bound)
    model: Any  # ray.serve.Deployment (bound)
    method: str  # the model's @serve.batch method
    max_batch_size: int
    batch_wait_timeout_s: float


@dataclass(frozen=True)
class BurstResult:
    """What the run measured."""

    labels: list
    batch_sizes: list[int]
    start_s: float  # serve.run: from nothing to healthy replicas (what a cold start costs)
    burst_s: float

    def __str__(self) -> str:
        return (f"{len(self.labels)} concurrent requests answered in {self.burst_s * 1e3:.0f} ms; the batch "
                f"method saw batches of {self.batch_sizes}; replicas started in {self.start_s:.1f} s")


def static_problems(app: Any) -> Parts:
    """The answer's ingress and model, or :class:`NotYetRight` for what can be seen without running it."""
    from ray.serve import Application
    from ray.serve.deployment import Deployment

    if isinstance(app, Deployment):
        raise NotYetRight(f"{app.name} is a Deployment, not an application: bind it with its arguments, "
                          "Front.bind(Model.bind(model_dir))")
    if not isinstance(app, Application):
        what = f"the plain class {app.__name__}" if isinstance(app, type) else type(app).__name__
        raise NotYetRight(f"expected an application, Front.bind(Model.bind(model_dir)), got {what}; "
                          "decorate both classes with @serve.deployment")
    ingress: Any = app._bound_deployment  # a bound Deployment (Serve's stub types init_kwargs as a tuple)
    bound = [a for a in (*ingress.init_args, *ingress.init_kwargs.values()) if isinstance(a, Application)]
    if not bound:
        raise NotYetRight(f"{ingress.name}.bind(...) got no bound deployment, so it holds no handle: pass "
                          "Model.bind(model_dir) to it; Serve hands the ingress a DeploymentHandle in its place")
    if len(bound) > 1:
        raise NotYetRight(f"{ingress.name} is bound to {len(bound)} deployments; this exercise wants one model")
    model = bound[0]._bound_deployment
    cls = model.func_or_class
    if not isinstance(cls, type):
        raise NotYetRight(f"the model deployment {model.name} is a function; write a class with an "
                          "@serve.batch method (a replica keeps the model loaded between requests)")
    batched = [name for name, value in inspect.getmembers(cls) if hasattr(value, "set_max_batch_size")]
    if not batched:
        raise NotYetRight(f"no method of {cls.__name__} is decorated with @serve.batch: every call would have "
                          "batch size 1, one forward pass per request")
    method = getattr(cls, batched[0])
    size, wait = method._get_max_batch_size(), method._get_batch_wait_timeout_s()
    if size <= 1:
        raise NotYetRight(f"@serve.batch(max_batch_size={size}) means batches of one: no batching")
    if wait > 0.5:
        raise NotYetRight(f"batch_wait_timeout_s={wait}: a request arriving alone would wait {wait:.1f} s for "
                          "company; a few to tens of milliseconds is enough")
    front = ingress.func_or_class
    if not isinstance(front, type) or not any("__call__" in vars(k) for k in front.__mro__[:-1]):
        raise NotYetRight(f"{ingress.name} has no __call__: the check calls the ingress as handle.remote(row), "
                          "which runs its __call__(self, row)")
    if not inspect.iscoroutinefunction(front.__call__):
        raise NotYetRight(f"{front.__name__}.__call__ is not async def: it should `await` the model's response "
                          "(a sync method would block a thread per request on .result())")
    return Parts(ingress, model, batched[0], size, wait)


def _recording(cls: type, name: str, size: int, wait: float) -> type:
    """``cls`` whose batch method also records the size of each batch (the learner's code runs unchanged)."""
    from ray import serve

    inner = getattr(cls, name).__wrapped__  # the learner's function under @serve.batch

    async def recorded(self, batch, *args, **kwargs):
        self.__dict__.setdefault("_kit_batch_sizes", []).append(len(batch))
        return await inner(self, batch, *args, **kwargs)

    functools.update_wrapper(recorded, inner)  # same name and signature: serve.batch reads them

    def kit_batch_sizes(self) -> list[int]:
        return list(self.__dict__.get("_kit_batch_sizes", []))

    batch = serve.batch(max_batch_size=size, batch_wait_timeout_s=wait)(recorded)
    return type(cls.__name__, (cls,), {name: batch, "kit_batch_sizes": kit_batch_sizes})


def _translate(error: BaseException, parts: Parts) -> str:
    text = str(error)
    lengths = re.search(r"input list has length (\d+) but the returned list has length (\d+)", text)
    if lengths:
        return (f"{parts.method}() returned {lengths[2]} results for a batch of {lengths[1]} (Serve: \"Batched "
                "function doesn't preserve batch size\"): return one result per input, in the order they came")
    if "DeploymentResponse` is not serializable" in text:
        return (f"{parts.ingress.name} returned the model's DeploymentResponse instead of its value: "
                "`return await self.<handle>.<method>.remote(row)`")
    last = [line for line in text.splitlines() if line.strip()][-1:] or [type(error).__name__]
    return f"a request failed: {last[0].strip()[:300]}"


def run_burst(parts: Parts, rows: list[list[float]]) -> BurstResult:
    """Run the answer (:data:`RUN_OPTIONS`), send ``rows`` concurrently through the ingress, delete it."""
    import asyncio

    from ray import serve

    from kit.serve import rayserve
    from kit.serve.loadgen import run_sync

    model_cls = _recording(parts.model.func_or_class, parts.method, parts.max_batch_size,
                           parts.batch_wait_timeout_s)
    model = parts.model.options(func_or_class=model_cls, **RUN_OPTIONS).bind(
        *parts.model.init_args, **parts.model.init_kwargs)
    swap = {id(a): model for a in (*parts.ingress.init_args, *parts.ingress.init_kwargs.values())
            if hasattr(a, "_bound_deployment")}
    app = parts.ingress.options(**RUN_OPTIONS).bind(
        *(swap.get(id(a), a) for a in parts.ingress.init_args),
        **{k: swap.get(id(a), a) for k, a in parts.ingress.init_kwargs.items()})
    rayserve.start_serve()
    began = time.monotonic()
    try:
        try:
            handle = serve.run(app, name=APP_NAME, route_prefix=ROUTE, logging_config=rayserve.QUIET_LOGS)
        except Exception as error:  # Serve raises RuntimeError or its own exceptions when replicas fail to start
            raise NotYetRight(f"serve.run failed: {_translate(error, parts)}") from None
        start_s = time.monotonic() - began

        async def burst() -> tuple[list, float, list[int]]:
            began = time.monotonic()
            answers = await asyncio.gather(*(handle.remote(row) for row in rows), return_exceptions=True)
            took = time.monotonic() - began
            model = serve.get_deployment_handle(parts.model.name, app_name=APP_NAME)
            return answers, took, await model.kit_batch_sizes.remote()

        answers, burst_s, sizes = run_sync(burst())
        failed = [a for a in answers if isinstance(a, BaseException)]
        if failed:
            raise NotYetRight(f"{len(failed)} of {len(rows)} requests failed; {_translate(failed[0], parts)}")
    finally:
        serve.delete(APP_NAME)
    return BurstResult(list(answers), sizes, start_s, burst_s)


def reference_app(model_dir: str) -> Any:
    """The reference answer: ``DigitsFront.bind(DigitsModel.bind(model_dir))`` (classes made here, so that
    importing this module does not import Ray Serve)."""
    from ray import serve

    from kit.serve.predictor import Predictor

    @serve.deployment
    class DigitsModel:
        def __init__(self, model_dir: str) -> None:
            self.predictor = Predictor(model_dir, backend="auto")  # NumPy for the kit's MLP: no torch

        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
        async def predict(self, rows: list[list[float]]) -> list[int]:
            return self.predictor.predict(rows)  # one forward pass for the whole batch

    @serve.deployment
    class DigitsFront:
        def __init__(self, model) -> None:  # Serve passes a DeploymentHandle for the bound DigitsModel
            self.model = model

        async def __call__(self, row: list[float]) -> int:
            return await self.model.predict.remote(row)

    # @serve.deployment turns the classes into Deployments (with .bind); mypy sees the plain classes
    return DigitsFront.bind(DigitsModel.bind(model_dir))  # type: ignore[attr-defined]
