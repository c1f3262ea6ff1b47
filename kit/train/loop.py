"""The one training function of the kit, and the configuration it checks up front.

:func:`train_func` is what every launcher runs: in this process, under torchrun,
as Ray Train workers, as a Kubeflow TrainJob (locally or on Kubernetes). It accepts
its configuration both ways those callers pass it::

    train_func({"epochs": 3})      # Kubeflow local backend: one positional dict
    train_func(epochs=3)           # Kubeflow on Kubernetes: keyword arguments

It is written against ``torch.distributed``: under torchrun (``WORLD_SIZE`` > 1) it
starts the process group itself (gloo on CPU, nccl on CUDA) and wraps the model in
DDP; under Ray Train it lets Ray do both (``prepare_model`` / ``prepare_data_loader``)
and reports metrics and checkpoints with ``ray.train.report``. Rank 0 prints one
``KIT_METRICS {json}`` line per epoch and a final ``KIT_RESULT {json}`` line, so the
same parser (:func:`parse_output`) reads a terminal, torchrun's output or a pod's log
(the result line only when torchrun started the process). Rank 0 ends every run by
writing the serving artifact (:mod:`kit.train.artifact`) to ``TrainConfig.model_dir``
(default: the standard location the servers of stages 07-09 read).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.config.train import ConfigError, TrainConfig, as_config

METRICS_PREFIX = "KIT_METRICS "
RESULT_PREFIX = "KIT_RESULT "
CHECKPOINT_FILE = "checkpoint.pt"
# --------------------------------------------------------------------------- runtime


@dataclass
class Runtime:
    """Where this process sits in the job: its rank, the world size, its device, who owns the group."""

    rank: int
    local_rank: int
    world_size: int
    device: Any  # torch.device
    on_ray: bool
    owns_process_group: bool

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def ray_train_context():
    """The Ray Train context when this process is a Ray Train worker, else None (never imports Ray)."""
    if "ray.train" not in sys.modules:
        return None
    try:
        import ray.train

        context = ray.train.get_context()
        context.get_world_size()
        return context
    except Exception:  # not inside a Ray Train worker: Ray raises RuntimeError (V2) or others (V1)
        return None


def choose_device(requested: str, local_rank: int = 0, local_world_size: int = 1):
    """``cuda:<local_rank>`` when asked (or 'auto' and every local rank gets a GPU), else the CPU."""
    import torch

    enough_gpus = torch.cuda.is_available() and torch.cuda.device_count() >= local_world_size
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "'cuda' was asked for but torch sees no CUDA device")
    if requested == "cuda" or (requested == "auto" and enough_gpus):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def start_runtime(config: TrainConfig) -> Runtime:
    """Join the job: Ray Train's group when under Ray, else start one when torchrun asked for several."""
    import torch
    import torch.distributed as dist

    context = ray_train_context()
    if context is not None:
        import ray.train.torch

        return Runtime(
            rank=context.get_world_rank(),
            local_rank=context.get_local_rank(),
            world_size=context.get_world_size(),
            device=ray.train.torch.get_device(),
            on_ray=True,
            owns_process_group=False,
        )
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    device = choose_device(config.device, local_rank, local_world_size)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    return Runtime(
        rank=int(os.environ.get("RANK", "0")),
        local_rank=local_rank,
        world_size=world_size,
        device=device,
        on_ray=False,
        owns_process_group=owns,
    )


def check_world_size(config: TrainConfig, runtime: Runtime) -> None:
    """The processes that joined must be the ``config.workers`` the launcher was asked for: a launcher
    or a manifest that started another number is an error naming both, not a silently different run."""
    if runtime.world_size != config.workers:
        raise ConfigError(
            "workers",
            f"{runtime.world_size} process(es) joined this run but the config says workers={config.workers}; "
            "start the job from the config (the kit's launchers and builders read config.workers)",
        )


