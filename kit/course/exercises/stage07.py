"""Exercises of stage 07 (Ray Serve): turn batching on sensibly, bound autoscaling, write a batched deployment
behind an ingress that holds a handle (run for real), and (stretch) scale to zero."""

from __future__ import annotations

from kit.config.serve import ServeConfig
from kit.course.exercises import NotYetRight, exercise, runs_only_locally
from kit.course.exercises import stage07_deployment as deployment

_AUTOSCALING_KEYS = {"min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests",
                     "upscale_delay_s", "downscale_delay_s", "metrics_interval_s", "look_back_period_s"}


def _reference_batched() -> ServeConfig:
    return ServeConfig(model_dir="(the stage's model)", max_batch_size=16, batch_wait_timeout_s=0.01)


@exercise(
    "07.batching",
    "Dynamic batching: gather concurrent requests into one forward pass",
    "dataclasses.replace(config, max_batch_size=..., batch_wait_timeout_s=...): a batch of 8-64 requests, "
    "and a wait short enough (a few milliseconds) that a lone request is not held back long.",
    reference=_reference_batched,
)
def check_batching(config) -> None:
    if not isinstance(config, ServeConfig):
        raise NotYetRight(f"expected a ServeConfig (use dataclasses.replace(config, ...)), got {type(config).__name__}")
    size, wait = config.max_batch_size, config.batch_wait_timeout_s
    if not isinstance(size, int) or isinstance(size, bool):
        raise NotYetRight(f"max_batch_size must be an int, got {size!r}")
    if size <= 1:
        raise NotYetRight(f"max_batch_size={size} means no batching: every request gets its own forward pass")
    if size > 64:
        raise NotYetRight(f"max_batch_size={size}: more than max_ongoing_requests lets in at once, and a huge "
                          "batch makes every request in it wait for the slowest")
    if not isinstance(wait, (int, float)) or wait <= 0:
        raise NotYetRight(f"batch_wait_timeout_s must be a positive number of seconds, got {wait!r}")
    if wait > 0.05:
        raise NotYetRight(f"batch_wait_timeout_s={wait}: a request arriving alone would wait {wait * 1e3:.0f} ms "
                          "for company; keep it to a few milliseconds")
    if config.max_ongoing_requests < size:
        raise NotYetRight(f"max_ongoing_requests={config.max_ongoing_requests} is below max_batch_size={size}: "
                          "a replica never receives enough requests at once to fill a batch")


@exercise(
    "07.autoscaling",
    "Autoscaling: between one and a few replicas, driven by ongoing requests",
    "A dict with min_replicas >= 1, max_replicas > min_replicas and target_ongoing_requests (requests per "
    "replica Serve aims for) below max_ongoing_requests. Validate with ray.serve.config.AutoscalingConfig(**d).",
    reference=lambda: {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 8},
)
def check_autoscaling(autoscaling) -> None:
    from ray.serve.config import AutoscalingConfig

    if not isinstance(autoscaling, dict):
        raise NotYetRight(f"expected a dict for autoscaling_config, got {type(autoscaling).__name__}")
    unknown = set(autoscaling) - _AUTOSCALING_KEYS
    if unknown:
        raise NotYetRight(f"unknown key(s) {sorted(unknown)}; Serve knows {sorted(_AUTOSCALING_KEYS)}")
    try:
        parsed = AutoscalingConfig(**autoscaling)
    except (ValueError, TypeError) as error:
        raise NotYetRight(f"Serve rejects it: {str(error).splitlines()[0]}") from None
    if parsed.min_replicas < 1:
        raise NotYetRight("min_replicas=0 scales to zero: the first request after a quiet spell waits for a "
                          "replica to start (seconds); keep one warm here")
    if parsed.max_replicas <= parsed.min_replicas:
        raise NotYetRight(f"max_replicas={parsed.max_replicas} leaves no room to scale above "
                          f"min_replicas={parsed.min_replicas}")
    limit = ServeConfig(model_dir="").max_ongoing_requests
    target = parsed.target_ongoing_requests
    if target is not None and target >= limit:
        raise NotYetRight(f"target_ongoing_requests={parsed.target_ongoing_requests} is not below "
                          f"max_ongoing_requests={limit}: replicas would be full before Serve adds one")



_LAST: list[deployment.BurstResult] = []


def last_run() -> deployment.BurstResult | None:
    """What the last run of exercise 07.deployment (the learner's answer or the skip-ahead) measured."""
    return _LAST[-1] if _LAST else None


