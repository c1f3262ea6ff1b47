"""Exercise 04.2's run: the learner's trainer through the fault drill, each worker's calls to Ray Train noted.

Each worker runs the learner's loop under :class:`Observed`, which wraps ``ray.train.report``,
``get_checkpoint`` and ``get_context`` (the worker's rank: its share of the rows) to note each call in a
file per attempt (a crashed worker returns nothing), and exits the worker abruptly, once, when the loop
reports the crash epoch - before that epoch's checkpoint is saved, as if the worker died in the middle of
it. :func:`judge` holds the rules the notes of the attempts must follow: a plain function, tested without Ray.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.course.exercises import NotYetRight


def _new_notes() -> dict[str, Any]:
    return {"reports": [], "asked_checkpoint": False, "restored": False, "rank": False}


class Observed:
    """The learner's loop with Ray Train's calls noted to ``notes_dir/attempt-N.json``, crashing once at
    the report of epoch ``crash_at``."""

    def __init__(self, loop: Callable, notes_dir: str, crash_at: int) -> None:
        self.loop, self.notes_dir, self.crash_at = loop, notes_dir, crash_at

    def __call__(self, config: dict) -> None:
        import ray.train

        folder = Path(self.notes_dir)
        path = folder / f"attempt-{len(list(folder.glob('attempt-*.json'))) + 1}.json"
        notes = _new_notes()
        originals = {name: getattr(ray.train, name) for name in ("report", "get_checkpoint", "get_context")}

        def save() -> None:
            path.write_text(json.dumps(notes, default=str))

        def report(metrics, checkpoint=None, **kwargs):
            notes["reports"].append({"metrics": dict(metrics), "checkpoint": checkpoint is not None})
            save()
            crashed = folder / "crashed"
            if metrics.get("epoch") == self.crash_at and not crashed.exists():
                crashed.touch()
                _previous_report_taken()
                if checkpoint is not None:  # never reported: a real crash would leave it in the worker's /tmp
                    shutil.rmtree(checkpoint.path, ignore_errors=True)
                os._exit(1)  # like an OOM kill or a lost node: no exception, no clean-up
            return originals["report"](metrics, checkpoint=checkpoint, **kwargs)

        def get_checkpoint():
            found = originals["get_checkpoint"]()
            notes["asked_checkpoint"], notes["restored"] = True, found is not None
            save()
            return found

        def get_context():
            notes["rank"] = True
            save()
            return originals["get_context"]()

        save()
        for name, function in (("report", report), ("get_checkpoint", get_checkpoint),
                               ("get_context", get_context)):
            setattr(ray.train, name, function)
        try:
            self.loop(config)
        finally:
            for name, function in originals.items():
                setattr(ray.train, name, function)


#: Seconds to wait, once the controller's poll took the last report, for the poll's answer to reach it.
REPLY_S = 2.0


def _previous_report_taken() -> None:
    """Wait until Ray Train's controller has this worker's last report: it polls the worker (each second or
    two), and a report waits in the worker until a poll takes it and the poll's answer arrives.

    A real epoch takes longer than that; this one does not, and a worker that died first would lose the
    previous epoch's checkpoint too. (Ray Train V2's worker context.)
    """
    import time

    from ray.train.v2._internal.execution.context import get_train_context

    get_train_context().get_result_queue().join()
    time.sleep(REPLY_S)


def epochs(notes: dict) -> list:
    return [report["metrics"].get("epoch") for report in notes["reports"]]


def judge(attempts: list[dict], total: int, crash_at: int) -> None:
    """The drill's rules: attempt 1 reports epochs 1.. with checkpoints until the crash in
    epoch ``crash_at``, having asked for its rank (its share of the rows); attempt 2 loads the newest
    checkpoint and reports epochs ``crash_at``..``total``."""
    first = attempts[0] if attempts else _new_notes()
    if not first["reports"]:
        raise NotYetRight("the loop never called ray.train.report(...): the controller saw no progress, and the "
                          "Result has no metrics and no checkpoint - report at the end of every epoch")
    if any("epoch" not in report["metrics"] for report in first["reports"]):
        raise NotYetRight(f"reported metrics {first['reports'][0]['metrics']} have no 'epoch': report "
                          "{'epoch': epoch, 'loss': ...} so that the run's history says which epoch is which")
    bare = [report["metrics"]["epoch"] for report in first["reports"] if not report["checkpoint"]]
    if bare:
        raise NotYetRight(f"epoch(s) {bare} were reported without a checkpoint: metrics alone leave nothing to "
                          "resume from - pass checkpoint=ray.train.Checkpoint.from_directory(d), d holding the "
                          "model, the optimiser and the epoch")
    if epochs(first) != list(range(1, crash_at + 1)):
        raise NotYetRight(f"a fresh run reported epochs {epochs(first)} before its worker crashed in epoch "
                          f"{crash_at}, expected {list(range(1, crash_at + 1))}: one report at the end of each "
                          "epoch, the first numbered 1")
    if not first["rank"]:
        raise NotYetRight("the loop never asked ray.train.get_context() for its rank: it trained on all the rows, so "
                          "each of N workers would train on every row (N copies of every epoch); take "
                          "rows[rank::world_size] with get_world_rank() and get_world_size()")
    if len(attempts) < 2:
        raise NotYetRight("the worker crashed and the run did not restart it: FailureConfig(max_failures=...)")
    again = attempts[1]
    expected = list(range(crash_at, total + 1))
    if not again["asked_checkpoint"]:
        raise NotYetRight(f"the restarted worker reported epochs {epochs(again)}: it trains from epoch 1 again "
                          "because the loop never calls ray.train.get_checkpoint() - load the newest checkpoint "
                          f"first and continue with the epoch after it (here {crash_at})")
    if not again["restored"]:
        raise NotYetRight("ray.train.get_checkpoint() found no checkpoint after the restart: report each epoch "
                          "with checkpoint=... and let RunConfig(storage_path=...) keep them")
    if epochs(again) != expected:
        raise NotYetRight(f"the restarted worker loaded epoch {crash_at - 1}'s checkpoint but reported epochs "
                          f"{epochs(again)}, expected {expected}: save the epoch in the checkpoint and start "
                          "with the one after it")


def run_drill(trainer: Any, notes_dir: Path, total: int, crash_at: int) -> tuple[list[dict], Any]:
    """Fit ``trainer`` with its loop observed; the attempts' notes and the Result."""
    import ray.train

    notes_dir.mkdir(parents=True, exist_ok=True)
    trainer.train_loop_per_worker = Observed(trainer.train_loop_per_worker, str(notes_dir), crash_at)
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as error:
        attempts = read_attempts(notes_dir)
        if len(attempts) == 1 and (notes_dir / "crashed").exists():
            raise NotYetRight("the worker crashed and the run failed: FailureConfig(max_failures=...) must allow "
                              "a restart") from None
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise NotYetRight(f"the run failed: {' | '.join(lines[-2:])[-500:]}") from None
    attempts = read_attempts(notes_dir)
    if attempts and not any(a["reports"] for a in attempts) and result.metrics:
        raise NotYetRight("the run reported metrics, but not through the module ray.train, which the check follows: "
                          "import ray.train inside the loop and call ray.train.report(...), ray.train.get_checkpoint() "
                          "and ray.train.get_context()")
    judge(attempts, total, crash_at)
    return attempts, result


def describe(attempts: list[dict], crash_at: int) -> list[str]:
    """One line per attempt: what it started from, whether it took its rank's share, which epochs it reported."""
    lines = []
    for number, notes in enumerate(attempts, 1):
        reported = epochs(notes)
        died = number == 1 and reported and reported[-1] == crash_at
        start = "the newest checkpoint" if notes["restored"] else "no checkpoint (a fresh start)"
        lines.append(f"attempt {number}: started from {start}; took its rank's share: {notes['rank']}; reported epochs "
                     f"{reported[:-1] if died else reported}" + (f", died reporting epoch {crash_at}" if died else ""))
    return lines


def read_attempts(notes_dir: Path) -> list[dict]:
    paths = sorted(notes_dir.glob("attempt-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    return [json.loads(p.read_text()) for p in paths]
