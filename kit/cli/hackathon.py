"""``python -m kit hackathon <subcommand> [options]``: one command for a hackathon's organisers.

``init`` writes an event file (teams, members, per-team resources, dates, scoring weights, JupyterHub
settings); ``plan`` renders and validates each team's namespace, quotas, network policies, RBAC, Kueue
queues and the JupyterHub values into a directory; ``apply`` / ``delete`` run kubectl on that plan.
``python -m kit hackathon <subcommand> --help`` explains each.
"""

from __future__ import annotations

import importlib
import sys

from kit.cli import EXIT_OK, EXIT_USAGE

#: subcommand -> ("module:function", help); the function takes argv (list[str]) and returns an exit code.
#: Add a subcommand with one line here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "init": ("kit.cli.hackathon_event:init", "write an event file: teams, members, resources, dates, weights"),
    "plan": ("kit.cli.hackathon_event:plan", "render and validate team namespaces, queues and JupyterHub values"),
    "apply": ("kit.cli.hackathon_event:apply", "apply a written plan to the cluster (kubectl)"),
    "delete": ("kit.cli.hackathon_event:delete", "delete what a written plan applied (kubectl)"),
    "score": ("kit.cli.hackathon_board:score", "score a team's artifact or endpoint against the hidden labels"),
    "board": ("kit.cli.hackathon_board:board", "serve the leaderboard page and its JSON API, or --export results"),
    "rehearse": ("kit.cli.hackathon_board:rehearse", "play an event on this machine: teams, scorer, leaderboard"),
}


def usage() -> str:
    lines = ["usage: python -m kit hackathon <subcommand> [options]", "", "subcommands:"]
    lines += [f"  {name:<8} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Dispatch to the subcommand's function; KitErrors and usage errors are handled by :mod:`kit.cli`."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return EXIT_OK
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_USAGE
    module_name, _, function = SUBCOMMANDS[name][0].partition(":")
    return int(getattr(importlib.import_module(module_name), function)(rest) or EXIT_OK)