def stop_runtime(runtime: Runtime) -> None:
    import torch.distributed as dist

    if runtime.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(directory: str | Path, model, optimizer, epoch: int, history: list[dict]) -> Path:
    """Write model, optimiser, epoch and history to ``directory/checkpoint.pt`` atomically."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    state = {"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "history": history}
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(directory: str | Path) -> dict | None:
    """The state saved by :func:`save_checkpoint`, or None when there is none."""
    import torch

    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    return torch.load(path, weights_only=True, map_location="cpu")


def _unwrap(model):
    return getattr(model, "module", model)


def _resume_state(config: TrainConfig, runtime: Runtime) -> dict | None:
    if runtime.on_ray:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            return load_checkpoint(directory)
    return load_checkpoint(config.checkpoint_dir) if config.checkpoint_dir else None


def _save_and_report(config: TrainConfig, runtime: Runtime, model, optimizer, metrics: dict,
                     history: list[dict]) -> str | None:
    """Checkpoint this epoch: to ``checkpoint_dir`` (rank 0), or to Ray Train's storage via report."""
    if runtime.on_ray:
        import ray.train

        if not runtime.is_chief:  # every worker reports; only rank 0 attaches the checkpoint
            ray.train.report(metrics)
            return None
        with tempfile.TemporaryDirectory(prefix="kit-ckpt-") as tmp:
            save_checkpoint(tmp, model, optimizer, metrics["epoch"], history)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        return None
    if config.checkpoint_dir and runtime.is_chief:
        return str(save_checkpoint(config.checkpoint_dir, model, optimizer, metrics["epoch"], history))
    return None


# --------------------------------------------------------------------------- training


def _maybe_crash(config: TrainConfig, runtime: Runtime, epoch: int) -> None:
    """Fault drill: the last rank dies abruptly once, in the middle of ``crash_at_epoch``."""
    if epoch != config.crash_at_epoch or runtime.rank != runtime.world_size - 1:
        return
    marker = Path(config.crash_marker)
    if marker.exists():
        return
    if runtime.on_ray:
        # Ray Train V2 collects reports when its controller polls the workers (every
        # RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, default 2 s); a crash right after a report could lose
        # it. Wait until the last checkpoint is committed, as it would be in a real run whose epochs
        # take longer than the poll interval.
        import ray.train

        ray.train.get_all_reported_checkpoints(
            consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED, timeout_s=60
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"rank {runtime.rank} crashed in epoch {epoch}\n")
    print(f"[fault drill] rank {runtime.rank} exits in the middle of epoch {epoch}", flush=True)
    os._exit(1)


def _load_data(config: TrainConfig):
    from kit.train import data

    if config.data_path:
        return data.load_split(config.data_path)
    return data.build_split(config.dataset, config.samples, config.test_fraction, config.seed)


def _reduce(values: list[float], runtime: Runtime, op: str) -> list[float]:
    if runtime.world_size == 1:
        return values
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=runtime.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor.tolist()