def _run_checked(app) -> deployment.BurstResult | None:
    from kit.serve import predictor

    parts = deployment.static_problems(app)
    if runs_only_locally("07.deployment"):
        return None  # its replicas would load this machine's model file on the cluster's nodes
    model_dir = str(predictor.ensure_model())
    rows = predictor.sample_instances(deployment.BURST, seed=7)
    expected = predictor.Predictor(model_dir, backend="auto").predict(rows)
    result = deployment.run_burst(parts, rows)
    _LAST.append(result)
    seen = sum(result.batch_sizes)
    if result.labels != expected:
        raise NotYetRight(f"the ingress answered {result.labels[:8]}... for {len(rows)} rows; the model says "
                          f"{expected[:8]}...: return the labels of the rows in the batch, in their order")
    if seen != len(rows):
        raise NotYetRight(f"{parts.model.name}.{parts.method}() saw {seen} of {len(rows)} requests: the ingress "
                          f"must call it through its handle for every request "
                          f"(await handle.{parts.method}.remote(row))")
    if max(result.batch_sizes) <= 1:
        raise NotYetRight(f"every call had batch size 1 ({len(result.batch_sizes)} calls for {len(rows)} concurrent "
                          "requests): let the batch wait a few milliseconds (batch_wait_timeout_s) and let a replica "
                          "take several requests at once (max_ongoing_requests)")
    print(f"   {result}")
    return result


def _reference_deployment():
    from kit.serve import predictor

    app = deployment.reference_app(str(predictor.ensure_model()))
    _run_checked(app)  # the skip-ahead runs too: the notebook goes on with a measured run
    return app


@exercise(
    "07.deployment",
    "Write a deployment graph: a batched model behind an ingress that holds a handle",
    "@serve.deployment class Model: __init__(self, model_dir) loads predictor.Predictor(model_dir, backend='auto'); "
    "@serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02) async def predict(self, rows) returns "
    "self.predictor.predict(rows), one label per row. @serve.deployment class Front: __init__(self, model) keeps "
    "the handle; async def __call__(self, row): return await self.model.predict.remote(row). "
    "Answer: Front.bind(Model.bind(model_dir)).",
    reference=_reference_deployment,
)
def check_deployment(app) -> None:
    """Reasoned first (no Ray: specific hints), then run: a burst through the ingress, batch sizes read back."""
    _run_checked(app)


#: The stretch's prompt: scale to zero after this many idle seconds, up to two replicas, one warm at deploy.
IDLE_TO_ZERO_S = 120


@exercise(
    "07.scale_to_zero",
    "Stretch: scale to zero when idle, and know what it costs",
    f"A dict: min_replicas=0, max_replicas=2, initial_replicas=1 (warm at deploy), and "
    f"downscale_to_zero_delay_s={IDLE_TO_ZERO_S} (the 1 -> 0 step; downscale_delay_s governs the others). "
    "Validate with ray.serve.config.AutoscalingConfig(**d).",
    reference=lambda: {"min_replicas": 0, "max_replicas": 2, "initial_replicas": 1,
                       "downscale_to_zero_delay_s": IDLE_TO_ZERO_S},
)
def check_scale_to_zero(autoscaling) -> None:
    from ray.serve.config import AutoscalingConfig

    if not isinstance(autoscaling, dict):
        raise NotYetRight(f"expected a dict for autoscaling_config, got {type(autoscaling).__name__}")
    unknown = set(autoscaling) - set(AutoscalingConfig.model_fields)
    if unknown:
        raise NotYetRight(f"unknown key(s) {sorted(unknown)}; Serve knows {sorted(AutoscalingConfig.model_fields)}")
    try:
        parsed = AutoscalingConfig(**autoscaling)
    except (ValueError, TypeError) as error:
        raise NotYetRight(f"Serve rejects it: {str(error).splitlines()[0]}") from None
    if parsed.min_replicas != 0:
        raise NotYetRight(f"min_replicas={parsed.min_replicas} keeps {parsed.min_replicas} replica(s) warm "
                          "forever: scale-to-zero is min_replicas=0")
    if parsed.max_replicas != 2:
        raise NotYetRight(f"max_replicas={parsed.max_replicas}: the prompt allows up to 2 replicas")
    if parsed.initial_replicas != 1:
        raise NotYetRight(f"initial_replicas={parsed.initial_replicas} (unset means min_replicas, 0): the app "
                          "would deploy with no replica and its first request would wait for a cold start")
    to_zero = parsed.downscale_to_zero_delay_s
    if to_zero is None:
        raise NotYetRight(f"no downscale_to_zero_delay_s: the last replica would follow downscale_delay_s="
                          f"{parsed.downscale_delay_s:.0f} s; set the 1 -> 0 delay to {IDLE_TO_ZERO_S} s")
    if to_zero != IDLE_TO_ZERO_S:
        raise NotYetRight(f"downscale_to_zero_delay_s={to_zero}: the last replica goes after {to_zero:.0f} s "
                          f"idle; the prompt asks for {IDLE_TO_ZERO_S} s")


def cold_start_cost(drill=None) -> str:
    """What a request arriving after scale-to-zero waits for, from this session's measurements: the start of
    the exercise's replicas and (``drill``: a :class:`kit.serve.rayserve.DrillResult`) a replica's replacement."""
    run = last_run()
    found = []
    if run is not None:
        found.append(f"serve.run started the exercise's two deployments from nothing in {run.start_s:.1f} s")
    back = getattr(drill, "replicas_back_s", None)
    if back is not None:
        found.append(f"the drill's killed replica was noticed and replaced in {back:.1f} s")
    if not found:
        return "no replica start was measured in this session (run exercise 07.deployment first)"
    return "A request arriving after scale-to-zero waits for a replica to start. Measured here: " + "; ".join(found)
