"""`python -m kit hackathon rehearse --teams 8`: the event comes out right, in about a minute and under
the memory budget, and the leaderboard page (in headless chromium) shows the ranking the JSON API gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hackathon_browser import browser, ranking

from kit.hackathon import rehearse as rehearsal
from kit.hackathon.board import BoardServer
from kit.machine.processes import free_port
from kit.paths import REPO_ROOT


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rehearsal")
    done = subprocess.run([sys.executable, "-m", "kit", "hackathon", "rehearse", "--teams", "8", "--json",
                           "--workdir", str(workdir)], capture_output=True, text=True, timeout=400,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.stdout.strip().startswith("{"), done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    print(f"\nrehearsal: {report['seconds']} s, peak {report['peak_pss_mib']} MiB, phases {report['phases']}")
    return done.returncode, report


def test_the_event_comes_out_right(rehearsed):
    code, report = rehearsed
    assert report["problems"] == [] and code == 0, report["problems"]
    teams = [entry["team"] for entry in report["ranking"]]
    roster = rehearsal.ROSTER[:8]
    assert sorted(teams) == sorted(team for team, *_ in roster)
    scored = [t for t, _, _, expected in roster if expected is None]
    assert set(teams[:len(scored)]) == set(scored)  # every good submission above every broken one
    assert teams.index("strong-artifact") < teams.index("weak-artifact")
    failed = {e["team"]: e["latest"]["reason"] for e in report["ranking"] if e["best"] is None}
    assert "SHA-256" in failed["tampered-artifact"] and "HTTP 500" in failed["crashing-endpoint"]
    assert all("Fix: " in reason for reason in failed.values())


def test_it_takes_about_a_minute_and_fits_the_memory_budget(rehearsed):
    _, report = rehearsed
    assert 0 < report["peak_pss_mib"] < rehearsal.MEMORY_BUDGET_MIB
    assert report["seconds"] < 180  # about a minute alone on 2 cores; shared CI runners are slower
    assert set(report["phases"]) == {"data", "training", "serving and submitting", "scoring"}
    assert 1 <= report["workers"] <= 2


def test_the_page_shows_the_rehearsals_ranking(rehearsed):
    _, report = rehearsed
    driver = browser()
    try:
        with BoardServer(report["db"], free_port()) as server:
            driver.get(server.url + "/")
            rows = ranking(driver)
    finally:
        driver.quit()
    assert [r[1] for r in rows] == [e["team"] for e in report["ranking"]]
    assert [r[0] for r in rows][:5] == ["1", "2", "3", "4", "-"]
