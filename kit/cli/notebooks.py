"""``python -m kit notebooks generate|check|record``: learner notebooks from ``solutions/``.

``generate`` writes ``notebooks/``; ``check`` exits 1 when it is out of date; ``record`` re-runs
solutions in smoke mode and stores their outputs (which nbval compares).
"""

from __future__ import annotations

from pathlib import Path

from kit.cli import command_parser
from kit.errors import KitError
from kit.paths import REPO_ROOT


def main(argv: list[str]) -> int:
    from kit.course import notebooks

    parser = command_parser("notebooks", __doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("generate", help="write notebooks/ from solutions/")
    sub.add_parser("check", help="exit 1 when notebooks/ is out of date")
    rec = sub.add_parser("record", help="re-run solutions in smoke mode and store their outputs")
    rec.add_argument("paths", nargs="*", type=Path, help="solution notebooks (default: all)")
    args = parser.parse_args(argv)
    if args.action == "generate":
        for path in notebooks.generate():
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    elif args.action == "check":
        problems = notebooks.stale()
        if problems:
            raise KitError("notebooks/ is out of date:\n  " + "\n  ".join(problems),
                           fix="run `python -m kit notebooks generate` and commit notebooks/")
        print("notebooks/ matches what solutions/ generates")
    else:
        for path in args.paths or notebooks.solution_paths():
            notebooks.record(path)
            print(f"recorded {path}")
    return 0
