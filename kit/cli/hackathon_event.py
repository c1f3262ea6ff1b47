"""``python -m kit hackathon init|plan|apply|delete``: the organiser's side of an event (:mod:`kit.hackathon.event`).

``init`` writes the event file; ``plan`` renders, validates and writes what each team gets; ``apply`` and
``delete`` run kubectl on a written plan.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from kit.cli import EXIT_OK, command_parser
from kit.errors import KitError

#: Under build/ (git-ignored): an event file names people; keep it somewhere private, not in the kit's repository.
DEFAULT_EVENT = Path("build/hackathon/event.yaml")


def _parser(action: str, doc: str) -> argparse.ArgumentParser:
    return command_parser(f"hackathon {action}", inspect.cleandoc(doc))


def init(argv: list[str]) -> int:
    """Write an event file with N teams sharing the cluster equally (edit the members, dates and weights after)."""
    from kit.deploy import sizing
    from kit.hackathon import event

    p = _parser("init", init.__doc__ or "")
    p.add_argument("--name", default="kit-hackathon", help="the event's name (a DNS label)")
    p.add_argument("--teams", type=int, default=2, help="how many teams (team-01, team-02, ...; default 2)")
    p.add_argument("--members", type=int, default=2,
                   help="the most people per team: each has a notebook server the share must leave room for "
                        "(default 2)")
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
    new = event.new_event(args.name, args.teams, capacity=capacity, kind=not args.cloud, members=args.members)
    new.dump(args.out)
    share = new.resources
    print(f"wrote {args.out}: {len(new.teams)} teams, each {share.cpu} cpu, {share.memory} memory, {share.gpu} gpu")
    print("next: add each team's members, check the dates and weights, then "
          f"`python -m kit hackathon plan --event {args.out}`")
    return EXIT_OK


DEFAULT_PLAN = Path("build/hackathon")


def _event_parser(action: str, doc: str) -> argparse.ArgumentParser:
    p = _parser(action, doc)
    p.add_argument("--event", type=Path, default=DEFAULT_EVENT, help=f"the event file (default: {DEFAULT_EVENT})")
    p.add_argument("--out", type=Path, default=DEFAULT_PLAN, help=f"the plan's directory (default: {DEFAULT_PLAN})")
    return p


def plan(argv: list[str]) -> int:
    """Render each team's namespace, quotas, network policies, RBAC and Kueue queues and the JupyterHub values,
    validate them strictly (as `python -m kit validate`), check the teams' isolation, and write them."""
    from kit.hackathon import event
    from kit.hackathon import plan as hackathon_plan

    p = _event_parser("plan", plan.__doc__ or "")
    p.add_argument("--crd-dir", metavar="DIR", help="CRD directory for validation (as `kit validate --crd-dir`)")
    args = p.parse_args(argv)
    the_event = event.Event.load(args.event)
    built = hackathon_plan.build(the_event)
    checked = hackathon_plan.check(built, crd_dir=args.crd_dir)
    if not checked.ok:
        raise KitError(f"the plan of {args.event} has problems; nothing written:\n{checked.explain()}",
                       fix="a validation or isolation problem is a bug in kit/hackathon: report it with the event "
                           "file; a JupyterHub values problem names the event field to change")
    written = hackathon_plan.write(built, args.out, str(args.event))
    print(hackathon_plan.summary(built))
    print(f"validation: {len(built.documents())} resources pass `python -m kit validate`'s checks")
    print(f"isolation: checked ({len(the_event.teams)} teams: no access to each other or to the scorer)")
    print("JupyterHub values: valid against the chart's schema, single-user pods pass Pod Security restricted")
    print(f"wrote {len(written)} files under {args.out}; next: `python -m kit hackathon apply --out {args.out}`")
    return EXIT_OK


def _kubectl_files(action: str, argv: list[str]) -> int:
    from kit.hackathon import plan as hackathon_plan
    from kit.k8s.live import context, kubectl

    p = _parser(action, f"{action} a written plan with kubectl (shared.yaml first when applying, last when deleting)")
    p.add_argument("--out", type=Path, default=DEFAULT_PLAN, help=f"the plan's directory (default: {DEFAULT_PLAN})")
    p.add_argument("--dry-run", action="store_true", help="print the kubectl commands instead of running them")
    args = p.parse_args(argv)
    files = hackathon_plan.plan_files(args.out)
    if action == "delete":
        files.reverse()
    commands = [kubectl.apply_command(["-f", str(f)]) if action == "apply" else kubectl.delete_command(["-f", str(f)])
                for f in files]
    if args.dry_run:
        print("\n".join(" ".join(command) for command in commands))
        return EXIT_OK
    where = context.detect()
    if where.profile == "local":
        raise kubectl.ClusterError(f"no cluster to {action} the plan on ({where.source})",
                                   fix="point kubectl at the event's cluster (`kubectl config use-context ...`; "
                                       "kind: `make test-cluster`), then run this again; --dry-run prints the commands")
    for path in files:
        output = kubectl.apply(path) if action == "apply" else kubectl.delete(path)
        print(output.strip() or f"{action}: {path} (nothing to do)")
    return EXIT_OK


def apply(argv: list[str]) -> int:
    """Apply a written plan (kubectl apply --server-side, shared.yaml first)."""
    return _kubectl_files("apply", argv)


def delete(argv: list[str]) -> int:
    """Delete what a written plan applied (teams first, shared.yaml last); what is gone already is fine."""
    return _kubectl_files("delete", argv)
