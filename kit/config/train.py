"""The training configuration: every knob of :func:`kit.train.loop.train_func`, checked up front.

Importable without torch or Ray: the manifest builders and the validator read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.errors import KitError

if TYPE_CHECKING:  # kit.machine reads the machine; TrainConfig must import without it
    from kit.machine.resources import Resources

from kit import paths

#: Models :mod:`kit.train.models` builds and data sets :mod:`kit.train.data` makes (they check they agree).
MODELS = ("mlp", "cnn", "recurrent")
DATASETS = ("digits", "synthetic")
DEVICES = ("auto", "cpu", "cuda")
#: The name of the model the kit trains and serves: the artifact's directory, the servers' URL name.
MODEL_NAME = "digits"


def standard_model_dir() -> Path:
    """Where training writes the serving artifact and the servers look for it (stages 03-09 share it)."""
    return paths.work_dir("models", MODEL_NAME, create=False)


class ConfigError(KitError, ValueError):
    """A configuration value that cannot work; ``field`` names the culprit, ``fix`` the way out."""

    def __init__(self, field: str, message: str, *, fix: str = "") -> None:
        super().__init__(f"TrainConfig.{field}: {message}",
                         fix=fix or f"pass a valid {field!r} (the fields and their defaults: kit/config/train.py)")
        self.field = field


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`train_func` needs, validated when it is created."""

    model: str = "mlp"  # MODELS (kit.train.models builds them)
    hidden: int = 128  # width of the model
    dataset: str = "digits"  # DATASETS (kit.train.data makes them)
    samples: int = 20_000  # size of the "synthetic" data set
    test_fraction: float = 0.2  # held-out share, never trained on
    data_path: str = ""  # a split written by kit.train.data.materialize (workers then need only torch)
    epochs: int = 5
    batch_size: int = 64  # per worker
    lr: float = 0.01
    seed: int = 0
    workers: int = 1  # processes the launcher starts (checked against this machine by check_machine)
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = False  # autocast to bfloat16 on a CUDA device that supports it
    checkpoint_dir: str = ""  # save each epoch here and resume from it ("" = no checkpoints)
    crash_at_epoch: int = 0  # fault drill: the last rank exits in the middle of this epoch, once
    crash_marker: str = ""  # file that records the drill's crash so it happens only once
    model_dir: str = ""  # where rank 0 writes the serving artifact ("" = standard_model_dir())

    def __post_init__(self) -> None:
        for name in ("hidden", "samples", "epochs", "batch_size", "workers"):
            _positive_int(name, getattr(self, name))
        for name in ("seed", "crash_at_epoch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(name, f"must be an integer >= 0, got {value!r}")
        if not _is_number(self.lr) or not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError("lr", f"must be a number > 0, got {self.lr!r}")
        if not _is_number(self.test_fraction) or not 0 < self.test_fraction < 1:
            raise ConfigError("test_fraction", f"must be in (0, 1), got {self.test_fraction!r}")
        _choice("model", self.model, MODELS)
        _choice("dataset", self.dataset, DATASETS)
        _choice("device", self.device, DEVICES)
        if not isinstance(self.bf16, bool):
            raise ConfigError("bf16", f"must be True or False, got {self.bf16!r}")
        if self.crash_at_epoch and not self.crash_marker:
            raise ConfigError("crash_marker", "is needed with crash_at_epoch (the drill crashes once)",
                              fix="set crash_marker to a file path the drill may create")
        if self.crash_at_epoch > self.epochs:
            raise ConfigError("crash_at_epoch", f"{self.crash_at_epoch} > epochs ({self.epochs})",
                              fix=f"use crash_at_epoch <= {self.epochs}, or 0 for no drill")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict; an unknown key (a typo) is an error that lists the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; known fields: {', '.join(sorted(known))}",
                              fix=f"remove {unknown[0]!r} or correct its spelling")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def artifact_dir(self) -> Path:
        """The directory the serving artifact goes to: ``model_dir``, else the standard location."""
        return Path(self.model_dir) if self.model_dir else standard_model_dir()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(name, f"must be an integer > 0, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}",
                          fix=f"use {name}={allowed[0]!r} or another of {', '.join(allowed)}")


def as_config(config: TrainConfig | dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a config, a dict or nothing, with keyword overrides applied.

    ``workers`` is the one worker count: an override that contradicts the count ``config``
    already carries is a :class:`ConfigError` naming both, never a silent winner.
    """
    values = config.to_dict() if isinstance(config, TrainConfig) else dict(config or {})
    if "workers" in overrides and "workers" in values and overrides["workers"] != values["workers"]:
        raise ConfigError("workers", f"the config says workers={values['workers']} but workers={overrides['workers']} "
                                     "was passed as well; set it in one place (config.replace(workers=...))")
    values.update(overrides)
    return TrainConfig.from_dict(values)


def one_worker(config: TrainConfig | dict[str, Any] | None, runner: str) -> TrainConfig:
    """``config`` for a runner that trains in exactly one process (in-process, a Tune trial).

    ``TrainConfig.workers`` is the one place that decides how many processes train: a
    config asking for more is an error naming both values, never silently reduced to one.
    """
    cfg = as_config(config)
    if cfg.workers != 1:
        raise ConfigError(
            "workers",
            f"{runner} trains in one process but the config asks for workers={cfg.workers}; "
            "set workers=1 or use run_torchrun / run_ray_train, which start config.workers processes",
        )
    return cfg


#: The smallest data-parallel group (two ranks): process launchers run it even on one CPU, time-sliced.
SMALLEST_GROUP = 2


def check_machine(config: TrainConfig, resources: Resources | None = None, shared_cpus: bool = False) -> None:
    """Fail fast when this machine cannot give ``config`` what it asks for (CPUs per worker, a GPU).

    Launchers call this before they start any process; :func:`train_func` does not,
    because on Kubernetes each pod sees only its own share of the cluster. ``shared_cpus``: the
    workers are plain processes (torchrun, the Kubeflow SDK's local backend), which the OS can
    time-slice, so a one-CPU machine (Binder) still runs the smallest group, :data:`SMALLEST_GROUP`;
    Ray schedules a worker only onto a free CPU slot, so Ray Train gets no such allowance.
    """
    from kit.machine import resources as kit_resources

    limits = resources or kit_resources.detect()
    allowed = max(limits.cpu_slots, SMALLEST_GROUP) if shared_cpus else limits.cpu_slots
    if config.workers > allowed:
        raise ConfigError(
            "workers",
            f"{config.workers} workers need {config.workers} CPUs but this machine gives {limits.cpus:g} "
            f"(from {limits.cpu_source})",
            fix=f"use workers <= {allowed}, or run on a machine (or cluster) with more CPUs",
        )
    if config.device == "cuda" and limits.gpus < config.workers:
        raise ConfigError(
            "device",
            f"'cuda' with {config.workers} worker(s) needs as many GPUs; this machine has {limits.gpus}",
            fix="use device='auto' (CUDA when there is a GPU) or 'cpu'",
        )
