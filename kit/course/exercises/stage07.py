"""Exercises of stage 07 (Ray Serve): turn batching on sensibly, and bound autoscaling."""

from __future__ import annotations

from kit.config.serve import ServeConfig
from kit.course.exercises import NotYetRight, exercise

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

