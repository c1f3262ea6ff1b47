"""The command line, `make lab` (headless) and the lint gate."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kit.cli import COMMANDS, main

REPO = Path(__file__).resolve().parent.parent


def test_usage_lists_every_command_and_an_unknown_one_is_a_usage_error(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.split("commands:")[1].strip().splitlines()] == list(COMMANDS)
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_entry_point_prints_usage():
    """The one subprocess test: ``python -m kit`` reaches kit.cli.main."""
    done = subprocess.run([sys.executable, "-m", "kit", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and done.stderr == ""
    assert all(f"  {name} " in done.stdout for name in COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_and_rejects_an_unknown_option(command, capsys):
    assert main([command, "--help"]) == 0
    assert f"usage: python -m kit {command}" in capsys.readouterr().out
    assert main([command, "--no-such-option"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_kit_error_reaches_the_user_as_message_and_fix(monkeypatch, capsys):
    from kit.course import notebooks

    monkeypatch.setattr(notebooks, "stale", lambda: ["01_x.ipynb: differs from what solutions/01_x.ipynb generates"])
    assert main(["notebooks", "check"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "kit notebooks: notebooks/ is out of date:",
        "  01_x.ipynb: differs from what solutions/01_x.ipynb generates",
        "Fix: run `python -m kit notebooks generate` and commit notebooks/",
    ]
    assert captured.out == ""


def test_a_malformed_solution_is_named_with_its_fix(monkeypatch, capsys):
    from kit.course import notebooks

    unclosed = "# BEGIN SOLUTION\nx = 1"
    monkeypatch.setattr(notebooks, "generate", lambda: [notebooks.strip_solution(unclosed, "01_x.ipynb, cell 3")])
    assert main(["notebooks", "generate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kit notebooks: 01_x.ipynb, cell 3: BEGIN SOLUTION is never closed with END SOLUTION\n")
    assert "\nFix: pair each `# BEGIN SOLUTION`" in err and "Traceback" not in err


def test_an_unexpected_exception_is_not_swallowed(monkeypatch):
    """Only KitError is the user's problem; a bug in the kit keeps its traceback."""
    from kit.course import notebooks

    monkeypatch.setattr(notebooks, "stale", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["notebooks", "check"])


def test_notebooks_check_command_passes_on_the_repo(capsys):
    assert main(["notebooks", "check"]) == 0
    assert "matches" in capsys.readouterr().out


def test_bench_usage_errors_exit_2_before_measuring(capsys):
    assert main(["bench"]) == 2
    assert main(["bench", "nope"]) == 2
    assert main(["bench", "ray", "--repeat", "two"]) == 2
    assert "invalid int value: 'two'" in capsys.readouterr().err


def test_library_logs_reach_stderr_through_the_cli(monkeypatch, capsys):
    import logging

    from kit import cli

    def command(argv):
        logging.getLogger("kit.deploy.plan").info("applying %s", argv[0])
        return 0

    monkeypatch.setitem(cli.COMMANDS, "fake", (f"{__name__}:_fake", "a test command"))
    monkeypatch.setattr(sys.modules[__name__], "_fake", command, raising=False)
    assert main(["fake", "now"]) == 0
    assert capsys.readouterr().err == "applying now\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_lab_serves_jupyterlab_headless():
    port, token = _free_port(), secrets.token_hex(16)
    args = f"--no-browser --port={port} --IdentityProvider.token={token} --ServerApp.port_retries=0"
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline, page = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5)
                if page.status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(1)
        if page is None or page.status_code != 200:
            output = proc.stdout.read() if proc.poll() is not None else "(still running)"
            raise AssertionError(f"JupyterLab did not answer on port {port}:\n{output[-3000:]}")
        assert "JupyterLab" in page.text
        tree = httpx.get(f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}", timeout=10)
        assert "00_welcome_and_doctor.ipynb" in tree.text
        landing = httpx.get(f"http://127.0.0.1:{port}/?token={token}", timeout=10, follow_redirects=True)
        assert landing.url.path == "/lab/tree/notebooks/00_welcome_and_doctor.ipynb"
        plugin = "@jupyterlab/apputils-extension:notification"
        settings = httpx.get(f"http://127.0.0.1:{port}/lab/api/settings/{plugin}?token={token}", timeout=10).json()
        news = settings["schema"]["properties"]["fetchNews"]["default"]
        assert news == "false", f"lab/overrides.json did not reach JupyterLab: fetchNews default is {news!r}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ruff_is_clean():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "kit", "tests"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _fake_ray_figures(repeat: int) -> dict:
    from kit.bench import ray

    rows = {ray.NEXT: {"median": 4.2, "runs": [4.0, 4.4][:repeat]}, "reuse": {"median": 0.01, "runs": [0.01]}}
    return {"machine": {"cpus": 2}, "next_goal_s": ray.NEXT_GOAL_S, "rows": rows}


def test_bench_prints_the_table_or_json_and_saves_the_figures(monkeypatch, tmp_path, capsys):
    from kit import bench
    from kit.bench import ray

    monkeypatch.setattr(ray, "bench_ray", _fake_ray_figures)
    monkeypatch.setattr(bench, "out_dir", lambda: tmp_path)
    assert main(["bench", "ray", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "moving to the next stage, goal ≤ 5 s: measured 4.2 s (met)" in out and "4.00, 4.40" in out
    assert f"wrote {tmp_path / 'ray.json'}" in out
    saved = json.loads((tmp_path / "ray.json").read_text())
    assert saved == _fake_ray_figures(2)

    assert main(["bench", "ray", "--repeat", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][ray.NEXT]["runs"] == [4.0]
