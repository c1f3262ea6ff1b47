"""Stop a kit session Ray when its owner exits: the resident half of :mod:`kit.machine.ray_session`.

Standard library only, run with ``python -I -S``: it lives as long as the Jupyter server, so it
imports nothing it does not need (a few MiB where a process with Ray imported costs ~90 MiB).
It is the parent of the Ray head's processes (GCS, raylet, log monitor, API server); every other
Ray process (agents, workers) exits by itself once the raylet is gone.

Usage: ``python -I -S ray_watch.py SPEC_JSON`` with ``owner_pid``, ``owner_start``, ``pids``,
``directory``, ``keep_logs``. It stops Ray when the owner exits, when it receives SIGTERM or when
a Ray head process dies (the session is then broken and the next notebook starts a fresh one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time

POLL_SECONDS = 0.5
#: How long Ray's head processes get to exit after SIGTERM before SIGKILL (Ray's own Node.kill_all_processes
#: waits one second per process).
GRACE_SECONDS = 2.0
SESSION_FILE = "session.json"


def start_time(pid: int) -> str | None:
    """The process's start time (``/proc/PID/stat`` field 22), or None when it is gone: guards against PID reuse."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[1].split()[19]


def _reap() -> None:
    """Collect exited children so they do not linger as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _alive(pid: int) -> bool:
    _reap()
    return start_time(pid) is not None


def _children(pids: set[int]) -> set[int]:
    """Every descendant of ``pids`` (from ``/proc/*/stat``): the raylet's agents and workers, whose titles
    (``ray::DashboardAgent``) no longer name the session directory."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _stop(pids: list[int]) -> None:
    """SIGTERM the Ray head's processes and everything they started; SIGKILL whatever is left after the grace."""
    everything = [*pids, *sorted(_children(set(pids)))]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in everything:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_SECONDS
        while any(_alive(pid) for pid in everything) and time.monotonic() < deadline:
            time.sleep(0.1)


def kill_marked(marker: str) -> None:
    """SIGKILL every process of this user whose command line names ``marker`` (a session directory), but this one.

    The last sweep: it catches what a failed start left behind (Ray starts the GCS, API server and log monitor
    before the raylet that fails) and anything that outlived the raylet. It reaps nothing: called in a kernel,
    it must not take the exit status of the kernel's own children.
    """
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            if marker in cmdline and os.stat(f"/proc/{entry}").st_uid == os.getuid():
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def main(spec: dict) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the owner's terminal is the owner's business
    owner, owner_start, pids = spec["owner_pid"], spec["owner_start"], spec["pids"]
    while not stopping and start_time(owner) == owner_start and all(_alive(pid) for pid in pids):
        time.sleep(POLL_SECONDS)
    _stop(pids)
    directory = spec["directory"]
    kill_marked(os.path.join(directory, ""))
    _reap()
    with contextlib.suppress(OSError):
        os.remove(os.path.join(directory, SESSION_FILE))
    if not spec.get("keep_logs"):
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
