"""A results store with known figures for the leaderboard tests (no scoring: rows written as a scorer would)."""

from __future__ import annotations

from pathlib import Path

from kit.hackathon.store import Store

XSS = "<script>alert(1)</script>"


def record(store: Store, team: str, score: float | None, reason: str = "") -> int:
    """One submission of ``team``, claimed and finished (scored with ``score``, or failed with ``reason``)."""
    sid = store.submit(team, "endpoint", f"http://127.0.0.1/{team}")
    store.claim(sid, worker="test")
    if score is None:
        store.fail(sid, "test", reason or "HTTP 500 from the endpoint")
    else:
        store.finish(sid, "test", score=score, accuracy=score / 100, shifted_accuracy=score / 120, p95_ms=12.5,
                     cpu_s_per_1k=None, details={})
    return sid


def event_store(path: Path) -> Store:
    """alpha best 80 (then a worse 60: latest), beta 70, the XSS team 75, gamma only failed."""
    store = Store(path)
    record(store, "alpha", 80.0)
    record(store, "beta", 70.0)
    record(store, XSS, 75.0)
    record(store, "alpha", 60.0)
    record(store, "gamma", None, reason="cannot connect to <b>host</b>\nFix: start it")
    return store
