"""``python -m kit cluster profile | wait KIND NAME | diagnostics``: the real cluster from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.k8s.live.context import detect
from kit.k8s.live.diagnostics import diagnose_namespace
from kit.k8s.live.kinds import KINDS
from kit.k8s.live.waits import wait_for
from kit.versions import NAMESPACE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit cluster",
                                description="Work with a real cluster: profile, waits that explain themselves, "
                                            "diagnostics.",
                                epilog="exit status: 0 ok, 1 the wait failed or timed out, 2 usage error")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("profile", help="which profile this environment points at, and why")
    wait = sub.add_parser("wait", help="wait until a resource is ready or finished; explain a timeout")
    wait.add_argument("kind", choices=sorted(KINDS))
    wait.add_argument("name")
    wait.add_argument("-n", "--namespace", default="default")
    wait.add_argument("--timeout", type=float, default=600)
    wait.add_argument("--diagnostics", type=Path, help="write a diagnostics bundle here on failure")
    diag = sub.add_parser("diagnostics", help="report on and bundle every kit resource in a namespace")
    diag.add_argument("-n", "--namespace", default=NAMESPACE)
    diag.add_argument("--out", type=Path, default=Path("build/cluster-diagnostics"))
    return p


def main(argv: list[str]) -> int:
    """Run one action; a failed wait raises a :class:`kit.k8s.live.waits.WaitError` (report + fix, exit 1)."""
    args = parser().parse_args(argv)  # --help and usage errors: kit.cli turns argparse's exit into 0 / 2
    if args.action == "profile":
        print(detect())
        return 0
    if args.action == "wait":
        wait_for(args.kind, args.name, args.namespace, args.timeout, diagnostics_dir=args.diagnostics)
        return 0
    folders = diagnose_namespace(args.namespace, args.out)
    print(f"{len(folders)} bundle(s) under {args.out}")
    return 0
