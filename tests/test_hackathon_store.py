"""The results store: queued before scored, conditional claims and finishes, recovery, many processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from kit.hackathon import store as results
from kit.hackathon.store import Store, StoreError

FIGURES = {"score": 50.0, "accuracy": 0.8, "shifted_accuracy": 0.7, "p95_ms": 20.0, "cpu_s_per_1k": 3.0,
           "details": {}}


def test_schema_is_versioned_and_wal(tmp_path):
    db = tmp_path / "r.sqlite"
    Store(db).close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == results.SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.execute(f"PRAGMA user_version={results.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="schema version 2"):
        Store(db)
    (tmp_path / "junk.sqlite").write_text("not a database at all" * 100)
    with pytest.raises(StoreError, match="not a usable results database"):
        Store(tmp_path / "junk.sqlite")


def test_a_submission_is_queued_then_claimed_then_finished_once(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        sid = store.submit("team-a", "endpoint", "http://127.0.0.1:1")
        assert store.get(sid).status == "queued"
        claimed = store.claim(worker="w1")
        assert claimed is not None and claimed.id == sid and claimed.status == "running" and claimed.attempts == 1
        assert store.claim(worker="w2") is None  # nothing else queued
        assert not store.finish(sid, "w2", **FIGURES)  # a worker that does not hold it writes nothing
        assert store.finish(sid, "w1", **FIGURES)
        assert not store.finish(sid, "w1", **FIGURES)  # finished once
        assert not store.fail(sid, "w1", "late")
        row = store.get(sid)
        assert (row.status, row.score, row.reason) == ("scored", 50.0, None)
        with pytest.raises(StoreError, match="kind"):
            store.submit("team-a", "email", "x")
        with pytest.raises(StoreError, match="team name"):
            store.submit(" ", "endpoint", "x")


def test_recover_requeues_what_a_dead_worker_held(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        dead, alive = store.submit("a", "endpoint", "u"), store.submit("b", "endpoint", "u")
        store.claim(dead, worker=f"{results.socket.gethostname()}:999999999")
        store.claim(alive, worker=f"{results.worker_id()}:1")  # a live scorer's pool thread
        assert store.recover() == [dead]
        assert store.get(dead).status == "queued" and store.get(alive).status == "running"
        assert store.recover(lease_s=-1) == [alive]  # an expired lease: requeued too


def _submit_many(db: str, team: str, n: int) -> None:
    with Store(db) as store:
        for i in range(n):
            store.submit(team, "endpoint", f"http://127.0.0.1/{i}")


def _claim_all(db: str, name: str, queue) -> None:
    claimed = []
    with Store(db) as store:
        while (row := store.claim(worker=name)) is not None:
            store.fail(row.id, name, "test")
            claimed.append(row.id)
    queue.put(claimed)


def test_many_processes_submit_and_claim_without_losing_or_doubling_one(tmp_path):
    db = str(tmp_path / "r.sqlite")
    Store(db).close()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_submit_many, args=(db, f"team-{i}", 25)) for i in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(60)
        assert p.exitcode == 0
    with Store(db) as store:
        assert store.counts()["queued"] == 100
        assert {s.team for s in store.submissions()} == {f"team-{i}" for i in range(4)}
    queue = context.Queue()
    claimers = [context.Process(target=_claim_all, args=(db, f"worker-{i}", queue)) for i in range(3)]
    for p in claimers:
        p.start()
    claimed = [i for _ in claimers for i in queue.get(timeout=60)]
    for p in claimers:
        p.join(60)
    assert sorted(claimed) == list(range(1, 101))  # each submission claimed by exactly one worker
    with Store(db) as store:
        assert store.counts() == {"queued": 0, "running": 0, "scored": 0, "failed": 100}
        assert {s.attempts for s in store.submissions()} == {1}
