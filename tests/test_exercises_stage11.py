"""Stage 11 exercises reject wrong answers, each with its own message, and accept right ones: the augmentation
(run on the team's rows, judged by a nearest-mean classifier) and the training settings (trained for real against
the baseline, within the budget)."""

from __future__ import annotations

import numpy as np
import pytest

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage11
from kit.hackathon import team


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


def _in_place(images, rng):
    images += 1.0
    return np.clip(images, 0, 16)


@pytest.mark.parametrize(("augment", "message"), [
    ("blur", "must be a function"),
    (lambda x, rng: x / 0 if rng else x, "NaN or infinite"),
    (lambda x, rng: 1 / 0, "raised ZeroDivisionError"),
    (_in_place, "changed its input in place"),
    (lambda x, rng: x.tolist(), "returned list"),
    (lambda x, rng: x.reshape(-1, 8, 8), r"shape \(300, 8, 8\)"),
    (lambda x, rng: x + rng.normal(0, 1, x.shape), "np.clip them"),
    (lambda x, rng: x.copy(), "unchanged"),
    (lambda x, rng: np.clip(x * 0.8, 0, 16), "another rng"),
    (lambda x, rng: rng.uniform(0, 16, x.shape), "no longer look like their digits"),
])
def test_augment_rejects_wrong_functions(augment, message):
    _wrong("11.augment", augment, message)


def test_augment_accepts_the_reference_and_a_plain_noise():
    exercises.check("11.augment", stage11.reference_augment)
    exercises.check("11.augment", lambda x, rng: np.clip(x + rng.normal(0, 1.5, x.shape), 0, 16))


@pytest.mark.parametrize(("settings", "message"), [
    ({"workers": 2}, "cannot be set in the challenge"),
    ({"model": "transformer"}, "model"),
    ({"epochs": 500}, "epochs=500 cannot fit the training budget"),
    (team.BASELINE, "beat it by 0.05"),
])
def test_config_rejects_settings_that_do_not_beat_the_baseline(settings, message, tmp_path):
    team.Workspace.create("exercise", tmp_path)
    _wrong("11.config", settings, message)


def test_config_accepts_a_wider_longer_run_and_the_skip_ahead_is_it(tmp_path, capsys):
    workspace = team.Workspace.create("exercise", tmp_path)
    assert exercises.check("11.config", ...) == stage11._reference_config()
    exercises.check("11.config", stage11._reference_config())
    assert "correct" in capsys.readouterr().out
    assert workspace.candidates["11.config-check"].train_cpu_s <= workspace.budget.max_train_cpu_s
