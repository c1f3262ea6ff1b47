"""Stage 04 exercises reject wrong answers with specific messages and accept right ones (no Ray)."""

from __future__ import annotations

import pytest

from kit.course import exercises
from kit.course.exercises import NotYetRight


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


@pytest.mark.parametrize(("answer", "message"), [
    (0, "max_failures=0 allows no restart"),
    (-1, "restarts without limit"),
    (-3, "is not valid"),
    (100, "a crash loop would run"),
    ("1", r"must be a whole number, got '1' \(str\)"),
    (True, "must be a whole number"),
])
def test_max_failures_rejects_wrong_answers(answer, message):
    _wrong("04.max_failures", answer, message)


def test_max_failures_accepts_a_bounded_retry():
    assert exercises.check("04.max_failures", 1) == 1
    assert exercises.check("04.max_failures", 2) == 2


@pytest.mark.parametrize(("answer", "message"), [
    (3, "epoch 2 was only half done .* load the checkpoint of epoch 1 and train epoch 2 again"),
    (1, "epoch 1 finished and its checkpoint was saved before the crash"),
    (0, "restarts from scratch only when no checkpoint exists"),
    (7, r"trains epochs 1..3; 7 is not one of them"),
    (2.0, "must be a whole number"),
])
def test_resume_epoch_rejects_wrong_answers(answer, message):
    _wrong("04.resume_epoch", answer, message)


def test_resume_epoch_accepts_the_crashed_epoch(capsys):
    assert exercises.check("04.resume_epoch", 2) == 2
    assert exercises.check("04.resume_epoch", ...) == 2
    assert "not solved yet" in capsys.readouterr().out