def evaluate(model, loader, device) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``loader`` (the held-out test set)."""
    import torch
    from torch.nn import functional

    model = _unwrap(model)
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x).float()
            loss_sum += functional.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
            count += len(y)
    model.train()
    return loss_sum / count, correct / count


def train_func(config: TrainConfig | dict[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
    """Train, evaluate each epoch on the held-out test set, checkpoint, and return the history.

    Call it with a dict (``train_func({...})``), keyword arguments (``train_func(**{...})``),
    a :class:`TrainConfig`, or nothing for the defaults.
    """
    cfg = as_config(config, **kwargs)
    runtime = start_runtime(cfg)
    try:
        check_world_size(cfg, runtime)
        return _train(cfg, runtime)
    finally:
        stop_runtime(runtime)


def _train(cfg: TrainConfig, runtime: Runtime) -> dict[str, Any]:
    import torch
    from torch.nn import functional
    from torch.nn.parallel import DistributedDataParallel

    from kit.train import data, models

    torch.manual_seed(cfg.seed)
    split = _load_data(cfg)
    model = models.build_model(cfg.model, split.num_features, split.num_classes, cfg.hidden)
    model = model.to(runtime.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = _resume_state(cfg, runtime)
    start_epoch, history = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), list(state["history"])

    loader = data.train_loader(split, cfg.batch_size, runtime.rank, runtime.world_size, cfg.seed)
    if runtime.on_ray:
        import ray.train.torch

        model = ray.train.torch.prepare_model(model)  # DDP when world size > 1
        # Our loader is already sharded with DistributedSampler: the same shards as under torchrun.
        loader = ray.train.torch.prepare_data_loader(loader, add_dist_sampler=False)
    elif runtime.world_size > 1:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=device_ids)
    tests = data.eval_loader(split)
    use_bf16 = cfg.bf16 and runtime.device.type == "cuda" and torch.cuda.is_bf16_supported()
    if runtime.is_chief and cfg.bf16 and not use_bf16:
        print("bf16 asked for but this device does not support it: training in fp32", flush=True)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
    steps = len(loader)
    train_started = time.time()
    checkpoint = None

    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        data.shard_sampler(loader).set_epoch(epoch)
        model.train()
        began = time.perf_counter()
        loss_sum, count = 0.0, 0.0
        for step, (x, y) in enumerate(loader):
            if step == steps // 2:
                _maybe_crash(cfg, runtime, epoch)
            x, y = x.to(runtime.device, non_blocking=True), y.to(runtime.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            count += len(y)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize(runtime.device)
        seconds = time.perf_counter() - began
        loss_sum, count = _reduce([loss_sum, float(count)], runtime, "sum")
        (seconds,) = _reduce([seconds], runtime, "max")
        test_loss, test_accuracy = evaluate(model, tests, runtime.device)
        metrics = {
            "epoch": epoch,
            "epochs": cfg.epochs,
            "loss": round(loss_sum / count, 6),
            "test_loss": round(test_loss, 6),
            "test_accuracy": round(test_accuracy, 6),
            "samples_per_s": round(count / seconds, 1),
            "epoch_s": round(seconds, 4),
            "steps": steps,
            "world_size": runtime.world_size,
        }
        history.append(metrics)
        checkpoint = _save_and_report(cfg, runtime, model, optimizer, metrics, history) or checkpoint
        if runtime.is_chief:
            print(METRICS_PREFIX + json.dumps(metrics), flush=True)

    artifact = str(_write_artifact(cfg, model, split, history)) if runtime.is_chief else None
    result = {
        "history": history,
        "final": history[-1] if history else None,
        "resumed_from_epoch": start_epoch,
        "world_size": runtime.world_size,
        "device": str(runtime.device),
        "precision": "bf16" if use_bf16 else "fp32",
        "parameters": models.count_parameters(_unwrap(model)),
        "checkpoint": checkpoint,
        "train_started_unix": train_started,
        "on_ray": runtime.on_ray,
        "artifact": artifact,
    }
    if runtime.is_chief and "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun started us: a launcher reads it
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    return result


def _write_artifact(cfg: TrainConfig, model, split, history: list[dict]) -> Path:
    """Rank 0's last step: the serving artifact (weights + metadata) in ``cfg.artifact_dir()``."""
    from kit.train import artifact, data

    directory = cfg.artifact_dir()
    artifact.write_artifact(
        directory, _unwrap(model), cfg,
        accuracy=history[-1]["test_accuracy"] if history else None,
        input_shape=(split.num_features,), classes=tuple(range(split.num_classes)),
        preprocessing=data.preprocessing(split.name),
    )
    return directory


def parse_output(lines) -> tuple[list[dict], dict | None]:
    """Epoch metrics and the final result from the output of :func:`train_func` (a log, torchrun's output)."""
    history: list[dict] = []
    result = None
    for line in lines:
        if METRICS_PREFIX in line:
            history.append(json.loads(line.split(METRICS_PREFIX, 1)[1]))
        elif RESULT_PREFIX in line:
            result = json.loads(line.split(RESULT_PREFIX, 1)[1])
    return history, result
