"""Exercises of stage 06 (hyperparameter tuning). Each check inspects the Ray Tune objects it is given."""

from __future__ import annotations

import math

from kit.course.exercises import NotYetRight, exercise

#: Epochs every trial of the stage's search trains for (ASHA's max_t).
EPOCHS = 4
#: The metrics train_func reports each epoch that a search can optimise, with their direction.
METRIC_MODES = {"test_accuracy": "max", "test_loss": "min"}
LR_RANGE = (1e-3, 1e-1)
HIDDEN = (32, 64)
ASHA_KEYS = {"metric", "mode", "grace_period", "max_t", "reduction_factor", "time_attr"}


def _reference_space():
    from ray import tune

    return {"lr": tune.loguniform(*LR_RANGE), "hidden": tune.choice(list(HIDDEN))}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


@exercise(
    "06.search_space",
    "A search space: learning rate and width",
    "Use tune.loguniform(low, high) for the learning rate (it spans orders of magnitude) and "
    "tune.choice([...]) for the hidden width.",
    reference=_reference_space,
)
def check_search_space(space) -> None:
    from ray.tune.search.sample import Categorical, Domain, Float, LogUniform

    from kit.config.train import TrainConfig

    if not isinstance(space, dict):
        raise NotYetRight(f"expected a dict of TrainConfig fields, got {type(space).__name__}")
    unknown = sorted(set(space) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise NotYetRight(f"{unknown} are not TrainConfig fields: train_func would refuse the trial")
    missing = sorted({"lr", "hidden"} - set(space))
    if missing:
        raise NotYetRight(f"the space has no {missing}: search both lr and hidden")
    extra = sorted(set(space) - {"lr", "hidden"})
    if extra:
        raise NotYetRight(f"search only lr and hidden here; remove {extra}")
    lr, hidden = space["lr"], space["hidden"]
    for name, value in (("lr", lr), ("hidden", hidden)):
        if isinstance(value, (list, tuple)):
            raise NotYetRight(f"{name} is a plain {type(value).__name__}: Tune would pass the list itself to "
                              f"train_func; wrap the values in tune.choice(...)")
        if not isinstance(value, Domain):
            raise NotYetRight(f"{name} is the fixed value {value!r}, not a Tune distribution: nothing is searched")
    if not isinstance(lr, Float):
        raise NotYetRight(f"lr is a {type(lr).__name__}: use a continuous distribution (tune.loguniform)")
    if not isinstance(lr.get_sampler(), LogUniform):
        raise NotYetRight(
            f"lr is sampled {type(lr.get_sampler()).__name__}: uniform over [{LR_RANGE[0]:g}, {LR_RANGE[1]:g}] puts "
            "90% of the samples above 0.01; use tune.loguniform so each order of magnitude is tried equally"
        )
    if not (_close(lr.lower, LR_RANGE[0]) and _close(lr.upper, LR_RANGE[1])):
        raise NotYetRight(f"lr spans [{lr.lower:g}, {lr.upper:g}], expected [{LR_RANGE[0]:g}, {LR_RANGE[1]:g}]")
    if not isinstance(hidden, Categorical):
        raise NotYetRight(f"hidden is a {type(hidden).__name__}: widths are a few discrete values, use tune.choice")
    if sorted(hidden.categories) != list(HIDDEN):
        raise NotYetRight(f"hidden chooses among {hidden.categories}, expected {list(HIDDEN)}")


@exercise(
    "06.asha_options",
    "ASHA: stop poor trials early",
    f"ASHA needs the metric train_func reports and its direction (test_accuracy is maximised), "
    f"a grace_period (epochs every trial gets) smaller than max_t (the trials' {EPOCHS} epochs), and "
    "a reduction_factor (keep the best 1/reduction_factor at each rung).",
    reference=lambda: {"metric": "test_accuracy", "mode": "max", "grace_period": 1, "max_t": EPOCHS,
                       "reduction_factor": 2},
)
def check_asha_options(options) -> None:
    from ray.tune.schedulers import ASHAScheduler

    if not isinstance(options, dict):
        raise NotYetRight(f"expected a dict for ASHAScheduler(**asha_options), got {type(options).__name__}")
    unknown = sorted(set(options) - ASHA_KEYS)
    if unknown:
        raise NotYetRight(f"unknown option(s) {unknown}; use {sorted(ASHA_KEYS - {'time_attr'})}")
    metric, mode = options.get("metric"), options.get("mode")
    if metric not in METRIC_MODES:
        raise NotYetRight(f"metric {metric!r} is not reported by train_func each epoch; "
                          f"use one of {sorted(METRIC_MODES)}")
    if mode != METRIC_MODES[metric]:
        raise NotYetRight(f"mode={mode!r} for {metric}: ASHA would keep the worst trials and stop the best "
                          f"(use mode={METRIC_MODES[metric]!r})")
    grace, max_t = options.get("grace_period", 1), options.get("max_t", EPOCHS)
    factor = options.get("reduction_factor", 4)
    for name, value in (("grace_period", grace), ("max_t", max_t), ("reduction_factor", factor)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise NotYetRight(f"{name} must be a positive integer, got {value!r}")
    if max_t != EPOCHS:
        raise NotYetRight(f"max_t={max_t} but every trial trains {EPOCHS} epochs: max_t is the longest a trial runs")
    if grace >= max_t:
        raise NotYetRight(f"grace_period={grace} >= max_t={max_t}: every trial trains to the end, "
                          "ASHA never stops one early")
    if factor < 2:
        raise NotYetRight("reduction_factor must be at least 2: with 1 ASHA keeps every trial at every rung")
    ASHAScheduler(**options)  # Ray's own argument checks
