"""Robustness to input noise and behavioural checks in the CheckList style (Ribeiro et al. 2020,
"Beyond Accuracy: Behavioral Testing of NLP Models", https://aclanthology.org/2020.acl-main.442).

Inputs are in the model's space (digits: pixels x 1/16, so 0..1). A perturbation is sized as a share
of the input range (``span``), so "noise 0.1" means a Gaussian with a standard deviation of a tenth of
the pixel range (1.6 of the 16 grey levels a client sends). Noisy inputs are clipped back into the
range. Every random draw comes from ``numpy.random.default_rng(seed)``: the same seed, the same figures.

Two kinds of check, each with a count of failures and a pass/fail against a maximum failure rate:

- **invariance** (INV): a change that must not matter (slight noise, 10 % brighter) should not flip
  the predicted class;
- **directional** (DIR): a change with a known direction (fading the digit, blanking the image) must
  lower the model's confidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # rows -> probabilities

#: Gaussian noise levels for the robustness curve, as a share of the input range.
NOISE_LEVELS = (0.05, 0.1, 0.2, 0.4)


@dataclass(frozen=True)
class CheckResult:
    """One behavioural check: how many rows it tried, how many failed, and whether the rate is within bounds."""

    name: str
    kind: str  # "INV" (invariance) or "DIR" (directional)
    rows: int
    failures: int
    max_failure_rate: float

    @property
    def failure_rate(self) -> float:
        return self.failures / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool:
        return self.failure_rate <= self.max_failure_rate


def _clip(x: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    return x if low is None or high is None else np.clip(x, low, high)


def add_noise(x: np.ndarray, level: float, span: float, rng: np.random.Generator,
              low: float | None = None, high: float | None = None) -> np.ndarray:
    """``x`` plus Gaussian noise of standard deviation ``level * span``, clipped to ``[low, high]`` when given."""
    noisy = x + rng.normal(0.0, level * span, size=x.shape)
    return _clip(noisy, low, high).astype(np.float32)


def noise_robustness(predict: Predict, x: np.ndarray, y: np.ndarray, *, span: float, low: float | None,
                     high: float | None, seed: int = 0, levels: tuple[float, ...] = NOISE_LEVELS) -> dict[float, float]:
    """Accuracy at each noise level (level 0: the clean inputs)."""
    rng = np.random.default_rng(seed)
    curve = {0.0: float((predict(x).argmax(axis=1) == y).mean())}
    for level in levels:
        noisy = add_noise(x, level, span, rng, low, high)
        curve[float(level)] = float((predict(noisy).argmax(axis=1) == y).mean())
    return curve


def behavioural_checks(predict: Predict, x: np.ndarray, *, span: float, low: float | None, high: float | None,
                       seed: int = 0, max_flip_rate: float = 0.05,
                       max_direction_failures: float = 0.05) -> list[CheckResult]:
    """The four checks of the module docstring, on every row of ``x``."""
    rng = np.random.default_rng(seed + 1)  # a different stream from the robustness curve's
    probs = predict(x)
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    rows = len(x)
    results = []

    noisy = predict(add_noise(x, 0.02, span, rng, low, high))
    results.append(CheckResult("INV: slight noise (2 % of the range) keeps the class", "INV", rows,
                               int((noisy.argmax(axis=1) != predicted).sum()), max_flip_rate))
    base = 0.0 if low is None else low
    brighter = predict(_clip(base + (x - base) * 1.1, low, high).astype(np.float32))
    results.append(CheckResult("INV: 10 % brighter keeps the class", "INV", rows,
                               int((brighter.argmax(axis=1) != predicted).sum()), max_flip_rate))

    faded = predict((base + (x - base) * 0.25).astype(np.float32))
    faded_confidence = faded[np.arange(rows), predicted]
    results.append(CheckResult("DIR: fading to 25 % contrast lowers confidence in the predicted class", "DIR",
                               rows, int((faded_confidence >= confidence).sum()), max_direction_failures))
    blank = predict(np.full((1, x.shape[1]), base, dtype=np.float32)).max()
    results.append(CheckResult("DIR: a blank image is less confident than each real one", "DIR", rows,
                               int((confidence <= blank).sum()), max_direction_failures))
    return results
