"""Command-line entry for torchrun: ``python -m kit.train.entry '{"epochs": 3}'``.

torchrun starts this module once per rank; it parses the JSON configuration and
calls :func:`kit.train.loop.train_func`, exactly as the other launchers do.
"""

from __future__ import annotations

import json
import sys

from kit.train.loop import train_func


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = json.loads(args[0]) if args else {}
    train_func(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
