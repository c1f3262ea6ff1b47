"""Hyperparameter search with Ray Tune over the kit's one training function.

:func:`run_search` runs :func:`kit.train.loop.train_func` once per trial on the local
Ray (started with :func:`kit.machine.local_ray.start` if needed). Each trial runs in a Ray **actor**,
not a task: Tune wraps a function trainable in a ``Trainable`` class (``wrap_function`` in
``ray/tune/trainable/function_trainable.py``, which runs the function in a thread of that actor), and
its ``TuneController._schedule_trial_actor`` starts one actor per trial or reuses a finished trial's
(``reuse_actors``; ``ray/tune/execution/tune_controller.py``). A trial trains **one epoch
at a time** and resumes from its own checkpoint directory between epochs, reporting
each epoch's metrics to Tune with ``ray.tune.report``: that per-epoch signal is what
lets a scheduler such as ASHA stop a poor trial after its first epochs instead of
training it to the end. Ray 2.60's Tune function API is ``ray.tune.report(metrics)``
(``ray.train.report`` belongs to Ray Train workers).

The Kubeflow counterpart is **Katib**: an ``Experiment`` resource with a search
space, an objective and an early-stopping rule, whose trials are TrainJobs.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.config.train import TrainConfig, as_config, check_machine, one_worker

METRIC = "test_accuracy"
MODE = "max"
#: Fields a search may vary; anything else would change what is being compared.
TUNABLE = ("lr", "hidden", "batch_size", "model", "epochs")


#: PSS of one running trial: a Ray actor that imports torch and trains the small model (measured on stage 06).
TRIAL_MIB = 360
#: The rest of a search's peak: the kernel (Tune's driver), Ray's GCS, raylet and agents (measured on stage 06).
SEARCH_BASE_MIB = 800
#: Share of the memory limit the estimate may fill (page cache, spikes, the estimate's error).
HEADROOM = 0.7


@dataclass(frozen=True)
class TrialSlots:
    """How many trials run at once: one per CPU slot, as many as the memory limit holds."""

    count: int | None  # None: no cap from here (a remote cluster: its CPUs decide)
    cpu_slots: int
    memory_bytes: int

    @property
    def by_memory(self) -> int:
        """Trials the memory limit holds beside Ray and the notebook (at least one)."""
        room = HEADROOM * self.memory_bytes / 1024**2 - SEARCH_BASE_MIB
        return max(1, int(room // TRIAL_MIB))

    def __str__(self) -> str:
        if self.count is None:
            return "on the remote cluster: as many trials at once as its CPUs (and its pods' memory) allow"
        limit = f"{self.memory_bytes / 1024**3:.1f} GiB"
        text = (f"{self.count} trial(s) at once: {self.cpu_slots} CPU slot(s), and {limit} of memory holds "
                f"{self.by_memory} trial(s) of about {TRIAL_MIB} MiB beside Ray and this notebook")
        if self.count < self.cpu_slots:
            needed = math.ceil((SEARCH_BASE_MIB + self.cpu_slots * TRIAL_MIB) / HEADROOM / 1024 * 10) / 10
            text += f"; with {needed:.1f} GiB or more, {self.cpu_slots} would run at once (one per CPU)"
        return text


def trial_slots(cpu_slots: int | None = None, memory_bytes: int | None = None) -> TrialSlots:
    """Trials to run at once on this machine: ``min(CPU slots, what the memory limit holds)``.

    Defaults come from :func:`kit.machine.resources.detect` (the cgroup's limits, not the host's); on a
    remote cluster (Ray Client) this machine's limits do not apply and the count is None (no cap).
    """
    from kit.machine import ray_cluster

    if cpu_slots is None and memory_bytes is None and ray_cluster.is_remote():
        return TrialSlots(None, 0, 0)
    if cpu_slots is None or memory_bytes is None:
        from kit.machine import resources

        found = resources.detect()
        cpu_slots = found.cpu_slots if cpu_slots is None else cpu_slots
        memory_bytes = found.memory_bytes if memory_bytes is None else memory_bytes
    probe = TrialSlots(1, cpu_slots, memory_bytes)
    return TrialSlots(max(1, min(cpu_slots, probe.by_memory)), cpu_slots, memory_bytes)


@dataclass
class SearchResult:
    """What :func:`run_search` gives back: one row per trial, the best configuration, timings."""

    table: Any  # pandas DataFrame: one row per trial, best first
    best_config: dict
    best_metric: float
    metric: str
    mode: str
    wall_s: float
    histories: dict  # trial id -> list of per-epoch metrics (pandas DataFrames)
    result_grid: Any = None  # ray.tune.ResultGrid
    slots: TrialSlots | None = None  # how many trials could run at once here, and why (None: set by the caller)

    @property
    def stopped_early(self) -> int:
        """Trials the scheduler stopped before their last epoch."""
        return int((self.table["epochs_run"] < self.table["epochs"]).sum())


def tune_trainable(config: dict, data_dir: str | None = None) -> None:
    """One Tune trial: :func:`train_func`, one epoch per call, resuming from the trial's checkpoint dir.

    Without a ``data_path`` the trial writes the data file into ``data_dir`` first (atomically: trials
    that start together write the same bytes), so that the notebook that drives the search never
    imports torch (:mod:`kit.train.data` does).
    """
    import ray.tune

    from kit.train import data
    from kit.train.loop import train_func

    cfg = as_config(config)
    if not cfg.data_path and data_dir:
        cfg = cfg.replace(data_path=str(data.materialize(cfg.dataset, cfg.samples, cfg.test_fraction, cfg.seed,
                                                         directory=Path(data_dir))))
    with tempfile.TemporaryDirectory(prefix="kit-tune-") as directory:
        for epoch in range(1, cfg.epochs + 1):
            with contextlib.redirect_stdout(io.StringIO()):  # Tune reports the metrics; no KIT_METRICS lines
                # each trial's model stays in its own directory: a search must not overwrite the trained model
                result = train_func(cfg.replace(epochs=epoch, checkpoint_dir=directory,
                                                model_dir=f"{directory}/model").to_dict())
            metrics = dict(result["final"])
            metrics["epochs"] = cfg.epochs
            ray.tune.report(metrics)


def asha(metric: str = METRIC, mode: str = MODE, max_t: int = 4, grace_period: int = 1,
         reduction_factor: int = 2):
    """ASHA: stop the worse trials at each rung (epochs grace_period, x reduction_factor, ...)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", metric=metric, mode=mode, max_t=max_t,
                         grace_period=grace_period, reduction_factor=reduction_factor)


