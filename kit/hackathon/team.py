"""A team's side of the capstone (stage 11): the data, training under the compute budget, submitting, the ranking.

:meth:`Workspace.create` writes the team's data (:func:`kit.hackathon.challenge.write_team_data`) and a
**practice organiser** next to it: the hidden test set and a results database, scored by the same
:mod:`kit.hackathon.scorer` the organiser runs on event day (the learner could read these labels: it is
practice, not the event). :meth:`Workspace.train` runs the kit's in-process launcher on the team's data,
optionally augmented by the team's own function, and measures the CPU-seconds it took; a candidate over the
event's training budget is refused by :meth:`Workspace.submit`. On event day the team serves its model in its
own namespace and the organiser scores that endpoint: :meth:`Workspace.cluster_submission` renders the
InferenceService and the organiser's command.
"""

from __future__ import annotations

import contextlib
import io
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import KitError
from kit.hackathon import challenge, scorer, scoring

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
#: What a team may set when it trains (the rest of TrainConfig is fixed by the challenge).
TEAM_FIELDS = ("model", "hidden", "epochs", "batch_size", "lr", "seed")
#: The baseline submission: it scores, and any team that trains a little more or augments beats it.
BASELINE: dict[str, Any] = {"model": "mlp", "hidden": 16, "epochs": 3, "batch_size": 64, "lr": 0.01}

_current: Workspace | None = None


def current() -> Workspace | None:
    """The workspace this kernel created last (stage 11's exercise checks train on its data)."""
    return _current


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and all its threads so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Candidate:
    """One trained model: its artifact, its config, and what training cost and scored on the public validation."""

    name: str
    model_dir: Path
    config: dict[str, Any]
    augmented: bool
    train_cpu_s: float
    wall_s: float
    val_accuracy: float
    history: list[dict] = field(repr=False, default_factory=list)

    def summary(self, budget_cpu_s: float) -> str:
        verdict = "within" if self.train_cpu_s <= budget_cpu_s else "OVER"
        return (f"{self.name}: validation accuracy {self.val_accuracy:.3f}, training {self.train_cpu_s:.1f} "
                f"CPU-s ({verdict} the {budget_cpu_s:g} CPU-s budget), {self.wall_s:.1f} s wall"
                f"{', augmented data' if self.augmented else ''}")


def team_config(values: dict[str, Any]) -> dict[str, Any]:
    """The team's training settings, checked: only :data:`TEAM_FIELDS`, values a TrainConfig accepts."""
    from kit.config.train import TrainConfig

    if not isinstance(values, dict):
        raise KitError(f"a training config is a dict of settings, not {type(values).__name__}",
                       fix=f"e.g. {BASELINE}")
    other = sorted(set(values) - set(TEAM_FIELDS))
    if other:
        raise KitError(f"{other} cannot be set in the challenge (the data, device and workers are fixed)",
                       fix=f"set only {', '.join(TEAM_FIELDS)}")
    TrainConfig.from_dict({**BASELINE, **values})  # a bad value raises ConfigError naming the field
    return {**BASELINE, **values}


def augmented_arrays(arrays: dict[str, np.ndarray], augment: Augment, seed: int) -> dict[str, np.ndarray]:
    """The team's arrays with one augmented copy of every training row added (labels repeated)."""
    x = arrays["x_train"]
    extra = np.asarray(augment(x.copy(), np.random.default_rng(seed)), dtype=np.float32)
    if extra.shape != x.shape or not np.isfinite(extra).all():
        raise KitError(f"the augmentation returned shape {extra.shape} (or non-finite values) for input {x.shape}",
                       fix="return an array of the same shape, pixels 0..16 (np.clip)")
    extra = np.clip(extra, 0.0, challenge.PIXEL_MAX)
    return {**arrays, "x_train": np.concatenate([x, extra]), "y_train": np.concatenate([arrays["y_train"]] * 2)}


