"""lane.sh's own checks, without Ray: an abandoned lane is removed, a running one is left alone.

In their own module, because tests/test_raycluster.py keeps a real lane up (a module fixture) while its tests run,
and these make the lane's bridge and namespaces themselves. Needs root and iproute2, like the lane.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from test_raycluster import LANE, _missing_prerequisite


@pytest.fixture
def lane_objects():
    """A bridge and a namespace named as the lane's (no Ray): what a killed run leaves behind."""
    missing = _missing_prerequisite()
    if missing:
        pytest.fail(missing)
    if _exists("kitrl-br") or _exists("kitrl-w1"):
        pytest.fail("a Ray lane is up on this machine (kitrl-br or kitrl-w1 exists): `tests/raycluster/lane.sh down`")
    subprocess.run(["ip", "link", "add", "kitrl-br", "type", "bridge"], check=True)
    subprocess.run(["ip", "netns", "add", "kitrl-w1"], check=True)
    yield
    subprocess.run(["ip", "netns", "delete", "kitrl-w1"], capture_output=True)
    subprocess.run(["ip", "link", "delete", "kitrl-br"], capture_output=True)


def _check() -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LANE), "check"], env=dict(os.environ, PY=sys.executable), capture_output=True,
                          text=True, timeout=60)


def _exists(name: str) -> bool:
    """Whether the interface or network namespace `name` exists."""
    command = ["ip", "netns", "pids", name] if name.startswith("kitrl-w") else ["ip", "link", "show", name]
    return subprocess.run(command, capture_output=True).returncode == 0


def test_an_abandoned_lane_is_removed_before_a_new_one_starts(lane_objects):
    """A run killed before `lane.sh down` must not block every later run (it failed CI once)."""
    check = _check()
    assert check.returncode == 0, check.stderr
    assert "abandoned lane" in check.stderr and "kitrl-br" in check.stderr
    assert not _exists("kitrl-br") and not _exists("kitrl-w1")


def test_a_lane_with_a_running_process_is_left_alone(lane_objects):
    """A process in one of the namespaces means a lane (maybe another checkout's) is up: refuse, remove nothing."""
    sleeper = subprocess.Popen(["ip", "netns", "exec", "kitrl-w1", "sleep", "60"])
    try:
        for _ in range(50):
            if subprocess.run(["ip", "netns", "pids", "kitrl-w1"], capture_output=True, text=True).stdout.strip():
                break
            time.sleep(0.1)
        check = _check()
        assert check.returncode != 0
        assert "another lane is up" in check.stderr and "kitrl-w1" in check.stderr
        assert _exists("kitrl-br") and _exists("kitrl-w1")
    finally:
        sleeper.kill()
        sleeper.wait()
