"""Exercises of stage 11 (the capstone): an augmentation that keeps digits recognisable, a config that beats the
baseline within the training budget.

11.augment runs the learner's function on the team's training rows and judges the output (shape, range, a new array,
random, still a digit to a nearest-mean classifier). 11.config trains the learner's settings on the team's data
(:func:`kit.hackathon.team.current`'s workspace, else a fresh one) and compares with the baseline trained the same way.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from kit.course.exercises import NotYetRight, exercise
from kit.hackathon import challenge, team

SAMPLE_ROWS = 300
#: The augmented images must keep at least this share of a nearest-mean classifier's accuracy on the originals.
KEEPS_DIGITS = 0.6
#: A config must beat the baseline's validation accuracy by this much.
MARGIN = 0.05
#: Settings that cannot fit the training budget on any machine the kit targets: refused before training.
LIMITS = {"epochs": 60, "hidden": 512}


def reference_augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image smoothed by a random amount, then its contrast and brightness changed at random."""
    grid = images.reshape(-1, 8, 8)
    smooth = challenge.box_blur(grid)
    amount = rng.uniform(0.0, 1.0, size=(len(grid), 1, 1))
    out = (1 - amount) * grid + amount * smooth
    out = out * rng.uniform(0.6, 1.8, size=(len(grid), 1, 1)) + rng.uniform(-4.0, 2.0, size=(len(grid), 1, 1))
    return np.clip(out, 0.0, challenge.PIXEL_MAX).reshape(images.shape).astype(np.float32)


def _reference_augment():
    return reference_augment


def _sample() -> tuple[np.ndarray, np.ndarray, Any]:
    from kit.hackathon.endpoints import Centroids

    arrays = challenge.team_arrays()
    rows = np.random.default_rng(0).choice(len(arrays["y_train"]), SAMPLE_ROWS, replace=False)
    return arrays["x_train"][rows], arrays["y_train"][rows], Centroids(arrays["x_train"], arrays["y_train"])


@exercise(
    "11.augment",
    "Write a data augmentation that makes the model robust",
    "augment(images, rng) gets (n, 64) pixels 0..16 and returns a NEW array of the same shape: change each image at "
    "random (rng.normal noise, np.roll shifts, smoothing by averaging neighbours, contrast x*rng.uniform(...)), then "
    "np.clip(..., 0, 16). Keep the digit recognisable: mild changes, drawn per image.",
    reference=_reference_augment,
)
def check_augment(augment) -> None:
    if not callable(augment):
        raise NotYetRight(f"augment must be a function augment(images, rng), not {type(augment).__name__}")
    images, labels, centroids = _sample()
    original = images.copy()
    try:
        out = augment(images, np.random.default_rng(1))
    except Exception as error:  # the learner's code: say what it raised
        raise NotYetRight(f"augment(images, rng) raised {type(error).__name__}: {error}") from None
    if not np.array_equal(images, original):
        raise NotYetRight("augment changed its input in place: the originals are training rows too; work on a copy "
                          "(images.copy(), or operations that return new arrays)")
    if not isinstance(out, np.ndarray):
        raise NotYetRight(f"augment returned {type(out).__name__}; return a numpy array")
    if out.shape != images.shape:
        raise NotYetRight(f"augment returned shape {out.shape} for input {images.shape}: one image out per image in, "
                          "each 64 pixels (reshape to (n, 8, 8) to work on images, then back)")
    if not np.isfinite(out).all():
        raise NotYetRight("augment returned NaN or infinite pixels")
    if out.min() < 0 or out.max() > challenge.PIXEL_MAX:
        raise NotYetRight(f"pixels range {out.min():.1f}..{out.max():.1f}; the servers receive 0..16: np.clip them")
    if np.allclose(out, images):
        raise NotYetRight("augment returned the images unchanged: the copies would teach the model nothing new")
    again = augment(images.copy(), np.random.default_rng(2))
    if np.allclose(out, again):
        raise NotYetRight("the same change with another rng: draw the change from rng, so each copy differs")
    before = float(np.mean(np.asarray(centroids.predict(images)) == labels))
    after = float(np.mean(np.asarray(centroids.predict(out.astype(np.float32))) == labels))
    if after < KEEPS_DIGITS * before:
        raise NotYetRight(f"the augmented images no longer look like their digits: a nearest-mean classifier "
                          f"recognises {before:.0%} of the originals but {after:.0%} of yours; make the changes "
                          "milder")


def _workspace() -> team.Workspace:
    live = team.current()
    if live is not None:
        return live
    return team.Workspace.create("exercise", tempfile.mkdtemp(prefix="kit-capstone-"))


def _reference_config() -> dict[str, Any]:
    return {"model": "mlp", "hidden": 128, "epochs": 12}


@exercise(
    "11.config",
    "Choose training settings that beat the baseline within the budget",
    f"The baseline is {team.BASELINE}: a narrow network trained for 3 passes. A wider network (hidden 64-256) "
    "trained for more epochs (10-20) learns much more and still costs a few CPU-seconds; keep lr near 0.01.",
    reference=_reference_config,
)
def check_config(settings) -> None:
    from kit.errors import KitError

    try:
        config = team.team_config(settings)
    except KitError as error:
        raise NotYetRight(error.message) from None
    for name, limit in LIMITS.items():
        if config[name] > limit:
            raise NotYetRight(f"{name}={config[name]} cannot fit the training budget on this kind of machine; "
                              f"stay at {limit} or below")
    workspace = _workspace()
    baseline = workspace.candidates.get("baseline") or workspace.train("baseline", **team.BASELINE)
    yours = workspace.train("11.config-check", **config)
    budget = workspace.budget.max_train_cpu_s
    if yours.train_cpu_s > budget:
        raise NotYetRight(f"training took {yours.train_cpu_s:.1f} CPU-s, over the budget of {budget:g}: fewer epochs "
                          "or a smaller model")
    if yours.val_accuracy < baseline.val_accuracy + MARGIN:
        raise NotYetRight(f"validation accuracy {yours.val_accuracy:.3f} against the baseline's "
                          f"{baseline.val_accuracy:.3f}: beat it by {MARGIN:g} or more")
