"""The results store: one SQLite file (stdlib ``sqlite3``), WAL, every write in one transaction.

A submission's row is written *queued* before anything is scored; a scorer *claims* it (``running``,
its worker id, ``attempts + 1``) and finishes it (``scored`` with the figures, or ``failed`` with a
reason the team can act on). A scorer killed mid-run leaves its row ``running``: :meth:`Store.recover`
puts rows whose worker is gone back in the queue, so the restarted scorer scores them, once. Claims
and finishes are conditional updates inside ``BEGIN IMMEDIATE``, so many threads and processes may
submit and score at the same time. The schema carries its version (``PRAGMA user_version``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError

SCHEMA_VERSION = 1
STATUSES = ("queued", "running", "scored", "failed")
KINDS = ("artifact", "endpoint")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('artifact', 'endpoint')),
    target TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'scored', 'failed')),
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    accuracy REAL,
    shifted_accuracy REAL,
    p95_ms REAL,
    cpu_s_per_1k REAL,
    score REAL,
    details TEXT
);
CREATE INDEX IF NOT EXISTS submissions_status ON submissions (status, id);
CREATE INDEX IF NOT EXISTS submissions_team ON submissions (team, id);
"""


class StoreError(KitError):
    """The results database cannot be used; the message names the file."""


@dataclass(frozen=True)
class Submission:
    id: int
    team: str
    kind: str
    target: str
    status: str
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    worker: str | None
    attempts: int
    reason: str | None
    accuracy: float | None
    shifted_accuracy: float | None
    p95_ms: float | None
    cpu_s_per_1k: float | None
    score: float | None
    details: str | None

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["details"] = json.loads(self.details) if self.details else {}
        return data


def worker_id() -> str:
    """``host:pid`` (a pool appends ``:thread``): :meth:`Store.recover` can tell whether the worker that claimed
    a row is still alive."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str | None) -> bool:
    host, _, rest = (worker or "").partition(":")  # host:pid, or host:pid:thread for a pool's workers
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker: only a lease could tell; treat as gone after recover(lease_s)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """The results database at ``path`` (created with its schema on first use)."""

    def __init__(self, path: str | Path, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # one connection, shared by threads: one statement or transaction at a time
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path} has schema version {version}; this kit reads {SCHEMA_VERSION}",
                                     fix="use the kit version that wrote it, or a new --db file")
                if version == 0:  # one statement at a time: executescript() would commit mid-transaction
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a usable results database: {error}",
                             fix="point --db at the event's results file, or a new path") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any error): one writer at a time, never half a write."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes ------------------------------------------------------------------------------------------------
    def submit(self, team: str, kind: str, target: str, now: float | None = None) -> int:
        """Record a submission as queued (before any scoring) and return its id."""
        if kind not in KINDS:
            raise StoreError(f"unknown submission kind {kind!r}", fix=f"use one of {', '.join(KINDS)}")
        if not team.strip():
            raise StoreError("a submission needs a team name", fix="pass --team NAME")
        with self.transaction() as db:
            cursor = db.execute("INSERT INTO submissions (team, kind, target, submitted_at) VALUES (?, ?, ?, ?)",
                                (team, kind, target, time.time() if now is None else now))
            return int(cursor.lastrowid or 0)

    def claim(self, submission_id: int | None = None, worker: str | None = None) -> Submission | None:
        """Mark the oldest queued submission (or ``submission_id`` if queued) running for ``worker``; None if none."""
        worker = worker or worker_id()
        with self.transaction() as db:
            if submission_id is None:
                row = db.execute("SELECT id FROM submissions WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            else:
                row = db.execute("SELECT id FROM submissions WHERE status = 'queued' AND id = ?",
                                 (submission_id,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE submissions SET status = 'running', worker = ?, started_at = ?, "
                       "attempts = attempts + 1 WHERE id = ?", (worker, time.time(), row["id"]))
            return self._get(db, row["id"])

    def finish(self, submission_id: int, worker: str, *, score: float, accuracy: float, shifted_accuracy: float,
               p95_ms: float, cpu_s_per_1k: float | None, details: dict) -> bool:
        """Record the scores of a submission ``worker`` holds; False (nothing written) if it no longer holds it."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE submissions SET status = 'scored', finished_at = ?, score = ?, accuracy = ?, "
                "shifted_accuracy = ?, p95_ms = ?, cpu_s_per_1k = ?, reason = NULL, details = ? "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (time.time(), score, accuracy, shifted_accuracy, p95_ms, cpu_s_per_1k, json.dumps(details),
                 submission_id, worker))
            return cursor.rowcount == 1

    def fail(self, submission_id: int, worker: str, reason: str, details: dict | None = None) -> bool:
        """Record a failed submission with the reason the team can act on."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE submissions SET status = 'failed', finished_at = ?, reason = ?, details = ? "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (time.time(), reason, json.dumps(details or {}), submission_id, worker))
            return cursor.rowcount == 1

    def recover(self, lease_s: float | None = None) -> list[int]:
        """Put ``running`` rows back in the queue whose worker process is gone (or, with ``lease_s``, that
        started longer ago than that): a killed scorer's submissions are scored by the next one."""
        with self.transaction() as db:
            rows = db.execute("SELECT id, worker, started_at FROM submissions WHERE status = 'running'").fetchall()
            now = time.time()
            stale = [r["id"] for r in rows
                     if not _alive(r["worker"]) or (lease_s is not None and now - (r["started_at"] or 0) > lease_s)]
            db.executemany("UPDATE submissions SET status = 'queued', worker = NULL WHERE id = ? "
                           "AND status = 'running'", [(i,) for i in stale])
            return stale

    # -- reads -------------------------------------------------------------------------------------------------
    @staticmethod
    def _get(db: sqlite3.Connection, submission_id: int) -> Submission:
        row = db.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        if row is None:
            raise StoreError(f"no submission {submission_id}", fix="list them with `kit hackathon board --export -`")
        return Submission(**dict(row))

    def get(self, submission_id: int) -> Submission:
        with self._lock:
            return self._get(self._db, submission_id)

    def submissions(self, team: str | None = None) -> list[Submission]:
        query, args = "SELECT * FROM submissions", tuple[str, ...]()
        if team is not None:
            query, args = query + " WHERE team = ?", (team,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [Submission(**dict(r)) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM submissions GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | {r["status"]: r["n"] for r in rows}
