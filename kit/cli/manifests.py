"""``python -m kit manifests write|check [--root DIR] [--json] [--pin-image IMAGE@sha256:...]``: ``clusters/``
from the kit's builders.

``write`` (re)writes every generated file; ``check`` exits 1 when a file differs from what the
kit generates, is missing or is not the kit's (``--json``: the problems as data). ``--pin-image``
(repeatable) writes that image, wherever a manifest names it, pinned by digest: e.g.
``--root build/pinned --pin-image ghcr.io/cloud-native-ai-kit/kit:0.1.0-ray2.60.0-cpu@sha256:<digest>``.
"""

from __future__ import annotations

import json
from pathlib import Path

from kit.cli import EXIT_FAILED, EXIT_OK, command_parser
from kit.errors import KitError

FIX = "run `python -m kit manifests write` (after changing the kit, not the YAML) and commit clusters/"


def main(argv: list[str]) -> int:
    from kit.deploy import layout
    from kit.k8s.builders import pods

    parser = command_parser("manifests", __doc__)
    parser.add_argument("action", choices=("write", "check"))
    parser.add_argument("--root", type=Path, default=layout.CLUSTERS, help="target directory (default: clusters/)")
    parser.add_argument("--json", action="store_true", help="check: print {root, current, problems} as JSON")
    parser.add_argument("--pin-image", action="append", default=[], metavar="IMAGE@sha256:DIGEST",
                        help="pin IMAGE (as the manifests name it) to this digest everywhere (repeatable)")
    args = parser.parse_args(argv)
    pins = pods.parse_pins(args.pin_image)
    if args.action == "write":
        written = layout.write(args.root, pins)
        print(f"wrote {len(written)} files under {args.root}")
        return EXIT_OK
    problems = layout.check(args.root, pins)
    if args.json:
        print(json.dumps({"root": str(args.root), "current": not problems, "problems": problems}, indent=2))
        return EXIT_FAILED if problems else EXIT_OK
    if problems:
        raise KitError(f"{args.root} is out of date:\n  " + "\n  ".join(problems), fix=FIX)
    print(f"{args.root} matches what the kit generates")
    return EXIT_OK
