"""A rehearsal of the event on this machine: teams submit at once, the scorer works through them, the board ranks.

``python -m kit hackathon rehearse --teams 8`` makes the challenge data, trains three artifacts of different
quality with the kit's launcher (in a child process: torch stays out of this one), starts a good endpoint
(nearest-centroid, numpy) and misbehaving ones, has every team submit from its own thread, scores the queue
with a bounded, memory-aware pool of workers (each serving an artifact in its own KServe process), serves the
leaderboard and checks its JSON API: every broken submission failed with its reason, every good one scored,
the ranking follows the scores, and the better-trained artifact is the more accurate. It prints the time and
the peak memory of the whole process tree (PSS, sampled).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

from kit.errors import KitError
from kit.hackathon import challenge, endpoints, scorer
from kit.hackathon.board import BoardServer
from kit.hackathon.store import Store
from kit.machine.processes import free_port
from kit.serve.process import kit_pythonpath

#: Trained artifacts: name -> TrainConfig fields (more epochs and width: a better model).
ARTIFACTS = {"strong": {"hidden": 64, "epochs": 25}, "medium": {"hidden": 16, "epochs": 4},
             "weak": {"hidden": 4, "epochs": 1}}
#: The roster: (team, kind, what it submits, the failure reason's expected words or None when it should score)
ROSTER = [
    ("strong-artifact", "artifact", "strong", None),
    ("medium-artifact", "artifact", "medium", None),
    ("centroid-endpoint", "endpoint", "good", None),
    ("weak-artifact", "artifact", "weak", None),
    ("tampered-artifact", "artifact", "tampered", "SHA-256"),
    ("crashing-endpoint", "endpoint", "http500", "HTTP 500"),
    ("slow-endpoint", "endpoint", "slow", "no complete answer"),
    ("v1-schema-endpoint", "endpoint", "schema", "not a v2 inference response"),
    ("huge-endpoint", "endpoint", "huge", "over"),
    ("gone-endpoint", "endpoint", "refused", "cannot connect"),
    ("short-endpoint", "endpoint", "shape", "labels from"),
    ("trickle-endpoint", "endpoint", "trickle", "took over the limit"),
]
#: The whole rehearsal's memory budget (a 2 GiB notebook cgroup, with room to spare)
MEMORY_BUDGET_MIB = 1536


class RehearsalFailed(KitError):
    """The rehearsal's event did not come out as it should; the message lists what differed."""


