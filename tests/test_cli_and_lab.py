"""The command line, `make lab` (headless) and the lint gate."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kit.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_usage_and_unknown_command(capsys):
    assert main([]) == 0
    assert "doctor" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_notebooks_check_command_passes_on_the_repo():
    assert main(["notebooks", "check"]) == 0


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