@dataclass
class Workspace:
    """A team's folder: ``data/`` (its data), ``models/`` (its candidates), and locally ``organiser/`` (practice)."""

    team: str
    root: Path
    budget: scoring.ScoringBudget = field(default_factory=scoring.ScoringBudget)
    weights: scoring.ScoringWeights = field(default_factory=scoring.ScoringWeights)
    candidates: dict[str, Candidate] = field(default_factory=dict)

    @classmethod
    def create(cls, team: str, root: str | Path) -> Workspace:
        """Write the team's data and the practice organiser's hidden set under ``root``."""
        global _current
        workspace = cls(team=team, root=Path(root))
        challenge.write_team_data(workspace.data_dir)
        challenge.write_hidden(workspace.hidden_dir)
        _current = workspace
        return workspace

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def db(self) -> Path:
        return scorer.default_paths(self.root / "organiser")[0]

    @property
    def hidden_dir(self) -> Path:
        return scorer.default_paths(self.root / "organiser")[1]

    def arrays(self) -> dict[str, np.ndarray]:
        """The team's training and validation arrays (raw pixels 0..16)."""
        with np.load(self.data_dir / challenge.TEAM_FILE) as data:
            return {key: data[key] for key in data.files}

    def train(self, name: str, augment: Augment | None = None, **settings: Any) -> Candidate:
        """Train one candidate with the kit's in-process launcher; its CPU-seconds include the augmentation."""
        from kit.train.launchers import run_in_process

        config = team_config(settings)
        began_cpu, began = cpu_seconds(), time.time()
        split = self.data_dir / challenge.SPLIT_FILE
        if augment is not None:
            split = challenge.write_split(self.data_dir / f"split-{name}.pt",
                                          augmented_arrays(self.arrays(), augment, config.get("seed", 0)))
        output = io.StringIO()  # the launcher's KIT_METRICS lines: the history carries them
        with contextlib.redirect_stdout(output):
            result = run_in_process({**config, "data_path": str(split), "device": "cpu",
                                     "model_dir": str(self.root / "models" / name)})
        final = result.final or {}
        candidate = Candidate(name, Path(str(result.artifact)), config, augment is not None,
                              round(cpu_seconds() - began_cpu, 2), round(time.time() - began, 2),
                              float(final.get("test_accuracy", 0.0)), result.history)
        self.candidates[name] = candidate
        return candidate

    def _refuse_over_budget(self, candidate: Candidate) -> None:
        if candidate.train_cpu_s > self.budget.max_train_cpu_s:
            raise KitError(f"{candidate.name} took {candidate.train_cpu_s:.1f} CPU-s to train, over the event's "
                           f"budget of {self.budget.max_train_cpu_s:g}",
                           fix="fewer epochs, a smaller model, or less augmentation; then train it again")

    def submit(self, candidate: Candidate, smoke: bool = False) -> scorer.Outcome:
        """Score ``candidate`` with the practice organiser: queued, measured, recorded."""
        from kit.hackathon.store import Store

        self._refuse_over_budget(candidate)
        hidden = str(self.hidden_dir)
        config = scorer.ScorerConfig.smoke(hidden, weights=self.weights, budget=self.budget) if smoke else \
            scorer.ScorerConfig(hidden, weights=self.weights, budget=self.budget)
        with Store(self.db) as store:
            submission = store.submit(f"{self.team}/{candidate.name}", "artifact", str(candidate.model_dir))
            (outcome,) = scorer.drain(store, config, only=submission)
        return outcome

    def ranking(self) -> list[dict[str, Any]]:
        """The practice leaderboard: one row per submitted candidate, best score first."""
        from kit.hackathon import board
        from kit.hackathon.store import Store

        with Store(self.db) as store:
            teams = board.leaderboard(store)["teams"]
        rows = []
        for entry in teams:
            best = entry["best"] or entry["latest"]
            rows.append({"rank": entry["rank"], "submission": entry["team"], "score": best["score"],
                         "accuracy": best["accuracy"], "shifted": best["shifted_accuracy"], "p95_ms": best["p95_ms"],
                         "cpu_s_per_1k": best["cpu_s_per_1k"], "status": best["status"], "reason": best["reason"]})
        return rows

    def publish(self, candidate: Candidate, models_root: str | Path | None = None) -> Path:
        """Copy ``candidate``'s artifact to the team's models volume (mounted at ``/models`` in its notebook
        servers by the event's JupyterHub values), where its InferenceService reads it."""
        import shutil

        from kit.k8s.builders import serving

        self._refuse_over_budget(candidate)
        root = Path(models_root or serving.MODELS_MOUNT)
        if not root.is_dir():
            raise KitError(f"{root} does not exist: the team's models volume is not mounted here",
                           fix="run this on the event's JupyterHub (its values mount the volume), or pass "
                               "models_root=")
        return Path(shutil.copytree(candidate.model_dir, root / candidate.name, dirs_exist_ok=True))

    def cluster_submission(self, candidate: Candidate) -> tuple[list[dict], str]:
        """The InferenceService that serves ``candidate`` from the team's models volume, and the organiser's
        command to score it."""
        from kit.k8s.builders import serving

        self._refuse_over_budget(candidate)
        service = serving.inferenceservice(namespace=self.team,
                                           storage_uri=f"pvc://{serving.MODELS_CLAIM}/{candidate.name}")
        host = f"http://{service['metadata']['name']}-predictor.{self.team}.svc.cluster.local"
        command = f"python -m kit hackathon score --event event.yaml --team {self.team} --endpoint {host}"
        return [service], command


def plot_history(*candidates: Candidate):
    """Validation accuracy per epoch of each candidate, on one axis."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3))
    for candidate in candidates:
        epochs = [row["epoch"] for row in candidate.history]
        axis.plot(epochs, [row["test_accuracy"] for row in candidate.history], marker="o", label=candidate.name)
    axis.set(xlabel="epoch", ylabel="validation accuracy")
    axis.legend()
    figure.tight_layout()
    return figure


def plot_examples(arrays: dict[str, np.ndarray], per_kind: int = 6):
    """One row of training images per corruption, and the blurred kind only the hidden set has."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    clean = challenge.digits()[0][:per_kind]
    kinds = ("clean", *challenge.TRAIN_CORRUPTIONS)
    figure, axes = plt.subplots(len(kinds), per_kind, figsize=(per_kind * 0.9, len(kinds) * 0.95))
    for row, kind in enumerate(kinds):
        images = challenge.corrupt(clean, kind, rng)
        for column in range(per_kind):
            axis = axes[row, column]
            axis.imshow(images[column].reshape(8, 8), cmap="gray_r", vmin=0, vmax=challenge.PIXEL_MAX)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(kind, rotation=0, ha="right", va="center")
    figure.suptitle(f"the kinds of image in the training data ({len(arrays['y_train'])} rows)", fontsize=10)
    figure.tight_layout()
    return figure
