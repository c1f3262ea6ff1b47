"""``python -m kit.train.launchers {in-process,torchrun,ray} --config JSON``: the RayJob's entrypoint."""

from __future__ import annotations

import json
import sys

from kit.train.launchers import run_in_process, run_ray_train, run_torchrun
from kit.train.loop import RESULT_PREFIX


def main(argv: list[str] | None = None) -> int:
    """``python -m kit.train.launchers {in-process,torchrun,ray} --config JSON`` (RayJob entrypoint).

    The worker count is the config's ``workers`` field, as everywhere.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kit.train.launchers", description=main.__doc__)
    parser.add_argument("launcher", choices=["in-process", "torchrun", "ray"])
    parser.add_argument("--max-failures", type=int, default=0, help="Ray Train retries")
    parser.add_argument("--storage-path", default=None, help="Ray Train storage (shared by all pods)")
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    args = parser.parse_args(argv)
    config = json.loads(args.config)
    if args.launcher == "in-process":
        result = run_in_process(config)
    elif args.launcher == "torchrun":
        result = run_torchrun(config)
    else:
        result = run_ray_train(config, max_failures=args.max_failures, storage_path=args.storage_path)
    print(RESULT_PREFIX + json.dumps({"history": result.history, "checkpoint": result.checkpoint,
                                      "artifact": result.artifact}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
