"""Exercises of stage 04 (Ray Train).

04.resume_epoch asks where training resumes after the fault drill's crash. 04.train_loop is the learner's own
Ray Train loop and trainer: the check reads the trainer's configuration first (fast, no run), then runs it on
the real local Ray through the fault drill (:mod:`kit.course.exercises.stage04_drill`): the worker crashes
in epoch :data:`DRILL_CRASH_AT`, once, and the restarted one must resume from the checkpoint. The loop reads
its rows from a file and takes its rank's share: Ray Data (``get_dataset_shard``), the cluster's way, starts
two more actors (~270 MiB), past the stage's 1.5 GiB on a 2 GiB pod. 04.3 (stretch) is the RayJob that runs
the drill's training in the team's Kueue queue.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.course.exercises import NotYetRight, exercise, expect_manifest, listed, stage04_drill, validation_problems
from kit.versions import LOCAL_QUEUE, NAMESPACE, QUEUE_LABEL

#: The fault drill of stage 04: the last worker crashes in the middle of this epoch, once.
DRILL_EPOCHS = 3
DRILL_CRASH_AT = 2
#: Exercise 04.2: rows of the digits the workers share, and the run's name.
ROWS = 256
RUN_NAME = "ex04-train-loop"


def exercise_config(data: str) -> dict[str, Any]:
    """The ``train_loop_config`` the check passes to ``make_trainer``: the drill's epochs, the rows' file."""
    return {"epochs": DRILL_EPOCHS, "batch_size": 64, "lr": 0.5, "data": data}


def write_rows(path: Path, rows: int = ROWS) -> Path:
    """The first ``rows`` digits as ``path`` (.npz: ``x`` float32 pixels 0..1, ``y`` labels), for the workers."""
    import numpy as np

    from kit.train import ray_data

    digits = ray_data.digits_rows(rows)
    np.savez(path, x=np.stack([row["x"] for row in digits]), y=np.array([row["y"] for row in digits]))
    return path


def _whole_number(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotYetRight(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
    return value


# --------------------------------------------------------------------------- 04.2: the reference answer


def reference_train_loop(config: dict) -> None:
    """One Ray Train worker: resume from the newest checkpoint if any, train on its rank's rows, report each epoch."""
    import tempfile

    import numpy as np
    import ray.train
    import torch

    torch.manual_seed(0)
    context = ray.train.get_context()
    rows = np.load(config["data"])
    share = slice(context.get_world_rank(), None, context.get_world_size())  # this worker's rows
    x, y = torch.from_numpy(rows["x"][share]), torch.from_numpy(rows["y"][share])
    model = torch.nn.Linear(64, 10)  # with several workers: ray.train.torch.prepare_model(model) for DDP
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"])
    first = 1
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = torch.load(os.path.join(directory, "state.pt"))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first = state["epoch"] + 1
    for epoch in range(first, config["epochs"] + 1):
        total = 0.0
        for xb, yb in zip(x.split(config["batch_size"]), y.split(config["batch_size"]), strict=True):
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        with tempfile.TemporaryDirectory() as directory:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
            torch.save(state, os.path.join(directory, "state.pt"))
            ray.train.report({"epoch": epoch, "loss": total / len(y)},
                             checkpoint=ray.train.Checkpoint.from_directory(directory))


def _reference_make_trainer() -> Callable:
    def make_trainer(config, storage_path, name):
        import ray.train

        from kit.train.ray_local import torch_trainer_class

        TorchTrainer = torch_trainer_class()
        return TorchTrainer(
            reference_train_loop,
            train_loop_config=config,
            scaling_config=ray.train.ScalingConfig(num_workers=1),
            run_config=ray.train.RunConfig(name=name, storage_path=storage_path,
                                           failure_config=ray.train.FailureConfig(max_failures=1)),
        )

    return make_trainer


# --------------------------------------------------------------------------- 04.2: the trainer, before it runs


def precheck_trainer(trainer: Any, config: dict, storage_path: str, name: str) -> None:
    """What the check can say from the trainer's configuration alone."""
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    if not isinstance(trainer, DataParallelTrainer):
        raise NotYetRight(f"make_trainer returned a {type(trainer).__name__}: return the TorchTrainer(...) itself "
                          "(the check calls fit())")
    loop = trainer.train_loop_per_worker
    if not callable(loop) or len(inspect.signature(loop).parameters) != 1:
        raise NotYetRight("train_loop_per_worker must take one argument, config: Ray passes it train_loop_config")
    if trainer.train_loop_config != config:
        raise NotYetRight(f"train_loop_config is {trainer.train_loop_config!r}: pass the config make_trainer "
                          "receives, which the workers get as train_loop_per_worker(config)")
    if trainer.datasets:
        raise NotYetRight(f"datasets={{{', '.join(map(repr, trainer.datasets))}: ...}}: this exercise's rows are in "
                          "config['data'] (each worker takes its rank's share); Ray Data's datasets start two more "
                          "actors, past this machine's memory")
    workers = trainer.scaling_config.num_workers
    if workers != 1:
        raise NotYetRight(f"ScalingConfig(num_workers={workers}): this exercise runs one worker (a Python process "
                          "with torch: memory); the drill below uses as many as the machine allows")
    run = trainer.run_config
    if run.name != name or str(run.storage_path) != str(storage_path):
        raise NotYetRight(f"RunConfig(name={run.name!r}, storage_path={run.storage_path!r}): use the name and "
                          "storage_path make_trainer receives - a run is found again by both")
    _check_max_failures(run.failure_config.max_failures if run.failure_config else 0)


