"""Exercises of stage 04 (Ray Train). The checks reason about the answer; the notebook then runs it."""

from __future__ import annotations

from kit.course.exercises import NotYetRight, exercise

#: The fault drill of stage 04: the last worker crashes in the middle of this epoch, once.
DRILL_EPOCHS = 3
DRILL_CRASH_AT = 2


def _whole_number(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotYetRight(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
    return value


@exercise(
    "04.max_failures",
    "FailureConfig: survive one crashed worker",
    "FailureConfig(max_failures=N) lets Ray Train restart the worker group N times after a worker dies; "
    "0 means no restart, -1 means no limit. The drill crashes one worker once.",
    reference=lambda: 1,
)
def check_max_failures(max_failures) -> None:
    max_failures = _whole_number(max_failures, "max_failures")
    if max_failures == 0:
        raise NotYetRight(
            "max_failures=0 allows no restart: the first crashed worker fails the whole run "
            "(the last section of this stage shows exactly that)"
        )
    if max_failures == -1:
        raise NotYetRight(
            "max_failures=-1 restarts without limit: a worker that crashes every time (a bug, an OOM) "
            "would restart forever and hold its GPUs; allow a bounded number"
        )
    if max_failures < -1:
        raise NotYetRight(f"max_failures={max_failures} is not valid: use 0, a positive number, or -1")
    if max_failures > 10:
        raise NotYetRight(f"max_failures={max_failures} survives one crash, but a crash loop would run for "
                          "a long time before anyone notices; the drill needs 1")


@exercise(
    "04.resume_epoch",
    "Checkpoints: which epoch does training resume from?",
    "train_func checkpoints at the end of every epoch. The crash happens in the middle of epoch "
    f"{DRILL_CRASH_AT}: which checkpoint is the newest one that exists, and which epoch comes after it?",
    reference=lambda: DRILL_CRASH_AT,
)
def check_resume_epoch(epoch) -> None:
    epoch = _whole_number(epoch, "resume_epoch")
    crash = DRILL_CRASH_AT
    if epoch == crash + 1:
        raise NotYetRight(
            f"epoch {crash} was only half done when the worker died: its checkpoint was never written, so "
            f"the restarted workers load the checkpoint of epoch {crash - 1} and train epoch {crash} again"
        )
    if epoch == crash - 1:
        raise NotYetRight(
            f"epoch {crash - 1} finished and its checkpoint was saved before the crash: it is not trained "
            f"again; the restarted workers start with the epoch after it"
        )
    if epoch == 0:
        raise NotYetRight(
            f"training restarts from scratch only when no checkpoint exists; here epoch {crash - 1}'s "
            "checkpoint does"
        )
    if not 1 <= epoch <= DRILL_EPOCHS:
        raise NotYetRight(f"the drill trains epochs 1..{DRILL_EPOCHS}; {epoch} is not one of them")
    if epoch != crash:
        raise NotYetRight(f"the crash is in epoch {crash}; training does not resume from epoch {epoch}")
