"""``python -m kit.llm.train --model-dir DIR [--steps N]``: train stage 12's model and write its artifact.

Runs in one process, or as DDP workers under ``torchrun --nproc-per-node N -m kit.llm.train ...``
(:func:`kit.llm.model.train_lm` joins through the kit's training runtime). Rank 0 prints a
``KIT_METRICS`` line every ``--log-every`` steps and a final ``KIT_RESULT`` line.
"""

from __future__ import annotations

import argparse
import json
import sys

from kit.train.loop import RESULT_PREFIX


def main(argv: list[str] | None = None) -> int:
    from kit.llm.artifact import standard_model_dir
    from kit.llm.model import LMConfig, train_lm

    parser = argparse.ArgumentParser(prog="python -m kit.llm.train", description=__doc__)
    parser.add_argument("--model-dir", default=None, help="where to write the artifact (default build/models/llm)")
    parser.add_argument("--steps", type=int, default=LMConfig.steps)
    parser.add_argument("--sentences", type=int, default=LMConfig.sentences)
    parser.add_argument("--log-every", type=int, default=LMConfig.log_every)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (0: torch's default)")
    args = parser.parse_args(argv)
    config = LMConfig(steps=args.steps, sentences=args.sentences, log_every=args.log_every, threads=args.threads)
    result = train_lm(config, args.model_dir or standard_model_dir())
    if "metadata" in result:
        summary = {key: result[key] for key in ("test_loss", "test_perplexity", "seconds", "world_size")}
        print(RESULT_PREFIX + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":  # the engine and torchrun start processes with spawn: guard the entry point
    sys.exit(main())
