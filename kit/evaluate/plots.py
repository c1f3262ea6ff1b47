"""The two pictures of an :class:`~kit.evaluate.report.Evaluation`: a reliability diagram and a confusion
matrix. Each draws on ``ax`` (or a new one) and returns it, as :mod:`kit.serve.loadgen`'s plots do."""

from __future__ import annotations

import numpy as np

from kit.evaluate.report import Evaluation


def plot_reliability(evaluation: Evaluation, ax=None):
    """Accuracy against confidence per bin (bars, width = the bin) and the diagonal of perfect calibration;
    bars below the diagonal mean the model is over-confident there. Empty bins are not drawn."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.2))
    filled = [b for b in evaluation.reliability if b.count]
    width = evaluation.reliability[0].upper - evaluation.reliability[0].lower
    ax.bar([b.lower for b in filled], [b.accuracy for b in filled], width=width, align="edge",
           edgecolor="black", alpha=0.75, label="accuracy in the bin")
    ax.plot([b.confidence for b in filled], [b.confidence for b in filled], "o", color="tab:red", markersize=4,
            label="mean confidence in the bin")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    for b in filled:
        ax.annotate(str(b.count), (b.lower + width / 2, b.accuracy), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability diagram (ECE {evaluation.ece:.3f})")
    ax.legend(fontsize=7, loc="upper left")
    return ax


def plot_confusion(evaluation: Evaluation, ax=None, normalise: bool = True):
    """The confusion matrix (rows: true class; columns: predicted), as shares of each true class when
    ``normalise``; each cell is labelled with its count."""
    import matplotlib.pyplot as plt

    counts = np.asarray(evaluation.confusion)
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalise else counts
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    classes = range(len(counts))
    ax.set_xticks(list(classes))
    ax.set_yticks(list(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = shown.max() / 2
    for i in classes:
        for j in classes:
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > threshold else "black")
    ax.set_title(f"confusion matrix (accuracy {evaluation.accuracy:.3f})")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax
