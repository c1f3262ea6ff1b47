"""Stage 06 exercises reject wrong answers with specific messages and accept right ones."""

from __future__ import annotations

import itertools
import re

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule
from ray.tune.search.basic_variant import BasicVariantGenerator

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage06, tuner_run


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


CHOICE = tune.choice([32, 64])


@pytest.mark.parametrize(("answer", "message"), [
    ([0.001, 0.1], "expected a dict of TrainConfig fields"),
    ({"learning_rate": tune.loguniform(1e-3, 1e-1), "hidden": CHOICE}, "not TrainConfig fields"),
    ({"lr": tune.loguniform(1e-3, 1e-1)}, r"the space has no \['hidden'\]"),
    ({"lr": tune.loguniform(1e-3, 1e-1), "hidden": CHOICE, "epochs": tune.choice([1, 2])}, "search only lr"),
    ({"lr": 0.01, "hidden": CHOICE}, "fixed value 0.01, not a Tune distribution"),
    ({"lr": tune.loguniform(1e-3, 1e-1), "hidden": [32, 64]}, "hidden is a plain list"),
    ({"lr": tune.uniform(1e-3, 1e-1), "hidden": CHOICE}, "90% of the samples above 0.01"),
    ({"lr": tune.choice([1e-3, 1e-1]), "hidden": CHOICE}, "use a continuous distribution"),
    ({"lr": tune.loguniform(1e-4, 1e-1), "hidden": CHOICE}, r"lr spans \[0.0001, 0.1\]"),
    ({"lr": tune.loguniform(1e-3, 1e-1), "hidden": tune.randint(32, 65)}, "use tune.choice"),
    ({"lr": tune.loguniform(1e-3, 1e-1), "hidden": tune.choice([32, 128])}, "expected \\[32, 64\\]"),
])
def test_search_space_rejects_wrong_answers(answer, message):
    _wrong("06.search_space", answer, message)


def test_search_space_accepts_the_reference_in_any_order():
    space = {"hidden": tune.choice([64, 32]), "lr": tune.loguniform(0.001, 0.1)}
    assert exercises.check("06.search_space", space) is space


STEPS = stage06.STEPS


def objective(config):
    for step in range(1, STEPS + 1):
        tune.report(stage06.toy_metrics(config, step))


def _tuner(trainable=objective, space=None, scheduler="asha", **config):
    """A Tuner like the reference, with ``config`` overriding TuneConfig's arguments."""
    if scheduler == "asha":
        scheduler = ASHAScheduler(grace_period=1, max_t=STEPS, reduction_factor=2)
    options = {"metric": "accuracy", "mode": "max", "num_samples": 8, "max_concurrent_trials": 1, **config}
    return tune.Tuner(trainable, param_space=stage06._reference_space() if space is None else space,
                      tune_config=tune.TuneConfig(scheduler=scheduler, **options))


@pytest.fixture
def one_slot(monkeypatch):
    """This machine holds one trial at once (as in the 2 GiB cgroup), whatever runs the tests."""
    monkeypatch.setattr(tuner_run, "slots_here", lambda: 1)


class Trainable(tune.Trainable):
    def setup(self, config):
        self.count = 0

    def step(self):
        self.count += 1
        return stage06.toy_metrics(self.config, self.count)


@pytest.mark.parametrize(("answer", "message"), [
    (lambda: "tuner", "expected a ray.tune.Tuner"),
    (lambda: _tuner(trainable=Trainable), "the trainable is the class Trainable"),
    (lambda: _tuner(space={"lr": tune.loguniform(1e-3, 1e-1)}), r"param_space has no \['hidden'\]"),
    (lambda: _tuner(space={"lr": 0.01, "hidden": 32}), "fixed values only"),
    (lambda: _tuner(metric=None, mode=None), "no metric"),
    (lambda: _tuner(scheduler=ASHAScheduler(metric="accuracy", mode="max", max_t=STEPS)), "set in both"),
    (lambda: _tuner(mode="min"), r"rank the worst trials first.*mode='max'"),
    (lambda: _tuner(metric="loss"), r"use mode='min'"),
    (lambda: _tuner(mode="maximum"), "mode='maximum'"),
    (lambda: _tuner(scheduler=None), "no scheduler"),
    (lambda: _tuner(scheduler=MedianStoppingRule()), "asks for ASHAScheduler"),
    (lambda: _tuner(scheduler=ASHAScheduler(max_t=100)), "max_t=100 but the toy run reports 8"),
    (lambda: _tuner(scheduler=ASHAScheduler(grace_period=STEPS, max_t=STEPS)), "never stops one early"),
    (lambda: _tuner(num_samples=2), "num_samples=2"),
    (lambda: _tuner(num_samples=100), "more takes too long"),
    (lambda: _tuner(search_alg=BasicVariantGenerator()), "leave search_alg unset"),
    (lambda: _tuner(max_concurrent_trials=None), "max_concurrent_trials is not set"),
    (lambda: _tuner(max_concurrent_trials=4), "holds 1 trial"),
])
def test_tuner_rejects_wrong_answers_before_running(one_slot, answer, message):
    _wrong("06.tuner", answer(), message)


