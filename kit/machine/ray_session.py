"""One local Ray per Jupyter server: started by the first notebook, attached to by every next one.

Starting Ray costs ~9 s on 2 cores (GCS, raylet, two agents, the API server); attaching a new
driver to a running Ray costs about one. So the kit keeps one Ray per *owner*: the Jupyter
server that launched the kernel (``$JPY_PARENT_PID``, which jupyter_client sets for every kernel
it starts; papermill and nbval are owners too), or the process itself when no Jupyter started it.
The Ray lives in a detached process tree under a small watcher (:mod:`kit.machine.ray_watch`)
that stops it when the owner exits, so it is "stopped with the server".

The head is started as ``ray.init(address="local")`` starts it (Ray 2.60,
``python/ray/_private/worker.py``, ``init``: ``RayParams`` then ``Node(head=True)``), with one
difference: ``no_monitor=True`` (the autoscaler's monitor, ~70 MiB, scales nothing on one machine;
``ray start --no-monitor`` is the same flag). The API server stays: Ray Train v2's placement-group
cleaner asks the state API whether the controller is alive (``placement_group_cleaner.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.machine import ray_watch

#: The daemon's spec, in and out: what the kernel asks for and what the daemon started.
SESSION_FILE = ray_watch.SESSION_FILE
LOG_FILE = "session.log"
OWNER_ENV = "JPY_PARENT_PID"
#: Set by the notebook harness: keep the session's logs after it stops (a failed notebook reports them).
KEEP_LOGS_ENV = "KIT_RAY_KEEP_LOGS"
START_TIMEOUT_S = 120.0


class RaySessionError(KitError):
    """The kit's session Ray could not be started."""


@dataclass(frozen=True)
class Session:
    """A running session Ray: where it lives and how to reach it."""

    directory: Path
    gcs_address: str
    watcher_pid: int
    owner_pid: int
    dashboard: bool
    cpus: float
    started_at: float
    start_seconds: float

    @property
    def owned_by_this_process(self) -> bool:
        return self.owner_pid == os.getpid()


def owner_pid() -> int:
    """Whose lifetime the session Ray follows: the Jupyter server (or papermill/nbval) that launched this kernel.

    Only when that process is this one's parent: a script started from a notebook's ``!python ...``
    inherits ``$JPY_PARENT_PID`` but gets a Ray of its own, as it always did.
    """
    parent = os.environ.get(OWNER_ENV, "")
    if parent.isdigit() and int(parent) == os.getppid() and ray_watch.start_time(int(parent)):
        return int(parent)
    return os.getpid()


def directory_for(root: Path, owner: int) -> Path:
    """The session's directory under the kit's Ray root (short: Ray's unix sockets live below it)."""
    return root / f"s{owner}"


def find(root: Path, owner: int | None = None) -> Session | None:
    """The running session of ``owner`` (default: this process's), or None when there is none or it died."""
    path = directory_for(root, owner or owner_pid()) / SESSION_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    session = Session(**{**data, "directory": Path(data["directory"])})
    if ray_watch.start_time(session.watcher_pid) is None:
        return None
    return session


def launch(root: Path, ray_options: dict[str, Any], dashboard: bool) -> Session:
    """Start a session Ray for this process's owner and wait until it answers; raise RaySessionError if not."""
    owner = owner_pid()
    directory = directory_for(root, owner)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / SESSION_FILE).unlink(missing_ok=True)
    spec = {"owner_pid": owner, "owner_start": ray_watch.start_time(owner), "directory": str(directory),
            "dashboard": dashboard, "keep_logs": bool(os.environ.get(KEEP_LOGS_ENV)), "ray": ray_options}
    log_path = directory / LOG_FILE
    began = time.perf_counter()
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kit.machine.ray_session", json.dumps(spec)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    while (session := find(root, owner)) is None:
        if proc.poll() is not None or time.perf_counter() - began > START_TIMEOUT_S:
            if proc.poll() is None:
                proc.kill()
            ray_watch.kill_marked(os.path.join(directory, ""))
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise RaySessionError(f"local Ray did not start (its log, {log_path}):\n{tail}",
                                  fix="Run `python -m kit doctor`; free memory or restart the Jupyter server, "
                                      "then run the cell again.")
        time.sleep(0.1)
    return session


def stop(session: Session, timeout: float = 30.0) -> None:
    """Stop a session Ray (its watcher stops the head; the rest follows the raylet) and wait for the watcher."""
    import psutil

    try:
        watcher = psutil.Process(session.watcher_pid)
        watcher.terminate()
        watcher.wait(timeout)
    except psutil.NoSuchProcess:
        pass


def _start_head(spec: dict) -> Any:
    """Start the Ray head as ``ray.init(address="local")`` does, without the autoscaler monitor."""
    from ray._private.authentication.authentication_token_setup import (
        enable_token_auth_by_default,
        ensure_token_if_auth_enabled,
    )
    from ray._private.node import Node
    from ray._private.parameter import RayParams
    from ray._private.resource_isolation_config import ResourceIsolationConfig

    options = dict(spec["ray"])
    system_config = options.pop("_system_config", {})
    enable_token_auth_by_default()
    ensure_token_if_auth_enabled(system_config, create_token_if_missing=True)
    # dashboard_port=None as ray.init passes it: the API server then tries the next ports when 8265 is taken.
    params = RayParams(**options, _system_config=system_config, include_dashboard=spec["dashboard"],
                       dashboard_port=None, temp_dir=spec["directory"], no_monitor=True,
                       resource_isolation_config=ResourceIsolationConfig(enable_resource_isolation=False))
    return Node(params, head=True, shutdown_at_exit=False, spawn_reaper=False, ray_init_cluster=True)


def _daemon(spec: dict) -> None:
    """Start the head, publish the session file, then become the stdlib-only watcher (``exec``)."""
    began, wall = time.perf_counter(), time.time()
    try:
        node = _start_head(spec)
    except BaseException:
        ray_watch.kill_marked(os.path.join(spec["directory"], ""))  # what Ray started before it failed
        raise
    order = ["raylet", "log_monitor", "api_server", "dashboard", "gcs_server"]  # raylet first, as Ray stops it
    kinds = sorted(node.all_processes, key=lambda kind: order.index(kind) if kind in order else len(order))
    pids = [info.process.pid for kind in kinds for info in node.all_processes[kind]]
    directory = Path(spec["directory"])
    session = {"directory": str(directory), "gcs_address": node.gcs_address, "watcher_pid": os.getpid(),
               "owner_pid": spec["owner_pid"], "dashboard": spec["dashboard"], "cpus": spec["ray"]["num_cpus"],
               "started_at": wall, "start_seconds": time.perf_counter() - began}
    tmp = directory / f".{SESSION_FILE}"
    tmp.write_text(json.dumps(session))
    tmp.replace(directory / SESSION_FILE)
    watch = {key: spec[key] for key in ("owner_pid", "owner_start", "directory", "keep_logs")}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-I", "-S", ray_watch.__file__, json.dumps({**watch, "pids": pids})])


if __name__ == "__main__":
    _daemon(json.loads(sys.argv[1]))
