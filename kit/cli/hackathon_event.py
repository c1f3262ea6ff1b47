"""``python -m kit hackathon init|plan|apply|delete``: the organiser's side of an event (:mod:`kit.hackathon.event`).

``init`` writes the event file; ``plan`` renders, validates and writes what each team gets; ``apply`` and
``delete`` run kubectl on a written plan.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.cli import EXIT_OK, command_parser
from kit.errors import KitError

DEFAULT_EVENT = Path("hackathon/event.yaml")


def _parser(action: str, doc: str) -> argparse.ArgumentParser:
    return command_parser(f"hackathon {action}", doc)


def init(argv: list[str]) -> int:
    """Write an event file with N teams sharing the cluster equally (edit the members, dates and weights after)."""
    from kit.deploy import sizing
    from kit.hackathon import event

    p = _parser("init", init.__doc__ or "")
    p.add_argument("--name", default="kit-hackathon", help="the event's name (a DNS label)")
    p.add_argument("--teams", type=int, default=4, help="how many teams (team-01, team-02, ...)")
    p.add_argument("--capacity", default=None,
                   help="what the cluster's nodes offer, e.g. 64cpu,256Gi,8gpu (default: kind on Docker "
                        "Desktop, 4cpu,8Gi); each team gets an equal share of what the operators leave")
    p.add_argument("--cloud", action="store_true", help="the capacity is a cloud cluster's, not kind's")
    p.add_argument("--out", type=Path, default=DEFAULT_EVENT, help=f"the event file (default: {DEFAULT_EVENT})")
    p.add_argument("--force", action="store_true", help="overwrite an existing event file")
    args = p.parse_args(argv)
    if args.out.exists() and not args.force:
        raise KitError(f"{args.out} exists", fix="edit it, or pass --force to overwrite it")
    capacity = sizing.parse_capacity(args.capacity) if args.capacity else sizing.DOCKER_DESKTOP
    new = event.new_event(args.name, args.teams, capacity=capacity, kind=not args.cloud)
    new.dump(args.out)
    share = new.resources
    print(f"wrote {args.out}: {len(new.teams)} teams, each {share.cpu} cpu, {share.memory} memory, {share.gpu} gpu")
    print("next: add each team's members, check the dates and weights, then "
          f"`python -m kit hackathon plan --event {args.out}`")
    return EXIT_OK
