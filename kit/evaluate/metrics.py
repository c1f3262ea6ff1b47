"""Metrics from predicted probabilities and labels (numpy only): the confusion matrix, per-class
precision/recall/F1 (scikit-learn's definitions) and calibration.

Calibration asks whether a model that says "90 % sure" is right 90 % of the time. The
expected calibration error (ECE, Guo et al. 2017, "On Calibration of Modern Neural Networks")
sorts predictions by their confidence (the top-class probability) into equal-width bins over
[0, 1] and averages ``|accuracy - mean confidence|`` over the bins, weighted by how many
predictions each bin holds. Bin ``b`` of ``n`` holds confidences in ``(b/n, (b+1)/n]``; the first
bin also holds 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.errors import KitError

#: Reliability bins of the expected calibration error.
ECE_BINS = 10


@dataclass(frozen=True)
class ClassScores:
    """One class's precision, recall, F1 and support (rows of that class in the data)."""

    label: int
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ReliabilityBin:
    """Predictions whose confidence lies in ``(lower, upper]``: how many, how sure, how often right."""

    lower: float
    upper: float
    count: int
    confidence: float  # mean top-class probability in the bin (0 when empty)
    accuracy: float  # share of the bin's predictions that are right (0 when empty)

    @property
    def gap(self) -> float:
        return abs(self.accuracy - self.confidence)


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if probs.ndim != 2 or labels.ndim != 1 or len(probs) != len(labels) or len(labels) == 0:
        raise KitError(f"expected probabilities of shape (rows, classes) and labels of shape (rows,) with rows > 0; "
                       f"got {probs.shape} and {labels.shape}", fix="pass model.predict_proba(x) and the matching y")
    if not np.isfinite(probs).all() or (probs < 0).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-4):
        raise KitError("probabilities must be finite, non-negative and sum to 1 per row",
                       fix="apply softmax to the logits first (kit.evaluate.model.softmax)")
    return probs, labels.astype(np.int64)


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``matrix[true, predicted]`` counts (rows: the true class)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(labels, predicted, labels=list(range(classes)))


def per_class(labels: np.ndarray, predicted: np.ndarray, classes: int) -> list[ClassScores]:
    """Precision, recall and F1 of every class (0 where undefined, as scikit-learn's ``zero_division=0``)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=list(range(classes)), zero_division=0)
    return [ClassScores(c, float(precision[c]), float(recall[c]), float(f1[c]), int(support[c]))
            for c in range(classes)]


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """Equal-width confidence bins over [0, 1] (see the module docstring) with their counts, confidence, accuracy."""
    if bins < 1:
        raise KitError(f"bins must be >= 1, got {bins}", fix="use the default, kit.evaluate.metrics.ECE_BINS")
    probs, labels = _check(probs, labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    # bin b holds (b/n, (b+1)/n]; ceil(c*n)-1 maps c=0.3 with n=10 to bin 2, c=0 to bin 0
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    result = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        result.append(ReliabilityBin(
            lower=b / bins, upper=(b + 1) / bins, count=count,
            confidence=float(confidence[inside].mean()) if count else 0.0,
            accuracy=float(correct[inside].mean()) if count else 0.0))
    return result


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: sum over bins of (bin count / rows) x |bin accuracy - bin mean confidence|."""
    table = reliability(probs, labels, bins)
    rows = sum(b.count for b in table)
    return float(sum(b.count / rows * b.gap for b in table))
