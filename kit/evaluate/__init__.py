"""Evaluation beyond accuracy, a promotion gate, and honestly labelled energy figures (stage 10, issue 13).

Public API (stable; the stage 10 notebook and the hackathon scorer call it)::

    from kit.evaluate import evaluate_model, promotion_gate, GatePolicy, measure_energy

    serving = evaluate_model("build/models/digits")            # -> Evaluation
    candidate = evaluate_model("/tmp/candidate", seed=0)
    print(candidate)                                           # a short text table
    decision = promotion_gate(candidate, serving)              # -> GateDecision
    decision.promote, decision.reasons                         # bool, one line per criterion
    plot_reliability(candidate); plot_confusion(candidate)     # matplotlib axes
    reading = measure_energy(lambda: work(), "1,000 predictions", units=1000)   # -> EnergyReading
    reading.per(1000), reading.kind, reading.method            # J per 1,000; "measured"/"estimated"; how

- :func:`evaluate_model` ``(model_dir, *, seed=0, noise_levels=..., bins=10, cost_batches=(1, 64))``
  loads the serving artifact (hash-checked; a bad directory raises a :class:`~kit.errors.KitError` with
  its fix) and evaluates it on the held-out split it was trained without. :class:`Evaluation` holds
  ``accuracy``; ``classes`` (per-class precision/recall/F1/support) and ``confusion`` ([true][predicted]);
  ``ece`` and ``reliability`` (bins); ``robustness`` (noise level -> accuracy); ``checks`` (CheckList-style
  invariance/directional checks with failure counts and pass/fail); ``cost`` (p50/p95 ms per batch and
  CPU-seconds per 1,000 predictions); summaries ``worst_class_recall``, ``noisy_accuracy``,
  ``failed_checks``, ``cpu_s_per_1000``; ``to_dict()`` for JSON. :func:`evaluate_scorer` does the same
  for a network already in memory (e.g. an int8-quantized copy).
- :func:`promotion_gate` ``(candidate, serving, policy=GatePolicy())`` -> :class:`GateDecision`
  ``(promote, reasons, checks)``: accuracy (minimum gain / tolerated drop), worst-class recall, ECE,
  accuracy under noise, new behavioural failures and CPU cost; each reason names the metric, both
  values and the threshold.
- :func:`measure_energy` ``(fn, label, *, country_iso_code="FRA", units=None)`` -> :class:`EnergyReading`
  with codecarbon 2.6.0 offline: ``kind`` is ``measured`` (RAPL, NVML) or ``estimated`` and ``method``
  names the model and its constants (see :mod:`kit.evaluate.energy`).
- ``python -m kit evaluate MODEL_DIR [--against SERVING_DIR] [--json]`` and ``python -m kit bench energy``.

Modules: :mod:`~kit.evaluate.metrics` (numpy: confusion, per-class, ECE), :mod:`~kit.evaluate.behaviour`
(noise, checks), :mod:`~kit.evaluate.model` (artifact, held-out data, cost), :mod:`~kit.evaluate.report`
(:class:`Evaluation`), :mod:`~kit.evaluate.gate`, :mod:`~kit.evaluate.plots`, :mod:`~kit.evaluate.energy`.
Importing this package imports neither torch nor codecarbon; the functions import what they need.
"""

from __future__ import annotations

from kit.evaluate.behaviour import NOISE_LEVELS, CheckResult
from kit.evaluate.energy import EnergyReading, measure_energy
from kit.evaluate.gate import GateCheck, GateDecision, GatePolicy, promotion_gate
from kit.evaluate.metrics import ClassScores, ReliabilityBin, expected_calibration_error, reliability
from kit.evaluate.model import Cost, Scorer
from kit.evaluate.plots import plot_confusion, plot_reliability
from kit.evaluate.report import Evaluation, evaluate_model, evaluate_scorer

__all__ = [
    "NOISE_LEVELS", "CheckResult", "ClassScores", "Cost", "EnergyReading", "Evaluation", "GateCheck", "GateDecision",
    "GatePolicy", "ReliabilityBin", "Scorer", "evaluate_model", "evaluate_scorer", "expected_calibration_error",
    "measure_energy", "plot_confusion", "plot_reliability", "promotion_gate", "reliability",
]
