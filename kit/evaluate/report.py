"""An :class:`Evaluation` of one model artifact on its held-out split, and its text table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.evaluate import behaviour, metrics
from kit.evaluate.model import COST_BATCHES, Cost, Scorer, held_out, input_range, measure_cost


@dataclass(frozen=True)
class Evaluation:
    """Everything :func:`evaluate_model` measured; ``str()`` is a short table, :meth:`to_dict` the data."""

    model: str  # the model directory (or a name for an in-memory network)
    rows: int  # held-out rows evaluated
    accuracy: float
    classes: list[metrics.ClassScores]
    confusion: list[list[int]]  # [true][predicted]
    ece: float
    reliability: list[metrics.ReliabilityBin]
    robustness: dict[float, float]  # noise level (share of the input range) -> accuracy; 0.0: clean
    checks: list[behaviour.CheckResult]
    cost: list[Cost]
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def worst_class(self) -> metrics.ClassScores:
        return min(self.classes, key=lambda c: (c.recall, c.label))

    @property
    def worst_class_recall(self) -> float:
        return self.worst_class.recall

    @property
    def noisy_accuracy(self) -> float:
        """Mean accuracy over the noise levels (clean inputs excluded): the robustness the gate compares."""
        noisy = [acc for level, acc in self.robustness.items() if level > 0]
        return float(np.mean(noisy)) if noisy else self.accuracy

    @property
    def failed_checks(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]

    def cost_at(self, batch: int) -> Cost | None:
        return next((c for c in self.cost if c.batch == batch), None)

    @property
    def cpu_s_per_1000(self) -> float:
        """CPU-seconds per 1,000 predictions at the smallest batch measured (an online request)."""
        return min(self.cost, key=lambda c: c.batch).cpu_s_per_1000 if self.cost else float("nan")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["robustness"] = {str(level): acc for level, acc in self.robustness.items()}
        data["checks"] = [{**asdict(c), "failure_rate": c.failure_rate, "passed": c.passed} for c in self.checks]
        data.update(worst_class=self.worst_class.label, worst_class_recall=self.worst_class_recall,
                    noisy_accuracy=self.noisy_accuracy, cpu_s_per_1000=self.cpu_s_per_1000)
        return data

    def __str__(self) -> str:
        worst = self.worst_class
        lines = [f"Evaluation of {self.model} on {self.rows} held-out rows (seed {self.seed})",
                 f"  accuracy            {self.accuracy:.4f}",
                 f"  worst-class recall  {worst.recall:.4f} (class {worst.label}, "
                 f"precision {worst.precision:.3f}, F1 {worst.f1:.3f}, support {worst.support})",
                 f"  macro F1            {np.mean([c.f1 for c in self.classes]):.4f}",
                 "  " + f"ECE ({len(self.reliability)} bins)".ljust(20) + f"{self.ece:.4f}",
                 "  noise robustness    " + ", ".join(f"{level:g}: {acc:.3f}" for level, acc in self.robustness.items())
                 + " (Gaussian noise std, share of the input range: accuracy)"]
        for check in self.checks:
            verdict = "pass" if check.passed else "FAIL"
            lines.append(f"  {verdict}  {check.name}: {check.failures}/{check.rows} failed "
                         f"(max {check.max_failure_rate:.0%})")
        for cost in self.cost:
            lines.append(f"  cost at batch {cost.batch:<3}    p50 {cost.p50_ms:.3f} ms, p95 {cost.p95_ms:.3f} ms, "
                         f"{cost.cpu_s_per_1000:.4f} CPU-s per 1,000 predictions (1 thread)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def evaluate_scorer(scorer: Scorer, *, name: str, seed: int = 0,
                    noise_levels: tuple[float, ...] = behaviour.NOISE_LEVELS, bins: int = metrics.ECE_BINS,
                    cost_batches: tuple[int, ...] = COST_BATCHES, data: tuple[np.ndarray, np.ndarray] | None = None,
                    max_flip_rate: float = 0.05, max_direction_failures: float = 0.05) -> Evaluation:
    """Evaluate a network already loaded (a quantized copy, say) on ``data`` (default: its held-out split)."""
    x, y = data if data is not None else held_out(scorer.metadata)
    classes = len(scorer.metadata.classes)
    probs = scorer(x)
    predicted = probs.argmax(axis=1)
    low, high, span = input_range(scorer.metadata)
    return Evaluation(
        model=name, rows=len(y), accuracy=float((predicted == y).mean()),
        classes=metrics.per_class(y, predicted, classes),
        confusion=metrics.confusion(y, predicted, classes).tolist(),
        ece=metrics.expected_calibration_error(probs, y, bins),
        reliability=metrics.reliability(probs, y, bins),
        robustness=behaviour.noise_robustness(scorer, x, y, span=span, low=low, high=high, seed=seed,
                                              levels=noise_levels),
        checks=behaviour.behavioural_checks(scorer, x, span=span, low=low, high=high, seed=seed,
                                            max_flip_rate=max_flip_rate,
                                            max_direction_failures=max_direction_failures),
        cost=measure_cost(scorer, x, cost_batches),
        seed=seed,
    )


def evaluate_model(model_dir: str | Path, *, seed: int = 0, **options: Any) -> Evaluation:
    """Evaluate the serving artifact in ``model_dir`` (hash-checked) on its held-out split.

    ``options`` go to :func:`evaluate_scorer` (``noise_levels``, ``bins``, ``cost_batches``,
    ``max_flip_rate``, ``max_direction_failures``). A missing or damaged directory raises
    :class:`kit.train.artifact.ArtifactError` (a :class:`kit.errors.KitError`) naming the file.
    """
    return evaluate_scorer(Scorer.load(model_dir), name=str(model_dir), seed=seed, **options)
