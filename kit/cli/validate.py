"""``python -m kit validate PATH... [--json] [--no-policy] [--queue NAME] [--server-dry-run]``:
the offline checks of :mod:`kit.k8s.validation` from the command line.

Exit 0 when every document is valid, 1 when problems were found (or the CRD download failed),
2 for a usage or setup error (no path, a missing path, no CRD directory).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kit.k8s.validation import crd_fetch, crds
from kit.k8s.validation.dryrun import server_dry_run
from kit.k8s.validation.loading import load_sets
from kit.k8s.validation.problems import Problem
from kit.k8s.validation.validate import check, summary
from kit.versions import QUEUE_LABEL

_FETCH_DEFAULT = "<download dir>"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kit validate",
        description="Validate Kubernetes manifests offline: CRD and Kubernetes schemas (strict), "
                    "the kit's rules and its restricted Pod Security policy.",
        epilog="exit status: 0 all valid, 1 problems found, 2 usage or setup error",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="manifest file or directory (*.yaml, *.yml)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument("--no-policy", action="store_true", help="skip the policy checks (kit.k8s.validation.policy)")
    p.add_argument("--queue", metavar="NAME",
                   help=f"require the label {QUEUE_LABEL}=NAME on queued workloads")
    p.add_argument("--server-dry-run", action="store_true",
                   help="also run kubectl apply --dry-run=server (needs a reachable cluster)")
    p.add_argument("--crd-dir", metavar="DIR", help=f"CRD directory (default: ${crds.CRD_DIR_ENV}, "
                                                     "../shared/crds, then build/crds)")
    p.add_argument("--fetch-crds", nargs="?", const=_FETCH_DEFAULT, metavar="DIR",
                   help=f"download the pinned CRD files (default: ${crds.CRD_DIR_ENV} when set, else build/crds; "
                        "as `python -m kit crds fetch`), then exit unless PATHs are given")
    return p


def main(argv: list[str]) -> int:
    """``python -m kit validate PATH... [--json] [--no-policy] [--queue NAME] [--server-dry-run]``."""
    args = parser().parse_args(argv)  # --help and usage errors: kit.cli turns argparse's exit into 0 / 2
    if args.fetch_crds is not None:
        status = _fetch(None if args.fetch_crds == _FETCH_DEFAULT else args.fetch_crds)
        if status or not args.paths:
            return status
    if not args.paths:
        print("usage: python -m kit validate PATH... (files or directories; --help for options)",
              file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    sets, kind_configs = load_sets(args.paths)
    problems: list[Problem] = []
    try:
        for loaded in sets:
            problems += loaded.problems
            if loaded.documents:
                problems += check(loaded.documents, queue=args.queue, policy=not args.no_policy,
                                  crd_dir=args.crd_dir)
    except crds.CRDDirNotFoundError as error:  # a setup error: exit 2, not "problems found"
        print(f"kit validate: {error.explain()}", file=sys.stderr)
        return 2
    if args.server_dry_run:
        problems += server_dry_run(args.paths)
    if kind_configs and not args.json:
        print(f"(set aside {kind_configs} kind cluster config(s): not Kubernetes resources)")
    resources = sum(len(s.documents) for s in sets)
    _report(problems, resources, sum(len(s.files) for s in sets), as_json=args.json)
    return 1 if problems else 0


def _report(problems: list[Problem], resources: int, files: int, *, as_json: bool) -> None:
    if as_json:
        report = {"files": files, "resources": resources, "valid": not problems,
                  "problems": [p.to_dict() for p in problems],
                  "summary": summary(len(problems), resources, files)}
        print(json.dumps(report, indent=2))
        return
    for problem in problems:
        print(problem)
    print(summary(len(problems), resources, files))


def _fetch(dest: str | None) -> int:
    try:
        written = crd_fetch.fetch(dest)
    except crd_fetch.CRDFetchError as error:
        print(f"kit validate: fetch failed: {error.explain()}", file=sys.stderr)
        return 1
    print(f"downloaded {len(written)} files to {written[0].parent}")
    return 0