def check_space(space: dict) -> None:
    """Fail fast on a search space that names fields :func:`train_func` does not know."""
    if not isinstance(space, dict) or not space:
        raise ValueError("the search space must be a non-empty dict of TrainConfig fields")
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(space) - known)
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {unknown}; known: {', '.join(sorted(known))}")


def run_search(space: dict, base: TrainConfig | dict | None = None, num_samples: int = 4,
               scheduler: Any = None, metric: str = METRIC, mode: str = MODE, max_concurrent: int | None = None,
               seed: int = 0, storage_path: str | Path | None = None, name: str | None = None) -> SearchResult:
    """Search ``space`` (Tune distributions over TrainConfig fields) on top of ``base``.

    ``num_samples`` trials are drawn (grid values are crossed with it as Tune does);
    each uses one CPU; ``max_concurrent`` (default: :func:`trial_slots`, from this machine's CPUs
    and memory limit) bounds how many run at once.
    ``scheduler`` (e.g. :func:`asha`) may stop trials early; it must use the same
    ``metric`` and ``mode``.
    """
    import ray.tune

    from kit.machine import local_ray as raylocal
    from kit.machine import ray_cluster

    check_space(space)
    cfg = one_worker(base, "a Tune trial")
    check_machine(cfg)
    # trials load the data from a file on the shared storage, so that every node sees it; the first trials write it
    data_dir = None if cfg.data_path else str(ray_cluster.shared_dir("data"))
    slots = trial_slots() if max_concurrent is None else None
    if slots is not None:
        max_concurrent = slots.count
    # A scheduler built with its own metric and mode must agree with the search's; Tune then
    # refuses them a second time in TuneConfig, so they are passed there only when it has none.
    scheduler_sets_metric = scheduler is not None and getattr(scheduler, "metric", None) is not None
    if scheduler_sets_metric:
        s_metric, s_mode = scheduler.metric, getattr(scheduler, "_mode", None)
        if (s_metric, s_mode) != (metric, mode):
            raise ValueError(f"the scheduler optimises {s_metric!r} ({s_mode}) but the search {metric!r} ({mode})")
    raylocal.start()
    param_space = {**cfg.to_dict(), **space}
    name = name or f"kit-tune-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = Path(storage_path) if storage_path else ray_cluster.shared_dir("ray_results")
    from ray.tune.search.basic_variant import BasicVariantGenerator

    tuner = ray.tune.Tuner(
        ray.tune.with_resources(ray.tune.with_parameters(tune_trainable, data_dir=data_dir), {"cpu": 1}),
        param_space=param_space,
        tune_config=ray.tune.TuneConfig(
            metric=None if scheduler_sets_metric else metric, mode=None if scheduler_sets_metric else mode,
            num_samples=num_samples, scheduler=scheduler,
            # Tune ignores max_concurrent_trials (with a warning) when given a BasicVariantGenerator: it takes the cap
            search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent or 0),
            reuse_actors=True,  # a trial process imports torch once, not once per trial
        ),
        run_config=ray.tune.RunConfig(name=name, storage_path=str(storage), verbose=0),
    )
    began = time.time()
    grid = tuner.fit()
    wall = time.time() - began
    trials = [grid[i] for i in range(len(grid))]  # ResultGrid is indexable (its iteration is untyped)
    errors = [r.error for r in trials if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed; first: {errors[0]!r}")
    table = results_table(grid, list(space), metric, mode)
    best = grid.get_best_result(metric=metric, mode=mode, scope="all")
    best_config, best_history = best.config or {}, best.metrics_dataframe
    if best_history is None:
        raise RuntimeError(f"the best trial ({best.path}) reported no metrics")
    return SearchResult(
        table=table,
        best_config={k: best_config[k] for k in space},
        best_metric=float(best_history[metric].max() if mode == "max" else best_history[metric].min()),
        metric=metric,
        mode=mode,
        wall_s=wall,
        histories={(r.metrics or {}).get("trial_id", str(i)): r.metrics_dataframe for i, r in enumerate(trials)},
        result_grid=grid,
        slots=slots,
    )


def results_table(grid, columns: list[str], metric: str = METRIC, mode: str = MODE):
    """One row per trial: the searched values, epochs run, the best and last metric; best first."""
    import pandas as pd

    rows = []
    for i, result in enumerate(grid):
        frame = result.metrics_dataframe
        best = frame[metric].max() if mode == "max" else frame[metric].min()
        rows.append({
            "trial": result.metrics.get("trial_id", str(i)),
            **{c: result.config[c] for c in columns},
            "epochs_run": int(frame["epoch"].max()),
            "epochs": int(result.config["epochs"]),
            f"best_{metric}": round(float(best), 4),
            f"last_{metric}": round(float(frame[metric].iloc[-1]), 4),
        })
    table = pd.DataFrame(rows).sort_values(f"best_{metric}", ascending=(mode == "min"), kind="stable")
    return table.reset_index(drop=True)


def plot_histories(result: SearchResult, ax=None):
    """The metric per epoch for every trial: ASHA's early stops show as short lines."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for trial, frame in result.histories.items():
        ax.plot(frame["epoch"], frame[result.metric], marker="o", label=trial)
    ax.set_xlabel("epoch")
    ax.set_ylabel(result.metric)
    ax.set_title(f"{len(result.histories)} trials, {result.stopped_early} stopped early")
    ax.legend(fontsize="x-small", ncol=2)
    return ax