@dataclass
class Report:
    teams: int
    workers: int
    seconds: float
    peak_pss_mib: float
    ranking: list[dict]
    problems: list[str] = field(default_factory=list)
    board_url: str = ""
    db: str = ""
    #: seconds of each phase: data, training (child process), submitting, scoring
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        lines = [f"rehearsal: {self.teams} teams, {self.workers} scoring workers, {self.seconds:.1f} s, "
                 f"peak memory {self.peak_pss_mib:.0f} MiB (PSS of the whole process tree, sampled)",
                 "  phases: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items())]
        for entry in self.ranking:
            best = entry["best"]
            shown = f"{best['score']:.2f}" if best else "FAILED: " + (entry["latest"]["reason"] or "").splitlines()[0]
            lines.append(f"  {entry['rank'] or '-':>2}  {entry['team']:<20} {shown}")
        lines += [f"PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


class PeakMemory:
    """Samples the PSS (RSS where PSS cannot be read) of this process and its children in a thread."""

    def __init__(self, every_s: float = 0.25) -> None:
        self.every_s, self.peak = every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kit-peak-memory", daemon=True)

    def sample(self) -> float:
        me = psutil.Process()
        total = 0.0
        for p in [me, *me.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except psutil.Error:
                continue
        self.peak = max(self.peak, total / 2**20)
        return self.peak

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def train(data_dir: Path, models_dir: Path, names: list[str]) -> dict[str, Path]:
    """Train the named :data:`ARTIFACTS` in one child process (the kit's in-process launcher there)."""
    specs = [{"model_dir": str(models_dir / name), "seed": 0, **ARTIFACTS[name]} for name in names]
    command = [sys.executable, "-m", "kit.hackathon.challenge", "train", str(data_dir), json.dumps(specs)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": kit_pythonpath()})
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-12:])
        raise RehearsalFailed(f"training the rehearsal's artifacts failed (exit {done.returncode}):\n{tail}",
                              fix="train one by hand: `python -m kit.hackathon.challenge train DIR SPECS`")
    return {name: models_dir / name for name in names}


def tamper(source: Path, target: Path) -> Path:
    """A copy of an artifact whose weights changed after training: its hash check fails."""
    shutil.copytree(source, target)
    with (target / "model.pt").open("ab") as weights:
        weights.write(b"tampered")
    return target


def rehearse(teams: int = 8, workdir: str | Path | None = None, workers: int = 2, board_port: int | None = None,
             config_overrides: dict | None = None, keep_board: bool = False,
             progress: bool = True) -> tuple[Report, BoardServer | None]:
    """Play the event; returns the report (problems empty when it came out right) and the board if kept."""
    if not 1 <= teams <= len(ROSTER):
        raise KitError(f"--teams {teams}: the rehearsal has 1 to {len(ROSTER)} teams", fix="pass --teams 8")
    root = Path(workdir or tempfile.mkdtemp(prefix="kit-rehearsal-"))
    roster = ROSTER[:teams]
    began = time.perf_counter()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        phases[name] = round(time.perf_counter() - began - sum(phases.values()), 1)

    with PeakMemory() as memory:
        hidden_dir = challenge.write_hidden(root / "organiser" / "hidden")
        data_dir = challenge.write_team_data(root / "team-data", with_split=False)
        wanted = sorted({what for _, kind, what, _ in roster if kind == "artifact" and what in ARTIFACTS}
                        | ({"medium"} if any(what == "tampered" for *_, what, _ in roster) else set()))
        lap("data")
        artifacts = train(data_dir, root / "models", wanted) if wanted else {}
        lap("training")
        if any(what == "tampered" for _, _, what, _ in roster):
            artifacts["tampered"] = tamper(artifacts["medium"], root / "models" / "tampered")
        with (data_dir / challenge.TEAM_FILE).open("rb") as handle, np.load(handle) as team_data:
            model = endpoints.Centroids(team_data["x_train"], team_data["y_train"])
        config = scorer.ScorerConfig.smoke(str(hidden_dir), **{"request_timeout_s": 2.0, **(config_overrides or {})})
        live = {what: endpoints.Endpoint(what, model, delay_s=config.request_timeout_s * 3).start()
                for _, kind, what, _ in roster if kind == "endpoint" and what != "refused"}
        db = root / "organiser" / "results.sqlite"
        store = Store(db)
        board = BoardServer(db, board_port or free_port()).start()
        try:
            targets = {what: str(artifacts[what]) if what in artifacts else
                       live[what].url if what in live else endpoints.refused_url() for _, _, what, _ in roster}
            threads = [threading.Thread(target=lambda t=t, k=k, w=w: Store(db).submit(t, k, targets[w]))
                       for t, k, w, _ in roster]  # every team submits at once, each with its own connection
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            lap("serving and submitting")
            pool = scorer.plan_workers(workers, MEMORY_BUDGET_MIB - memory.sample())
            for outcome in scorer.drain(store, config, workers=pool):
                if progress:
                    print(scorer.describe(outcome).splitlines()[0], flush=True)
            lap("scoring")
            ranking = httpx.get(board.url + "/api/leaderboard", timeout=10).json()["teams"]
        finally:
            for endpoint in live.values():
                endpoint.stop()
            if not keep_board:
                board.stop()
        seconds = time.perf_counter() - began
    report = Report(teams, pool, round(seconds, 1), round(memory.peak, 0), ranking, check(ranking, roster),
                    board.url, str(db), phases)
    store.close()
    if workdir is None and not keep_board:  # a temporary event: nothing of it stays on disk
        shutil.rmtree(root, ignore_errors=True)
        report.db = ""
    return report, board if keep_board else None


def check(ranking: list[dict], roster: list[tuple]) -> list[str]:
    """What differs from how the event should come out."""
    problems, by_team = [], {entry["team"]: entry for entry in ranking}
    for team, *_, expected in roster:
        entry = by_team.get(team)
        if entry is None:
            problems.append(f"{team} is not on the leaderboard")
            continue
        latest = entry["latest"]
        if expected is None and latest["status"] != "scored":
            problems.append(f"{team} should have scored, but: {latest['status']} {latest['reason']}")
        if expected is not None and (latest["status"] != "failed" or expected not in (latest["reason"] or "")):
            problems.append(f"{team} should have failed with {expected!r}, but: {latest['status']} {latest['reason']}")
        if entry["submissions"] != 1:
            problems.append(f"{team} has {entry['submissions']} submissions, not 1")
    scores = [e["best"]["score"] for e in ranking if e["best"]]
    if scores != sorted(scores, reverse=True) or any(e["best"] for e in ranking[len(scores):]):
        shown = [(e["team"], e["best"] and e["best"]["score"]) for e in ranking]
        problems.append(f"the ranking is not by best score: {shown}")
    accuracy = {what: by_team[team]["best"]["accuracy"] for team, kind, what, _ in roster
                if kind == "artifact" and what in ARTIFACTS and team in by_team and by_team[team]["best"]}
    ordered = [accuracy[name] for name in ARTIFACTS if name in accuracy]
    if ordered != sorted(ordered, reverse=True):
        problems.append(f"the better-trained artifact should be the more accurate: {accuracy}")
    return problems
