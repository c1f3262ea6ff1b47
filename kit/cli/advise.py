"""``python -m kit advise [--example NAME | --file WORKLOAD.yaml] [--FIELD VALUE...] [--out DIR] [--json]``:
recommendations for a cloud-native AI deployment, each with its reason and source (:mod:`kit.advise`).

The workload comes from a worked example (``--example list`` lists them), a YAML file of the fields below,
or flags; flags override the file or example. With ``--out DIR`` the manifests are written there, after the
same strict validation as ``python -m kit validate`` and the sizing check of ``python -m kit deploy plan``.
A description that contradicts itself (a GPU-only need without GPUs, a p95 no replica can reach, quotas the
nodes cannot hold) exits 1 with the fix.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

from kit.cli import command_parser

_HELP = {
    "where": "laptop | binder | workstation | kind | cluster | gpu-pool",
    "model_params": "parameter count: 125M, 7B, 26122 (default: the kit's digits model)",
    "model_kind": "classifier | llm",
    "model_ms": "one forward pass at batch 1 on the serving hardware, measured, in ms",
    "batch16_ms": "one forward pass at batch 16, measured, in ms (decides whether batching pays)",
    "train_hours": "training time budget in hours (0: no training)",
    "serve_rps": "online requests per second (0: no online serving)",
    "node_memory_gb": "one node's memory, GB",
    "teams": "teams or tenants sharing the cluster (each gets a namespace and a ClusterQueue)",
}


def parser() -> argparse.ArgumentParser:
    from kit.advise.workload import Workload

    p = command_parser("advise", __doc__)
    p.add_argument("--example", metavar="NAME", help="a worked example; `list` lists them")
    p.add_argument("--file", metavar="YAML", help="a workload description (the fields below)")
    p.add_argument("--out", metavar="DIR", help="write the validated manifests here")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--crd-dir", metavar="DIR", help="CRD directory for validation (as `kit validate --crd-dir`)")
    group = p.add_argument_group("workload fields (kit.advise.workload.Workload)")
    hints = typing.get_type_hints(Workload)
    for f in fields(Workload):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        if hint is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
            continue
        kind: Any = str if f.name in ("model_params",) or hint is str else int if hint is int else float
        group.add_argument(flag, dest=f.name, type=kind, default=None, metavar=kind.__name__.upper(),
                           help=_HELP.get(f.name))
    return p


def main(argv: list[str]) -> int:
    """``python -m kit advise``: print the plan (and write its manifests with ``--out``)."""
    from kit.advise import examples, manifests, report, workload
    from kit.advise.workload import Workload

    args = parser().parse_args(argv)
    if args.example == "list":
        print(examples.listing())
        return 0
    if args.example and args.file:
        print("kit advise: give --example or --file, not both", file=sys.stderr)
        return 2
    base: dict[str, Any] = {}
    if args.example:
        examples.example(args.example)  # an unknown name fails here, with the list
        base = dict(examples.EXAMPLES[args.example][1])
    elif args.file:
        data = workload.read(args.file)
        if not isinstance(data, dict):
            workload.from_mapping(data, args.file)  # raises: names what the file should hold
        base = dict(data)
    given = {f.name: getattr(args, f.name) for f in fields(Workload) if getattr(args, f.name) is not None}
    if not base and not given:
        print("usage: python -m kit advise --example NAME | --file YAML | --FIELD VALUE... (--help; --example list)",
              file=sys.stderr)
        return 2
    plan, files, fit = manifests.plan_and_manifests({**base, **given}, args.file or "the workload", args.crd_dir)
    written = manifests.write(files, Path(args.out)) if args.out and files else []
    if args.json:
        print(json.dumps(report.as_dict(plan, written, fit), indent=2))
    else:
        print(report.as_text(plan, written, fit))
        if files and not args.out:
            print(f"\n  {sum(len(d) for d in files.values())} manifests validated; --out DIR writes them")
    return 0
