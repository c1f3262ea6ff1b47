"""``python -m kit cluster profile | wait KIND NAME | diagnostics | preflight``: the real cluster from the command line.

``preflight`` (before a workshop) checks the cluster of the current kube context against stage 09's plan:
each operator at its pinned version with its CRDs Established and its webhook answering, the storage
class behind each volume, headroom on the nodes and in the quota, and whether you may create each kind.
Every problem comes with its fix; exit 1 when one blocks the plan.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kit.cli import EXIT_FAILED, EXIT_OK
from kit.k8s.live.context import detect
from kit.k8s.live.diagnostics import diagnose_namespace
from kit.k8s.live.kinds import KINDS
from kit.k8s.live.waits import wait_for
from kit.versions import NAMESPACE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit cluster",
                                description="Work with a real cluster: profile, waits that explain themselves, "
                                            "diagnostics.",
                                epilog="exit status: 0 ok, 1 the wait failed or timed out or the preflight found "
                                       "problems, 2 usage error")
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
    pre = sub.add_parser("preflight", help="before a workshop: operators, storage, headroom and access for the plan, "
                                           "each problem with its fix")
    pre.add_argument("--profile", choices=("kind", "cluster"), default=None,
                     help="sizing of the plan, as for `kit deploy plan` (default: what the kube context suggests)")
    pre.add_argument("--overlay", default=None, help="size the plan like clusters/overlays/OVERLAY (local-kind, gpu)")
    pre.add_argument("--image", default="", help="the kit image in your registry (default: the lock's tag)")
    pre.add_argument("--storage-class", default=None,
                     help="StorageClass the plan's shared volumes would use (default: the cluster's default class)")
    pre.add_argument("--json", action="store_true", help="the checks as JSON")
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
    if args.action == "preflight":
        return preflight(args)
    folders = diagnose_namespace(args.namespace, args.out)
    print(f"{len(folders)} bundle(s) under {args.out}")
    return 0


def preflight(args: argparse.Namespace) -> int:
    """Build the plan (as ``kit deploy plan`` would), check the cluster against it, print the report."""
    from dataclasses import replace

    from kit.deploy import layout, operators
    from kit.deploy import plan as stage09
    from kit.k8s.live import preflight as checks

    context = detect()
    if args.overlay is not None and args.overlay not in layout.OVERLAYS:
        parser().error(f"no overlay {args.overlay!r}; overlays: {', '.join(layout.OVERLAYS)}")  # exits 2
    if args.overlay is not None:
        size, sized = layout.OVERLAYS[args.overlay], f"overlay {args.overlay}"
        size = replace(size, kit_image=args.image) if args.image else size
        size = replace(size, storage_class=args.storage_class) if args.storage_class else size
    else:
        profile = args.profile or context.profile
        size, sized = layout.sizing_for(profile, args.image, args.storage_class), f"profile {profile}"
    plan = stage09.build_plan(size)
    steps = [(step.name, step.documents) for step in plan.steps]
    found = checks.run(checks.LiveAPI(), steps, plan.namespace, operators.OPERATORS)
    where = f"{context}, for the stage 09 plan sized for {sized}"
    print(json.dumps(checks.summary(found, where), indent=2) if args.json else checks.format_report(found, where))
    return EXIT_FAILED if checks.problems(found) else EXIT_OK
