"""Stage 06 exercises reject wrong answers with specific messages and accept right ones."""

from __future__ import annotations

import pytest
from ray import tune

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage06


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


GOOD = {"metric": "test_accuracy", "mode": "max", "grace_period": 1, "max_t": stage06.EPOCHS,
        "reduction_factor": 2}


@pytest.mark.parametrize(("change", "message"), [
    ({"mode": "min"}, "ASHA would keep the worst trials"),
    ({"metric": "accuracy"}, "not reported by train_func"),
    ({"metric": "test_loss"}, r"use mode='min'"),
    ({"grace_period": stage06.EPOCHS}, "never stops one early"),
    ({"max_t": 10}, "max_t=10 but every trial trains"),
    ({"reduction_factor": 1}, "at least 2"),
    ({"grace_period": 0}, "grace_period must be a positive integer"),
    ({"patience": 2}, r"unknown option\(s\) \['patience'\]"),
])
def test_asha_options_reject_wrong_answers(change, message):
    _wrong("06.asha_options", {**GOOD, **change}, message)


def test_asha_options_accept_loss_minimised_and_the_reference():
    assert exercises.check("06.asha_options", dict(GOOD)) == GOOD
    loss = {**GOOD, "metric": "test_loss", "mode": "min", "reduction_factor": 3}
    assert exercises.check("06.asha_options", loss) == loss
    with pytest.raises(NotYetRight, match="expected a dict"):
        exercises.check("06.asha_options", "asha")
