"""Exercises of stage 06 (hyperparameter tuning): a search space, a ``Tuner`` with ASHA run on the local Ray,
and (stretch) a class trainable - the actor Tune keeps for a trial, written by hand.

The Tuner checks reason about the answer first (fast, specific hints), then run it with
:func:`kit.course.exercises.tuner_run.run` on the toy objective of that module (no torch: seconds, little memory)."""

from __future__ import annotations

import dataclasses
import math

from kit.course.exercises import NotYetRight, exercise, runs_only_locally
from kit.course.exercises import tuner_run as toy
from kit.course.exercises.tuner_run import STEPS, toy_metrics

__all__ = ["EPOCHS", "STEPS", "toy_metrics"]

#: Epochs every trial of the stage's search trains for (ASHA's max_t).
EPOCHS = 4
#: The metrics train_func reports each epoch that a search can optimise, with their direction.
METRIC_MODES = {"test_accuracy": "max", "test_loss": "min"}
LR_RANGE = (1e-3, 1e-1)
HIDDEN = (32, 64)


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



def objective(config: dict) -> None:
    """The reference function trainable: one ``tune.report`` per step of the toy training run."""
    from ray import tune

    for step in range(1, STEPS + 1):
        tune.report(toy_metrics(config, step))


def _reference_tuner():
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    return tune.Tuner(objective, param_space=_reference_space(), tune_config=tune.TuneConfig(
        metric="accuracy", mode="max", num_samples=toy.MAX_SAMPLES // 2, max_concurrent_trials=toy.slots_here(),
        scheduler=ASHAScheduler(grace_period=1, max_t=STEPS, reduction_factor=2)))


@exercise(
    "06.tuner",
    "A Tuner with ASHA, run on the local Ray",
    "def objective(config): for step in range(1, STEPS + 1): tune.report(stage06.toy_metrics(config, step)). "
    "Then tune.Tuner(objective, param_space=space, tune_config=tune.TuneConfig(metric='accuracy', mode='max', "
    "num_samples=8, max_concurrent_trials=slots.count, scheduler=ASHAScheduler(grace_period=1, max_t=STEPS, "
    "reduction_factor=2))). Pass the Tuner itself: the check calls fit().",
    reference=_reference_tuner,
)
def check_tuner(tuner) -> None:
    """Reason about the Tuner's parts, then run them (concurrency capped, steps bounded) and judge the results."""
    from ray import tune

    if isinstance(tuner, tune.Tuner) and runs_only_locally("06.tuner"):
        return  # a Ray Client Tuner keeps its parts on the cluster: nothing to read here
    parts = toy.parts(tuner)
    if isinstance(parts.trainable, type):
        raise NotYetRight(f"the trainable is the class {parts.trainable.__name__}: here write a function "
                          "objective(config) that calls tune.report(...) each step (the stretch writes a class)")
    if not callable(parts.trainable):
        raise NotYetRight(f"the trainable is {toy.short(parts.trainable)}, not a function objective(config)")
    toy.check_config(parts)
    print(toy.run(parts))


class _Counter:  # the stretch's reference, built lazily so that importing the module does not import Ray
    cls: type | None = None


def _reference_trainable() -> type:
    if _Counter.cls is None:
        from ray import tune

        class ToyTrainable(tune.Trainable):
            """One trial's actor: setup() once, then step() once per iteration, the step count kept on self."""

            def setup(self, config: dict) -> None:
                self.step_count = 0

            def reset_config(self, new_config: dict) -> bool:
                self.step_count = 0  # Tune has set self.config to new_config
                return True

            def step(self) -> dict:
                self.step_count += 1
                return toy_metrics(self.config, self.step_count)

        _Counter.cls = ToyTrainable
    return _Counter.cls


@exercise(
    "06.class_trainable",
    "Stretch: a class trainable - the actor behind a trial",
    "class ToyTrainable(tune.Trainable): setup(self, config) runs once per trial (self.step_count = 0); "
    "step(self) runs once per iteration: self.step_count += 1 and return toy_metrics(self.config, "
    "self.step_count) - a dict, which Tune reports for you (no tune.report in a class); "
    "reset_config(self, new_config): self.step_count = 0 and return True, so the next trial reuses the actor.",
    reference=_reference_trainable,
)
def check_class_trainable(cls) -> None:
    """Run the class under the reference search (ASHA on accuracy) and check that it kept state between steps."""
    from ray import tune

    if not isinstance(cls, type) or not issubclass(cls, tune.Trainable):
        raise NotYetRight(f"expected a class that subclasses tune.Trainable, got {toy.short(cls)}")
    if cls.step is tune.Trainable.step:
        raise NotYetRight(f"{cls.__name__} does not define step(): Tune calls it once per iteration")
    if cls.setup is tune.Trainable.setup:
        raise NotYetRight(f"{cls.__name__} does not define setup(config): that is where a trial's state starts")
    if cls.reset_config is tune.Trainable.reset_config:
        raise NotYetRight(f"{cls.__name__} does not define reset_config(new_config): without it Tune cannot reuse "
                          "the actor, and starts a new process for every trial (seconds each)")
    if runs_only_locally("06.class_trainable"):
        return
    parts = toy.parts(_reference_tuner())
    config = dataclasses.replace(parts.tune_config, num_samples=toy.MIN_SAMPLES)
    print(toy.run(toy.Parts(cls, parts.param_space, config), stateful=True,
                  cap_from="the reference search's max_concurrent_trials"))