def _history(values, metric="accuracy"):
    return [{metric: value, "training_iteration": i} for i, value in enumerate(values, 1)]


STOPPED = [_history([0.5, 0.6, 0.7, 0.8]), _history([0.3])]


@pytest.mark.parametrize(("histories", "metric", "mode", "message"), [
    ([], "accuracy", "max", "no trial ran"),
    ([_history([0.5, 0.6]), []], "accuracy", "max", "a trial reported nothing"),
    (STOPPED, "acc", "max", r"compares 'acc', but the trials report \['accuracy'\]"),
    ([_history([0.5]), _history([0.4])], "accuracy", "max", "each trial reported once"),
    ([_history([0.9, 0.5, 0.2, 0.1], "acc"), _history([0.8], "acc")], "acc", "max", "acc falls .* swap the mode"),
    ([_history([0.5, 0.6, 0.7, 0.8])] * 2, "accuracy", "max", "no trial stopped early: all ran 4 steps"),
])
def test_judge_reads_the_trials_reports(histories, metric, mode, message):
    with pytest.raises(NotYetRight, match=message):
        tuner_run.judge(histories, metric, mode, max_t=4)


def test_judge_rejects_a_class_that_starts_over_each_step_and_counts_early_stops():
    with pytest.raises(NotYetRight, match="starts over each call"):
        tuner_run.judge([_history([0.3, 0.3, 0.3, 0.3]), _history([0.2])], "accuracy", "max", 4, stateful=True)
    with pytest.raises(NotYetRight, match="counts 'step'"):
        tuner_run.judge(STOPPED, "accuracy", "max", 4, time_attr="step")
    summary = tuner_run.judge(STOPPED, "accuracy", "max", 4)
    assert "[4, 1]" in summary and "stopped 1 of 2" in summary and "best accuracy 0.800" in summary


def test_toy_metrics_improve_with_steps_and_peak_at_lr_1e_2():
    curve = [stage06.toy_metrics({"lr": 0.003, "hidden": 32}, step) for step in range(1, STEPS + 1)]
    assert all(a["accuracy"] < b["accuracy"] and a["loss"] > b["loss"] for a, b in itertools.pairwise(curve))
    final = {lr: stage06.toy_metrics({"lr": lr, "hidden": 64}, STEPS)["accuracy"] for lr in (1e-3, 1e-2, 1e-1)}
    assert max(final, key=final.get) == 1e-2


def test_class_trainable_rejects_wrong_classes_before_running():
    _wrong("06.class_trainable", objective, "subclasses tune.Trainable")

    class NoStep(tune.Trainable):
        def setup(self, config):
            pass

    _wrong("06.class_trainable", NoStep, r"does not define step\(\)")
    _wrong("06.class_trainable", Trainable, r"does not define reset_config")


def test_tuner_runs_the_reference_and_rejects_an_unreported_metric(local_ray, capsys):
    """The real engine: the reference search runs, ASHA stops trials, and Tune's refusal becomes a hint."""
    reference = exercises.skip_ahead("06.tuner")
    assert exercises.check("06.tuner", reference) is reference
    out = capsys.readouterr().out
    assert "correct" in out and "ASHA stopped" in out
    stopped = re.search(r"ASHA stopped (\d+) of (\d+)", out)
    assert stopped and 0 < int(stopped[1]) < int(stopped[2])

    def renamed(config):
        for step in range(1, STEPS + 1):
            tune.report({"acc": stage06.toy_metrics(config, step)["accuracy"]})

    _wrong("06.tuner", _tuner(renamed, max_concurrent_trials=tuner_run.slots_here() or 1),
           "compares 'accuracy', but the trials' reports do not include it")
    cls = exercises.skip_ahead("06.class_trainable")
    assert exercises.check("06.class_trainable", cls) is cls
