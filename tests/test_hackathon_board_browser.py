"""The leaderboard in a real headless browser: it loads, ranks, updates without a reload, and shows
a team named ``<script>alert(1)</script>`` as text (no alert, no injected element)."""

from __future__ import annotations

import time

import pytest
from hackathon_board_cases import XSS, event_store, record
from hackathon_browser import browser, ranking

from kit.hackathon.board import BoardServer
from kit.machine.processes import free_port


@pytest.fixture
def driver():
    d = browser()
    try:
        yield d
    finally:
        d.quit()


def _wait(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_page_ranks_updates_without_reload_and_shows_script_as_text(tmp_path, driver):
    db = tmp_path / "r.sqlite"
    store = event_store(db)
    with BoardServer(db, free_port(), refresh_s=0.5) as server:
        driver.get(server.url + "/")
        rows = ranking(driver)
        assert [r[1] for r in rows] == ["alpha", XSS, "beta", "gamma"]
        assert rows[0][0] == "1" and rows[0][2] == "80.00" and rows[3][0] == "-"
        assert rows[3][7].startswith("#5 FAILED: cannot connect to <b>host</b>")  # text, not markup
        from selenium.webdriver.common.by import By

        assert driver.find_elements(By.CSS_SELECTOR, "#ranking b") == []
        driver.execute_script("window.kitMarker = 'same page';")  # gone if the page reloads
        record(store, "beta", 95.0)  # a new score, recorded as the scorer records it
        assert _wait(lambda: ranking(driver)[0][1] == "beta"), ranking(driver)
        rows = ranking(driver)
        assert [r[1] for r in rows] == ["beta", "alpha", XSS, "gamma"] and rows[0][2] == "95.00"
        assert driver.execute_script("return window.kitMarker;") == "same page"
        assert driver.find_elements(By.CSS_SELECTOR, "#plot svg polyline")  # the plot was redrawn
        assert "<script>alert(1)</script>" in driver.find_element(By.ID, "ranking").text
        assert len(driver.find_elements(By.TAG_NAME, "script")) == 1  # only /board.js: nothing injected ran
        logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not logs, logs
