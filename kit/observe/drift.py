"""Input drift: do live requests still look like the data the model was trained on?

:func:`drift_score` runs scipy's two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) on every
pixel that varies in the training data, comparing the training distribution with the last rows the
server received, and returns the mean KS statistic (0: same distribution; 1: no overlap at all).
:class:`DriftWindow` keeps those last rows in the server. :func:`shifted` makes the shifted inputs the
notebook sends through the load generator (dimmer, noisier or inverted digits: what a new camera, a
scanner setting or a preprocessing bug does to real inputs).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

#: Shifts :func:`shifted` knows, each a plausible change in the inputs' source.
SHIFTS = ("dim", "noise", "invert")


def reference_rows() -> np.ndarray:
    """The training distribution: scikit-learn's digits as raw pixels (0..16), what training read."""
    from kit.serve.predictor import digit_rows

    return digit_rows()


def informative(reference: np.ndarray) -> np.ndarray:
    """Indices of the features that vary in the reference (a pixel always 0 tells nothing about drift)."""
    return np.flatnonzero(reference.std(axis=0) > 0)


def drift_score(reference: np.ndarray, live: np.ndarray, features: np.ndarray | None = None) -> float:
    """Mean per-feature KS statistic between ``reference`` and ``live`` rows (scipy.stats.ks_2samp)."""
    from scipy.stats import ks_2samp

    live = np.asarray(live, dtype=np.float64)
    if live.ndim != 2 or len(live) < 2:
        return 0.0
    columns = informative(reference) if features is None else features
    result = ks_2samp(reference[:, columns], live[:, columns], axis=0)
    return float(np.mean(result.statistic))


def shifted(rows, kind: str = "dim", seed: int = 0) -> list[list[float]]:
    """``rows`` (raw pixels 0..16) after a shift: ``dim`` (x0.5), ``noise`` (+N(0, 3), clipped) or ``invert``."""
    array = np.asarray(rows, dtype=np.float32)
    if kind == "dim":
        out = array * 0.5
    elif kind == "noise":
        out = np.clip(array + np.random.default_rng(seed).normal(0, 3, array.shape), 0, 16)
    elif kind == "invert":
        out = 16 - array
    else:
        raise ValueError(f"unknown shift {kind!r}; use one of {', '.join(SHIFTS)}")
    return np.round(out, 2).astype(np.float32).tolist()


class DriftWindow:
    """The last ``size`` input rows a server received (thread-safe), scored against the reference on demand."""

    def __init__(self, reference: np.ndarray, size: int = 256) -> None:
        self.reference = np.asarray(reference, dtype=np.float64)
        self.features = informative(self.reference)
        self.rows: deque[np.ndarray] = deque(maxlen=size)
        self.lock = threading.Lock()

    def add(self, array: np.ndarray) -> None:
        with self.lock:
            self.rows.extend(np.asarray(array, dtype=np.float64))

    def score(self) -> float:
        with self.lock:
            live = np.array(self.rows) if self.rows else np.empty((0, self.reference.shape[1]))
        return drift_score(self.reference, live, self.features)