def _check_max_failures(max_failures: Any) -> None:
    max_failures = _whole_number(max_failures, "FailureConfig(max_failures)")
    if max_failures == 0:
        raise NotYetRight("max_failures=0 (the default) allows no restart: the first crashed worker fails the whole "
                          "run (the last section of this stage shows exactly that)")
    if max_failures == -1:
        raise NotYetRight("max_failures=-1 restarts without limit: a worker that crashes every time (a bug, an OOM) "
                          "would restart forever and hold its GPUs; allow a bounded number")
    if max_failures < -1:
        raise NotYetRight(f"max_failures={max_failures} is not valid: use 0, a positive number, or -1")
    if max_failures > 10:
        raise NotYetRight(f"max_failures={max_failures} survives a crash, but a crash loop would run for a long "
                          "time before anyone notices; allow a few")


# --------------------------------------------------------------------------- 04.2: the run


#: What exercise 04.2's run left for the notebook to show: the attempts' notes and the Result.
last_drill: dict[str, Any] = {}


def run_exercise(make_trainer: Callable) -> tuple[list[dict], Any]:
    """Build the learner's trainer, check its configuration, run it through the fault drill (storage in a
    scratch directory, removed afterwards)."""
    from kit.machine import local_ray, ray_cluster
    from kit.train.launchers.ray_train import RAY_TRAIN_SMALL_MACHINE_ENV

    for key, value in RAY_TRAIN_SMALL_MACHINE_ENV.items():
        os.environ.setdefault(key, value)
    if not ray_cluster.is_remote():
        local_ray.start()
    storage = ray_cluster.scratch_dir("kit-ex04-")
    try:
        config = exercise_config(str(write_rows(storage / "digits.npz")))
        try:
            trainer = make_trainer(config, str(storage), RUN_NAME)
        except NotYetRight:
            raise
        except Exception as error:  # the learner's code may raise anything
            raise NotYetRight(f"make_trainer(...) raised {type(error).__name__}: {str(error)[:300]}") from None
        precheck_trainer(trainer, config, str(storage), RUN_NAME)
        return stage04_drill.run_drill(trainer, storage / "notes", DRILL_EPOCHS, DRILL_CRASH_AT)
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def drill(make_trainer: Callable) -> dict[str, Any]:
    """The fault drill with ``make_trainer``'s trainer: the check's run when it checked this one (no second
    run), else a run now (the skip-ahead's reference); ``attempts`` (each worker's notes) and ``metrics``."""
    if last_drill.get("make_trainer") is not make_trainer:
        attempts, result = run_exercise(make_trainer)
        last_drill.clear()
        last_drill.update(make_trainer=make_trainer, attempts=attempts, metrics=result.metrics)
    return last_drill


@exercise(
    "04.train_loop",
    "Ray Train: your own training loop, with checkpoints, through the fault drill",
    "In train_loop_per_worker(config): context = ray.train.get_context(); rows = numpy.load(config['data']); take "
    "this worker's share, rows['x'][rank::world_size] (context.get_world_rank(), get_world_size()). checkpoint = "
    "ray.train.get_checkpoint(); if there is one, load the state from checkpoint.as_directory() and start at its "
    "epoch + 1. Each epoch, train on batches of config['batch_size'], then save model, optimiser and epoch to a "
    "temporary directory d and call ray.train.report({'epoch': epoch, 'loss': ...}, checkpoint="
    "ray.train.Checkpoint.from_directory(d)). make_trainer returns TorchTrainer(train_loop_per_worker, "
    "train_loop_config=config, scaling_config=ScalingConfig(num_workers=1), run_config=RunConfig(name=name, "
    "storage_path=storage_path, failure_config=FailureConfig(max_failures=1))).",
    reference=_reference_make_trainer,
)
def check_train_loop(make_trainer) -> None:
    """Exercise 04.train_loop's check: the trainer's configuration, then the fault drill on the local Ray."""
    if not callable(make_trainer):
        raise NotYetRight(f"`make_trainer` is a {type(make_trainer).__name__}; write a function "
                          "make_trainer(config, storage_path, name) that returns the trainer")
    first, second = (stage04_drill.epochs(attempt) for attempt in drill(make_trainer)["attempts"][:2])
    print(f"   attempt 1 reported epochs {first[:-1]} with checkpoints, then its worker crashed in epoch "
          f"{DRILL_CRASH_AT}; attempt 2 loaded epoch {DRILL_CRASH_AT - 1}'s checkpoint and reported epochs {second}")


