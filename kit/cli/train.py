"""``python -m kit train``: train with one launcher and write the serving artifact.

::

    python -m kit train --launcher inprocess --epochs 3
    python -m kit train --launcher torchrun --workers 2 --model-dir build/models/digits
    python -m kit train --launcher ray --config '{"hidden": 256}' --json

Every launcher runs :func:`kit.train.loop.train_func`, whose rank 0 ends by writing the
artifact (:mod:`kit.train.artifact`) that ``python -m kit serve`` loads. Exit 0 when the
run finished, 1 when it failed (the message and its fix), 2 for a bad option or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from kit.config.train import ConfigError, as_config, standard_model_dir

if TYPE_CHECKING:
    from kit.train.launchers import LaunchResult

#: The launchers, by the names of kit.train.launchers.LAUNCHERS (a test keeps them equal; no torch import here).
LAUNCHERS = ("in-process", "torchrun", "ray-train", "kubeflow-local")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launcher", choices=LAUNCHERS, default="in-process")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes to train with (default: 1 in process, 2 for torchrun and ray, 1 for kubeflow)")
    parser.add_argument("--epochs", type=int, default=None, help="overrides the configuration's epochs")
    parser.add_argument("--model-dir", default=None,
                        help=f"where the serving artifact goes (default: {standard_model_dir()})")
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON, e.g. '{\"hidden\": 64}'")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (history, artifact)")
    return parser


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the options ask for; raises ConfigError or ValueError for bad ones."""
    values = json.loads(args.config)
    if not isinstance(values, dict):
        raise ValueError(f"--config must be a JSON object, got {args.config!r}")
    if args.epochs is not None:
        values["epochs"] = args.epochs
    if args.model_dir is not None:
        values["model_dir"] = args.model_dir
    as_config(values)  # check now: a typo is a usage error before anything starts
    return values


#: Workers a launcher starts when neither --workers nor the config's "workers" says (TrainConfig.workers decides).
DEFAULT_WORKERS = {"in-process": 1, "torchrun": 2, "ray-train": 2, "kubeflow-local": 1}


def launch(launcher: str, config: dict[str, Any], workers: int | None) -> LaunchResult:
    """Run ``config`` with one launcher; return its :class:`kit.train.launchers.LaunchResult`."""
    from kit.train import launchers

    if workers is not None:
        if config.get("workers", workers) != workers:
            raise ConfigError("workers", f"--workers {workers} but the config says workers={config['workers']}",
                              fix="give the count once: --workers or the config's \"workers\"")
        config = {**config, "workers": workers}
    config = {"workers": DEFAULT_WORKERS[launcher], **config}
    if launcher != "ray-train":
        return launchers.launch(launcher, config)
    from kit.machine import local_ray

    try:
        return launchers.launch(launcher, config)
    finally:
        local_ray.stop()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        config = config_of(args)
    except (ValueError, json.JSONDecodeError) as error:  # ConfigError is a ValueError
        print(f"kit train: {error}", file=sys.stderr)
        return 2
    try:
        result = launch(args.launcher, config, args.workers)
    except ConfigError as error:  # a configuration this machine cannot run (too many workers, no GPU)
        print(f"kit train: {error}", file=sys.stderr)
        return 2
    final = result.final or {}
    if args.json:
        print(json.dumps({"launcher": result.launcher, "artifact": result.artifact, "history": result.history,
                          "wall_s": round(result.wall_s, 2)}))
    else:
        print(f"trained with {result.launcher} in {result.wall_s:.1f} s: test accuracy "
              f"{final.get('test_accuracy')}; serving artifact in {result.artifact}")
    return 0
