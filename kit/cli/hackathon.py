"""``python -m kit hackathon <subcommand> [options]``: one command for a hackathon's organisers.

``init`` writes an event file (teams, members, per-team resources, dates, scoring weights, JupyterHub
settings); ``plan`` renders and validates each team's namespace, quotas, network policies, RBAC, Kueue
queues and the JupyterHub values into a directory; ``apply`` / ``delete`` run kubectl on that plan.
``python -m kit hackathon <subcommand> --help`` explains each.
"""

from __future__ import annotations

from kit.cli import dispatch, listing

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
    return listing("usage: python -m kit hackathon <subcommand> [options]", "subcommands", SUBCOMMANDS, 8)


def main(argv: list[str]) -> int:
    """Dispatch to the subcommand's function; KitErrors and usage errors are handled by :mod:`kit.cli`."""
    return dispatch(SUBCOMMANDS, argv, usage(), "subcommand")
