"""Checked exercises: a check that rejects wrong answers, a hint, and a skip-ahead.

A notebook exercise is three cells: a prompt, the learner's code (in ``solutions/``
a marked solution region, in ``notebooks/`` a placeholder ``answer = ...``), and a
check cell::

    square = kit.course.exercises.check("02.remote_square", square)

:func:`check` returns the learner's answer when it is right, raises
:class:`NotYetRight` with a specific message and the hint when it is wrong, and,
when the placeholder is still there, says "not solved yet", shows the hint and
returns the reference answer (the skip-ahead) so that later cells still run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kit.errors import KitError

#: Modules that register a stage's exercises, imported on first use.
STAGE_MODULES = (
    "kit.course.exercises.stage00",
    "kit.course.exercises.stage01",
    "kit.course.exercises.stage02",
    "kit.course.exercises.stage03",
    "kit.course.exercises.stage04",
    "kit.course.exercises.stage05",
    "kit.course.exercises.stage06",
    "kit.course.exercises.stage07",
    "kit.course.exercises.stage08",
    "kit.course.exercises.stage09",
    "kit.course.exercises.stage10",
    "kit.course.exercises.stage11",
    "kit.course.exercises.stage12",
)


class NotYetRight(KitError, AssertionError):
    """A wrong answer: the message says what is wrong, the fix (the exercise's hint) how to get closer.

    Still an ``AssertionError``: learners' cells may catch it as one.
    """

    def __str__(self) -> str:
        """What a notebook shows under the traceback: the message, then the hint."""
        return f"{self.message}\nHint: {self.fix}" if self.fix else self.message


class UnknownExercise(KitError, KeyError):
    """No exercise has this id."""

    def __str__(self) -> str:
        """The message and the fix (a plain ``KeyError`` would show only the quoted message)."""
        return self.explain()


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    hint: str
    validate: Callable[[Any], None]  # raises NotYetRight for a wrong answer
    reference: Callable[[], Any]  # the skip-ahead: builds the reference answer


_REGISTRY: dict[str, Exercise] = {}


def exercise(id: str, title: str, hint: str, reference: Callable[[], Any]):
    """Decorator registering ``validate`` as the check of exercise ``id``."""

    def register(validate: Callable[[Any], None]) -> Callable[[Any], None]:
        if id in _REGISTRY:
            raise ValueError(f"exercise {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id, title, hint, validate, reference)
        return validate

    return register


def _load_stages() -> None:
    for module in STAGE_MODULES:
        importlib.import_module(module)


def get(id: str) -> Exercise:
    """The registered exercise ``id`` (e.g. ``"02.remote_square"``)."""
    _load_stages()
    try:
        return _REGISTRY[id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownExercise(f"no exercise {id!r}", fix=f"use one of the known exercises: {known}") from None


def all_ids() -> list[str]:
    _load_stages()
    return sorted(_REGISTRY)


def is_placeholder(answer: Any) -> bool:
    """The learner has not answered yet: the generated placeholder is ``...`` (or None)."""
    return answer is Ellipsis or answer is None


def check(id: str, answer: Any) -> Any:
    """Check ``answer``; return it if right, the reference if unanswered, raise if wrong."""
    ex = get(id)
    if is_placeholder(answer):
        print(f"⏭  {ex.title}: not solved yet.\n   Hint: {ex.hint}")
        print("   Using the reference answer (skip-ahead) so the rest of the notebook runs.")
        return ex.reference()
    try:
        ex.validate(answer)
    except NotYetRight as wrong:
        raise NotYetRight(f"{ex.title}: {wrong.message}", fix=ex.hint) from None
    print(f"✅ {ex.title}: correct.")
    return answer


def runs_only_locally(id: str) -> bool:
    """True, after saying so, when Ray is a remote cluster's: exercise ``id``'s check runs the answer on the
    local Ray (it reads the answer's parts in this process, or its replicas need this machine's files)."""
    from kit.machine import ray_cluster

    if not ray_cluster.is_remote():
        return False
    print(f"ℹ  {id}: this check runs your answer on the local Ray; Ray here is a remote cluster's, so only what "
          "can be judged without running it was checked. Run the stage with PROFILE='local' to have it run.")
    return True


def skip_ahead(id: str) -> Any:
    """The reference answer of exercise ``id``, for learners who want to move on."""
    return get(id).reference()


def hint(id: str) -> str:
    return get(id).hint


# --------------------------------------------------------------------------- helpers for manifest exercises


def expect_manifest(answer: Any, kind: str) -> None:
    """Raise :class:`NotYetRight` unless ``answer`` is a manifest dict of ``kind``."""
    if not isinstance(answer, dict):
        raise NotYetRight(f"expected the {kind} as a dict (a manifest), got {type(answer).__name__}")
    if answer.get("kind") != kind:
        raise NotYetRight(f"expected kind {kind}, got {answer.get('kind')!r}")


def validation_problems(docs: list[dict], queue: str | None = None) -> list[str]:
    """What the kit's validator (schemas, rules, policy) says of ``docs``, one ``path: message`` line each."""
    from kit.k8s.validation import validate

    found = validate.validate_documents(docs, queue=queue)
    return [f"{p.path}: {p.message}" if p.path else p.message for p in found]


def listed(problems: list[str], limit: int = 3) -> str:
    """The first ``limit`` problems, one per indented line, and how many more there are."""
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n  " + "\n  ".join(problems[:limit]) + more
