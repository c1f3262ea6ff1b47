"""One local Ray per Jupyter server: the next notebook attaches, and Ray stops with its owner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kit.machine import local_ray as raylocal
from kit.machine import ray_session, ray_watch

# Plays the Jupyter server: launches two kernel-like children with $JPY_PARENT_PID set to itself, as
# jupyter_client does (launcher.py), then exits, leaving the Ray its first child started.
_OWNER = """
import json, os, subprocess, sys
kernel = '''
import json
from kit.machine import local_ray as raylocal
info = raylocal.start()
raylocal.stop()
print(json.dumps({"attached": info.attached, "address": info.address, "dir": str(info.temp_dir), "text": str(info)}))
'''
env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
runs = []
for _ in range(2):
    out = subprocess.run([sys.executable, "-c", kernel], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    runs.append(json.loads(out.stdout.splitlines()[-1]))
print(json.dumps(runs))
"""


def test_the_next_notebook_attaches_and_ray_stops_with_its_owner():
    root = Path(tempfile.mkdtemp(prefix="kt-"))  # short: Ray's sockets live below it
    env = dict(os.environ, **{raylocal.TEMP_ENV: str(root)})
    env.pop(ray_session.KEEP_LOGS_ENV, None)
    out = subprocess.run([sys.executable, "-c", _OWNER], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = json.loads(out.stdout.splitlines()[-1])
    assert not first["attached"] and "started in" in first["text"]
    assert second["attached"] and second["address"] == first["address"], "the second kernel started its own Ray"
    assert "stops with Jupyter" in second["text"]
    directory = Path(first["dir"])
    assert directory.parent == root
    deadline = time.monotonic() + 30
    while (raylocal.ray_processes(directory) or directory.exists()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not raylocal.ray_processes(directory), "Ray outlived the process that owned it"
    assert not directory.exists(), f"{directory} outlived its Ray"
    root.rmdir()


def test_a_script_started_from_a_notebook_owns_its_own_ray(monkeypatch):
    """``!python script.py`` inherits $JPY_PARENT_PID, but its parent is the kernel: it gets a Ray of its own."""
    monkeypatch.setenv(ray_session.OWNER_ENV, str(os.getppid()))
    assert ray_session.owner_pid() == os.getppid()
    monkeypatch.setenv(ray_session.OWNER_ENV, "1" if os.getppid() != 1 else "2")
    assert ray_session.owner_pid() == os.getpid()
    monkeypatch.setenv(ray_session.OWNER_ENV, "not-a-pid")
    assert ray_session.owner_pid() == os.getpid()


def test_a_session_whose_watcher_is_gone_is_not_found(tmp_path):
    directory = ray_session.directory_for(tmp_path, 4242)
    directory.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    session = {"directory": str(directory), "gcs_address": "127.0.0.1:1", "watcher_pid": dead.pid,
               "owner_pid": 4242, "dashboard": False, "cpus": 1, "started_at": 0.0, "start_seconds": 1.0}
    (directory / ray_session.SESSION_FILE).write_text(json.dumps(session))
    assert ray_session.find(tmp_path, 4242) is None
    session["watcher_pid"] = os.getpid()
    (directory / ray_session.SESSION_FILE).write_text(json.dumps(session))
    found = ray_session.find(tmp_path, 4242)
    assert found is not None and found.gcs_address == "127.0.0.1:1" and not found.owned_by_this_process


def test_the_watcher_reads_process_start_times():
    assert ray_watch.start_time(os.getpid()) is not None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert ray_watch.start_time(dead.pid) is None


def test_a_failed_start_leaves_no_process_behind(tmp_path):
    """What a failed start left (Ray starts its GCS and API server before the raylet that fails) is swept."""
    marker = tmp_path / "s1"
    left = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--log-dir={marker}/logs"])
            for _ in range(2)]
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--log-dir={tmp_path}/s12"])
    ray_watch.kill_marked(os.path.join(marker, ""))
    for proc in left:
        assert proc.wait(timeout=10) != 0
    assert bystander.poll() is None, "a process of another session was killed"
    bystander.kill()
    bystander.wait()
