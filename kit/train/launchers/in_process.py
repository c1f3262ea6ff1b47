"""One worker in this process (the notebook's kernel): the baseline for the other launchers."""

from __future__ import annotations

import time

from kit.config.train import ConfigError, TrainConfig, one_worker
from kit.train.launchers.base import LaunchResult, prepare
from kit.train.loop import train_func


def run_in_process(config: TrainConfig | dict | None = None) -> LaunchResult:
    """One worker in this process (the notebook's kernel): the baseline for the other launchers.

    A config with ``workers`` > 1 is a :class:`ConfigError`: this launcher cannot start more processes.
    """
    cfg = prepare(one_worker(config, "run_in_process"))
    if cfg.crash_at_epoch:
        raise ConfigError(
            "crash_at_epoch", "the drill would kill this process; use run_torchrun or run_ray_train"
        )
    began = time.time()
    return LaunchResult.of_train_func("in-process", train_func(cfg.to_dict()), began)
