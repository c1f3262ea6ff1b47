"""The promotion gate: should a candidate artifact replace the one being served?

:func:`promotion_gate` compares two :class:`~kit.evaluate.report.Evaluation` s (both on the same
held-out rows) criterion by criterion. Every criterion yields one reason that names the metric,
the candidate's value, the serving model's value and the threshold it was held to; the candidate
is promoted only when every criterion passes. The thresholds live in :class:`GatePolicy` so a
team (or the hackathon's scorer) can state its own.

The default tolerances are sized for the digits split (360 test rows: one row is 0.28 points of
accuracy, and a class has about 36 rows, one of them 2.8 points of its recall), so a retrain that
differs by a row or two is not held for noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kit.errors import KitError
from kit.evaluate.report import Evaluation


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds of the gate (each criterion: candidate vs serving)."""

    #: candidate accuracy >= serving accuracy + this (negative: a tolerated drop; positive: a required gain)
    min_accuracy_gain: float = -0.005
    #: candidate worst-class recall >= serving's - this, and never below ``min_worst_class_recall``
    max_worst_recall_drop: float = 0.03
    min_worst_class_recall: float = 0.80
    #: candidate ECE <= serving ECE + this
    max_ece_increase: float = 0.02
    #: candidate mean accuracy under noise >= serving's - this
    max_robustness_drop: float = 0.02
    #: behavioural checks the candidate may fail beyond those the serving model already fails
    max_new_check_failures: int = 0
    #: candidate CPU-seconds per 1,000 predictions <= serving's x this
    max_cost_ratio: float = 1.5

    def __post_init__(self) -> None:
        if self.max_cost_ratio <= 0 or not 0 <= self.min_worst_class_recall <= 1 or self.max_new_check_failures < 0:
            raise KitError(f"GatePolicy out of range: {self}",
                           fix="max_cost_ratio > 0, 0 <= min_worst_class_recall <= 1, max_new_check_failures >= 0")


@dataclass(frozen=True)
class GateCheck:
    """One criterion: the metric, both values, the threshold and whether the candidate passed."""

    metric: str
    candidate: float
    serving: float
    threshold: float
    rule: str  # how the threshold was made, e.g. "serving - 0.005"
    passed: bool

    def reason(self) -> str:
        verdict = "pass" if self.passed else "HOLD"
        return (f"{verdict}: {self.metric} candidate {self.candidate:.4g} vs serving {self.serving:.4g}; "
                f"threshold {self.threshold:.4g} ({self.rule})")


@dataclass(frozen=True)
class GateDecision:
    """``promote`` and one reason per criterion (failing ones first)."""

    promote: bool
    reasons: list[str]
    checks: list[GateCheck] = field(default_factory=list)

    def __str__(self) -> str:
        head = "PROMOTE the candidate" if self.promote else "HOLD: keep serving the current model"
        return "\n".join([head] + [f"  {reason}" for reason in self.reasons])


def _at_least(metric: str, candidate: float, serving: float, threshold: float, rule: str) -> GateCheck:
    return GateCheck(metric, candidate, serving, threshold, rule, candidate >= threshold - 1e-12)


def _at_most(metric: str, candidate: float, serving: float, threshold: float, rule: str) -> GateCheck:
    return GateCheck(metric, candidate, serving, threshold, rule, candidate <= threshold + 1e-12)


def promotion_gate(candidate: Evaluation, serving: Evaluation, policy: GatePolicy | None = None) -> GateDecision:
    """Promote ``candidate`` over ``serving`` only if it passes every criterion of ``policy``."""
    policy = policy or GatePolicy()
    if candidate.rows != serving.rows:
        raise KitError(f"the candidate was evaluated on {candidate.rows} rows and the serving model on {serving.rows}",
                       fix="evaluate both on the same held-out split (the same data set, test fraction and seed)")
    p = policy
    recall_floor = max(p.min_worst_class_recall, serving.worst_class_recall - p.max_worst_recall_drop)
    new_failures = len(set(candidate.failed_checks) - set(serving.failed_checks))
    checks = [
        _at_least("accuracy", candidate.accuracy, serving.accuracy, serving.accuracy + p.min_accuracy_gain,
                  f"serving {p.min_accuracy_gain:+g}"),
        _at_least("worst-class recall", candidate.worst_class_recall, serving.worst_class_recall, recall_floor,
                  f"max(floor {p.min_worst_class_recall:g}, serving - {p.max_worst_recall_drop:g})"),
        _at_most("expected calibration error", candidate.ece, serving.ece, serving.ece + p.max_ece_increase,
                 f"serving + {p.max_ece_increase:g}"),
        _at_least("accuracy under noise (mean over levels)", candidate.noisy_accuracy, serving.noisy_accuracy,
                  serving.noisy_accuracy - p.max_robustness_drop, f"serving - {p.max_robustness_drop:g}"),
        GateCheck("failed behavioural checks", len(candidate.failed_checks), len(serving.failed_checks),
                  len(serving.failed_checks) + p.max_new_check_failures,
                  f"serving's + {p.max_new_check_failures}; new failures: {new_failures}",
                  new_failures <= p.max_new_check_failures),
        _at_most("CPU-s per 1,000 predictions", candidate.cpu_s_per_1000, serving.cpu_s_per_1000,
                 serving.cpu_s_per_1000 * p.max_cost_ratio, f"serving x {p.max_cost_ratio:g}"),
    ]
    ordered = [c for c in checks if not c.passed] + [c for c in checks if c.passed]
    return GateDecision(all(c.passed for c in checks), [c.reason() for c in ordered], checks)