# --------------------------------------------------------------------------- 04.1


@exercise(
    "04.resume_epoch",
    "Checkpoints: which epoch does training resume from?",
    "train_func checkpoints at the end of every epoch. The crash happens in the middle of epoch "
    f"{DRILL_CRASH_AT}: which checkpoint is the newest one that exists, and which epoch comes after it?",
    reference=lambda: DRILL_CRASH_AT,
)
def check_resume_epoch(epoch) -> None:
    epoch = _whole_number(epoch, "resume_epoch")
    crash = DRILL_CRASH_AT
    if epoch == crash + 1:
        raise NotYetRight(
            f"epoch {crash} was only half done when the worker died: its checkpoint was never written, so "
            f"the restarted workers load the checkpoint of epoch {crash - 1} and train epoch {crash} again"
        )
    if epoch == crash - 1:
        raise NotYetRight(
            f"epoch {crash - 1} finished and its checkpoint was saved before the crash: it is not trained "
            f"again; the restarted workers start with the epoch after it"
        )
    if epoch == 0:
        raise NotYetRight(
            f"training restarts from scratch only when no checkpoint exists; here epoch {crash - 1}'s "
            "checkpoint does"
        )
    if not 1 <= epoch <= DRILL_EPOCHS:
        raise NotYetRight(f"the drill trains epochs 1..{DRILL_EPOCHS}; {epoch} is not one of them")
    if epoch != crash:
        raise NotYetRight(f"the crash is in epoch {crash}; training does not resume from epoch {epoch}")


# --------------------------------------------------------------------------- 04.3, stretch: the same on a cluster

#: The stretch RayJob: this many Ray Train workers (one pod each), surviving one crash.
STRETCH_WORKERS = 2


def _reference_rayjob() -> dict:
    from kit.k8s.builders import training

    return training.rayjob({"epochs": DRILL_EPOCHS, "workers": STRETCH_WORKERS}, namespace=NAMESPACE,
                           max_failures=1, queue=LOCAL_QUEUE)


def _entrypoint_option(entrypoint: str, option: str) -> str | None:
    import shlex

    words = shlex.split(entrypoint)
    return words[words.index(option) + 1] if option in words[:-1] else None


@exercise(
    "04.rayjob",
    "Stretch: the drill's training as a RayJob in the team's queue",
    "kit.k8s.builders.training.rayjob(config, namespace=..., max_failures=..., queue=...) builds it: "
    f"config {{'epochs': {DRILL_EPOCHS}, 'workers': {STRETCH_WORKERS}}}, namespace {NAMESPACE!r}, a bounded "
    f"max_failures so one crashed pod does not end the job, queue {LOCAL_QUEUE!r}.",
    reference=_reference_rayjob,
)
def check_rayjob(job) -> None:
    import json

    expect_manifest(job, "RayJob")
    metadata, spec = job.get("metadata") or {}, job.get("spec") or {}
    if metadata.get("namespace") != NAMESPACE:
        raise NotYetRight(f"namespace {metadata.get('namespace')!r}: the team's queue lives in {NAMESPACE!r}")
    if (metadata.get("labels") or {}).get(QUEUE_LABEL) != LOCAL_QUEUE:
        raise NotYetRight(f"no {QUEUE_LABEL}={LOCAL_QUEUE} label: without it Kueue never sees the job, which "
                          "starts at once, whether or not the team's quota has room")
    entrypoint = str(spec.get("entrypoint") or "")
    config = json.loads(_entrypoint_option(entrypoint, "--config") or "{}")
    groups = (spec.get("rayClusterSpec") or {}).get("workerGroupSpecs") or [{}]
    if config.get("workers") != STRETCH_WORKERS or groups[0].get("replicas") != STRETCH_WORKERS:
        raise NotYetRight(f"the training runs {config.get('workers')} Ray Train worker(s) on "
                          f"{groups[0].get('replicas')} worker pod(s): the config's workers is "
                          f"{STRETCH_WORKERS}, and the builder gives each its pod")
    _check_max_failures(int(_entrypoint_option(entrypoint, "--max-failures") or 0))
    problems = validation_problems([job], queue=LOCAL_QUEUE)
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s) from the validator:{listed(problems)}")
