"""How measurements become one score: the event's weights and budget, nothing self-reported.

A submission is measured by the scorer (:mod:`kit.hackathon.scorer`): accuracy on the hidden test set
(overall and on the shifted slice), p95 latency under the fixed load, and cost (CPU-seconds per 1,000
requests, measured on the server process the scorer started). Each becomes a term in 0..1:

- accuracy: the mean of overall and shifted-slice accuracy (robustness pays);
- latency: ``target / (target + p95)``: 0.5 at the target, towards 1 when faster;
- cost: ``target / (target + cpu_s_per_1k)``, the same shape.

The score is ``100 * sum(weight * term) / sum(weight)`` over the terms measured: an endpoint's cost
cannot be measured from outside, so its score is over accuracy and latency only (the record says so).
Over the budget (p95 or cost above the event's limit) the submission fails with the figure and the limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from kit.errors import KitError

TERMS = ("accuracy", "latency", "cost")


@dataclass(frozen=True)
class ScoringWeights:
    """Weights of the three terms (the event file's ``scoring`` mapping); any scale, at least one above 0."""

    accuracy: float = 0.6
    latency: float = 0.2
    cost: float = 0.2

    def __post_init__(self) -> None:
        for name in TERMS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise KitError(f"scoring weight {name}={value!r} is not a finite number >= 0",
                               fix="give each of accuracy, latency, cost a number >= 0 in the event's `scoring`")
        if sum(getattr(self, name) for name in TERMS) <= 0:
            raise KitError("every scoring weight is 0: nothing would count", fix="give at least one weight above 0")

    @classmethod
    def from_mapping(cls, mapping: Mapping | None) -> ScoringWeights:
        """From the event file's ``scoring`` mapping; unknown keys are an error naming the known ones."""
        mapping = dict(mapping or {})
        unknown = set(mapping) - set(TERMS)
        if unknown:
            raise KitError(f"unknown scoring key(s) {sorted(unknown)}", fix=f"use only {', '.join(TERMS)}")
        return cls(**{k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                      for k, v in mapping.items()})

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ScoringBudget:
    """The event's limits and the targets the latency and cost terms are scaled by."""

    #: p95 latency (ms) at which the latency term is 0.5; above ``max_p95_ms`` the submission fails
    target_p95_ms: float = 50.0
    max_p95_ms: float = 2000.0
    #: CPU-seconds per 1,000 requests at which the cost term is 0.5; above ``max_cpu_s_per_1k`` it fails
    target_cpu_s_per_1k: float = 5.0
    max_cpu_s_per_1k: float = 200.0
    #: CPU-seconds a team may spend training one candidate (stage 11 measures it in the notebook's process)
    max_train_cpu_s: float = 30.0


@dataclass(frozen=True)
class Measurement:
    """What the scorer measured for one submission (cost is None when it cannot be measured)."""

    accuracy: float
    shifted_accuracy: float
    p95_ms: float
    cpu_s_per_1k: float | None


class OverBudget(KitError):
    """A measurement above the event's limit: the submission is recorded as failed with this reason."""


def terms(m: Measurement, budget: ScoringBudget) -> dict[str, float]:
    """Each measured term in 0..1 (cost only when measured)."""
    out = {"accuracy": (m.accuracy + m.shifted_accuracy) / 2,
           "latency": budget.target_p95_ms / (budget.target_p95_ms + m.p95_ms)}
    if m.cpu_s_per_1k is not None:
        out["cost"] = budget.target_cpu_s_per_1k / (budget.target_cpu_s_per_1k + m.cpu_s_per_1k)
    return out


def score(m: Measurement, weights: ScoringWeights, budget: ScoringBudget) -> float:
    """The score (0..100, two decimals) of a measurement; :class:`OverBudget` when outside the limits."""
    if not math.isfinite(m.p95_ms) or m.p95_ms > budget.max_p95_ms:
        raise OverBudget(f"p95 latency {m.p95_ms:.0f} ms is over the event's limit of {budget.max_p95_ms:.0f} ms",
                         fix="make each request cheaper (a smaller model, batching, fewer threads contending)")
    if m.cpu_s_per_1k is not None and m.cpu_s_per_1k > budget.max_cpu_s_per_1k:
        raise OverBudget(f"cost {m.cpu_s_per_1k:.1f} CPU-s per 1,000 requests is over the event's limit of "
                         f"{budget.max_cpu_s_per_1k:.0f}", fix="serve a smaller or quantized model")
    parts = terms(m, budget)
    weight = {name: getattr(weights, name) for name in parts}
    total = sum(weight.values())
    if total <= 0:
        raise OverBudget("only the cost weight is set, and cost cannot be measured for this submission",
                         fix="submit the artifact too, so the scorer can serve it and measure its cost")
    return round(100 * sum(weight[name] * parts[name] for name in parts) / total, 2)
