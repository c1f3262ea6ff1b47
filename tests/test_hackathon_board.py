"""The leaderboard's ranking, page, JSON API and export (the browser test: test_hackathon_board_browser.py)."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from hackathon_board_cases import XSS, event_store, record

from kit.cli import main as cli
from kit.hackathon import board
from kit.machine.processes import free_port


def test_ranking_by_best_with_each_teams_latest(tmp_path):
    data = board.leaderboard(event_store(tmp_path / "r.sqlite"))
    assert [t["team"] for t in data["teams"]] == ["alpha", XSS, "beta", "gamma"]
    assert [t["rank"] for t in data["teams"]] == [1, 2, 3, None]
    alpha = data["teams"][0]
    assert alpha["best"]["score"] == 80.0 and alpha["latest"]["score"] == 60.0 and alpha["submissions"] == 2
    assert data["teams"][3]["latest"]["status"] == "failed" and data["teams"][3]["best"] is None
    assert [h["score"] for h in data["history"]] == [80.0, 70.0, 75.0, 60.0]
    assert data["counts"] == {"queued": 0, "running": 0, "scored": 4, "failed": 1}


def test_a_tie_goes_to_who_reached_it_first(tmp_path):
    store = event_store(tmp_path / "r.sqlite")
    record(store, "delta", 80.0)
    teams = [t["team"] for t in board.leaderboard(store)["teams"]]
    assert teams.index("alpha") < teams.index("delta")


def test_every_team_chosen_text_is_escaped_in_the_page_and_the_plot(tmp_path):
    data = board.leaderboard(event_store(tmp_path / "r.sqlite"))
    page = board.page(data)
    assert XSS not in page and "<b>host</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 1 and '<script src="/board.js"></script>' in page
    assert XSS not in data["svg"] and "&lt;script&gt;" in data["svg"]
    assert data["svg"].startswith("<svg") and data["svg"].count("<polyline") == 1  # alpha has two points


def test_the_plot_of_an_empty_board_says_so(tmp_path):
    from kit.hackathon.store import Store

    assert "no scored submission yet" in board.leaderboard(Store(tmp_path / "r.sqlite"))["svg"]


def test_served_page_api_and_script_with_a_strict_csp(tmp_path):
    event_store(tmp_path / "r.sqlite").close()
    with board.BoardServer(tmp_path / "r.sqlite", free_port()) as server:
        page = httpx.get(server.url + "/", timeout=10)
        api = httpx.get(server.url + "/api/leaderboard", timeout=10)
        script = httpx.get(server.url + "/board.js", timeout=10)
    assert page.status_code == api.status_code == script.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert [t["team"] for t in api.json()["teams"]][:2] == ["alpha", XSS]
    assert "textContent" in script.text and "innerHTML" not in script.text
    assert script.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_export_for_organisers(tmp_path, suffix):
    db = tmp_path / "r.sqlite"
    event_store(db).close()
    out = tmp_path / f"results{suffix}"
    assert cli(["hackathon", "board", "--db", str(db), "--export", str(out)]) == 0
    text = out.read_text()
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 5 and rows[2]["team"] == XSS and rows[4]["status"] == "failed"
        assert float(rows[0]["score"]) == 80.0
    else:
        data = json.loads(text)
        assert next(t["team"] for t in data["teams"]) == "alpha" and len(data["submissions"]) == 5
        assert "svg" not in data


def test_board_without_a_database_says_what_to_do(tmp_path, capsys):
    assert cli(["hackathon", "board", "--db", str(tmp_path / "none.sqlite")]) == 1
    assert "score a submission first" in capsys.readouterr().err
