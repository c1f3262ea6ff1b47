"""The harness must never pass silently: canary notebooks that fail, differ or leak are reported."""

from __future__ import annotations

from pathlib import Path

import harness
import pytest

CANARIES = Path(__file__).parent / "canary"


def test_failing_cell_is_reported_with_its_source_and_error():
    with pytest.raises(harness.NotebookFailed) as failed:
        harness.run_notebook(CANARIES / "canary_raises.ipynb", "papermill", record=False)
    message = str(failed.value)
    assert "canary_raises.ipynb failed under papermill" in message
    assert "ratio = 1 / 0" in message  # the failing cell's source
    assert "ZeroDivisionError" in message
    assert "=== Ray logs" in message


def test_checked_output_that_differs_fails_under_nbval():
    with pytest.raises(harness.NotebookFailed) as failed:
        harness.run_notebook(CANARIES / "canary_differs.ipynb", "nbval", record=False)
    assert "canary_differs.ipynb failed under nbval" in str(failed.value)


def test_leftover_process_port_and_temp_file_are_reported_and_cleaned():
    with pytest.raises(harness.NotebookFailed) as failed:
        harness.run_notebook(CANARIES / "canary_leaks.ipynb", "papermill", record=False)
    message = str(failed.value)
    assert "process still running" in message
    assert "still listening" in message
    assert "temp file left: canary-" in message


def test_report_table_flags_budgets():
    fast = harness.NotebookRun("00_fast", "papermill", seconds=10, peak_pss_bytes=2**29, ok=True)
    slow = harness.NotebookRun("02_slow", "nbval", seconds=120, peak_pss_bytes=2**31, ok=True)
    edge = harness.NotebookRun("03_edge", "nbval", seconds=90, peak_pss_bytes=3 * 2**29, ok=True)  # at budget
    rows = {line.split()[0]: line.split(None, 5)[5] for line in harness.report_table([fast, slow, edge]).splitlines()
            if line[:2].isdigit()}
    assert rows == {"00_fast": "ok", "02_slow": "ok (over budget: time>90s, mem>1.5GiB)", "03_edge": "ok"}
