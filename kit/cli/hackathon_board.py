"""``python -m kit hackathon score | board | rehearse``: score a submission, serve the leaderboard, rehearse.

``score --team T --artifact DIR | --endpoint URL``: record the submission (queued) in the results database,
then measure it against the hidden test set and record the result; a broken submission is recorded as
FAILED with its reason (exit 1). ``score --drain`` scores whatever is queued, including what a killed
scorer left. ``board --port N`` serves the leaderboard on 127.0.0.1 (``--export PATH`` writes CSV or JSON
instead). ``rehearse --teams 8`` plays an event on this machine and prints its time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kit.cli import EXIT_FAILED, EXIT_OK, command_parser
from kit.paths import work_dir

BOARD_PORT = 8095


def _default_db() -> Path:
    return work_dir("hackathon", create=False) / "results.sqlite"


def _hidden_dir(args: argparse.Namespace) -> Path:
    from kit.hackathon import challenge

    directory = Path(args.hidden) if args.hidden else Path(args.db).parent / "hidden"
    if not (directory / challenge.HIDDEN_FILE).is_file():
        challenge.write_hidden(directory)  # the challenge's seed: the rows the teams' data leaves out
        print(f"wrote the hidden test set (challenge seed {challenge.SEED}) to {directory}: keep it out of the "
              "teams' reach",
              file=sys.stderr if args.json else sys.stdout)
    return directory


def score(argv: list[str]) -> int:
    from kit.hackathon import scorer, scoring
    from kit.hackathon.store import Store

    p = command_parser("hackathon score", __doc__)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--artifact", metavar="DIR", help="a model directory in the kit's format (served here)")
    what.add_argument("--endpoint", metavar="URL", help="a live v2 endpoint, e.g. http://host:port")
    what.add_argument("--drain", action="store_true", help="score every queued submission (after a restart)")
    p.add_argument("--team", help="the team's name (the event file's, with --event)")
    p.add_argument("--db", default=str(_default_db()), help="results database (default: %(default)s)")
    p.add_argument("--hidden", metavar="DIR", help="the organiser's hidden test set (default: DB's folder/hidden)")
    p.add_argument("--event", metavar="FILE", help="event file: its scoring weights, and its team names")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed load")
    p.add_argument("--smoke", action="store_true", help="a lighter load (rehearsals, tests)")
    p.add_argument("--workers", type=int, default=1, help="with --drain: submissions scored at once")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not args.drain and not args.team:
        p.error("--team is required with --artifact or --endpoint")
    weights = scoring.ScoringWeights()
    if args.event:
        from kit.hackathon.event import Event

        event = Event.load(args.event)
        weights = scoring.ScoringWeights.from_mapping(event.scoring)
        if args.team:
            event.team(args.team)
    hidden = str(_hidden_dir(args))
    config = (scorer.ScorerConfig.smoke(hidden, weights=weights, seed=args.seed) if args.smoke
              else scorer.ScorerConfig(hidden, weights=weights, seed=args.seed))
    with Store(args.db) as store:
        only = None
        if not args.drain:
            kind, target = ("artifact", str(Path(args.artifact).resolve())) if args.artifact else \
                ("endpoint", args.endpoint)
            only = store.submit(args.team, kind, target)
            print(f"submission {only} of {args.team} queued in {args.db}", flush=True,
                  file=sys.stderr if args.json else sys.stdout)
        outcomes = scorer.drain(store, config, workers=args.workers if args.drain else 1, only=only)
    if args.json:
        print(json.dumps([o.as_dict() for o in outcomes], indent=2))
    else:
        for outcome in outcomes:
            print(scorer.describe(outcome))
        if args.drain and not outcomes:
            print("nothing queued")
    return EXIT_FAILED if any(o.status != "scored" for o in outcomes) else EXIT_OK


def board(argv: list[str]) -> int:
    from kit.hackathon import board as leaderboard
    from kit.hackathon.store import Store

    p = command_parser("hackathon board", __doc__)
    p.add_argument("--db", default=str(_default_db()), help="results database (default: %(default)s)")
    p.add_argument("--port", type=int, default=BOARD_PORT)
    p.add_argument("--host", default="127.0.0.1", help="interface (default loopback; 0.0.0.0 exposes it)")
    p.add_argument("--refresh", type=float, default=leaderboard.REFRESH_S, help="seconds between page updates")
    p.add_argument("--export", metavar="PATH", help="write the results to PATH (.csv or .json; - prints JSON)")
    args = p.parse_args(argv)
    if not Path(args.db).is_file():
        from kit.errors import KitError

        raise KitError(f"no results database at {args.db}", fix="score a submission first, or pass --db PATH")
    if args.export:
        with Store(args.db) as store:
            text = leaderboard.export(store, args.export)
        print(text if args.export == "-" else f"wrote {args.export}")
        return EXIT_OK
    import uvicorn

    from kit.machine.processes import port_is_free

    if not port_is_free(args.port, args.host):
        from kit.errors import KitError

        raise KitError(f"port {args.port} on {args.host} is already in use", fix="pass another --port")
    print(f"leaderboard: http://{args.host}:{args.port}/ (JSON: /api/leaderboard); Ctrl-C stops it", flush=True)
    uvicorn.run(leaderboard.app(args.db, args.refresh), host=args.host, port=args.port, log_level="warning",
                access_log=False)
    return EXIT_OK


def rehearse(argv: list[str]) -> int:
    from kit.hackathon import rehearse as rehearsal

    p = command_parser("hackathon rehearse", __doc__)
    p.add_argument("--teams", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="at most this many submissions scored at once")
    p.add_argument("--workdir", metavar="DIR", help="keep the data, models and results here (default: a temp dir)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    report, _ = rehearsal.rehearse(args.teams, args.workdir, args.workers, progress=not args.json)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return EXIT_FAILED if report.problems else EXIT_OK

