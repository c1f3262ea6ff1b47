"""A model server in its own process on 127.0.0.1: start, wait until ready, restart, stop.

Used for the KServe model server and the FastAPI baseline. A start that fails says
why (the port is taken, the process died: with the tail of its log, or it never
became ready). Stopping frees the port and removes the log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kit.errors import KitError
from kit.machine.processes import free_port, port_is_free
from kit.paths import REPO_ROOT

HOST = "127.0.0.1"


class ServerNotReady(KitError, RuntimeError):
    """The server process did not become ready; the message says why and shows its log."""

    def __init__(self, message: str,
                 fix: str = "read the server's log above: its last error is the cause") -> None:
        super().__init__(message, fix=fix)


def kit_pythonpath() -> str:
    """The directory holding this ``kit`` package first, so the child imports the same code."""
    root = str(REPO_ROOT)
    rest = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{rest}" if rest else root


@dataclass
class ServerProcess:
    """``python -m <module> <args>`` serving HTTP on ``127.0.0.1:<port>``; ready when ``ready_path`` is 200."""

    module: str
    args: list[str]
    port: int
    ready_path: str = "/healthz"
    name: str = "server"
    #: extra environment variables for the child (e.g. vLLM's ``VLLM_CPU_KVCACHE_SPACE``)
    env: dict[str, str] = field(default_factory=dict)
    #: give the child a TMPDIR of its own, removed by :meth:`stop` (vLLM leaves IPC sockets, a compile cache and
    #: its process-group files in the temp directory)
    own_tmp: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False)
    _log_dir: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self._log_dir / f"{self.name}.log" if self._log_dir else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start (or keep) the process and wait until it answers ready; idempotent."""
        if self.running():
            return self.wait_ready(timeout)
        if not port_is_free(self.port):
            raise ServerNotReady(
                f"{self.name}: port {self.port} on {HOST} is already in use",
                fix=f"stop what holds it (`lsof -i :{self.port}`) or pick another port",
            )
        self._log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix=f"kit-{self.name}-"))
        log_path = self._log_dir / f"{self.name}.log"
        env = dict(os.environ, PYTHONPATH=kit_pythonpath(), PYTHONUNBUFFERED="1", **self.env)
        if self.own_tmp:
            (self._log_dir / "tmp").mkdir(exist_ok=True)
            env["TMPDIR"] = str(self._log_dir / "tmp")
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not self.running():
                code = self.process.returncode if self.process else None
                raise ServerNotReady(f"{self.name} exited with code {code} before it was ready\n{self.log_tail()}")
            try:
                response = httpx.get(self.url + self.ready_path, timeout=2.0)
                if response.status_code == 200:
                    return self
                last = f"HTTP {response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                last = type(error).__name__
            time.sleep(0.2)
        raise ServerNotReady(
            f"{self.name} at {self.url} was not ready after {timeout:.0f} s (last answer from "
            f"{self.ready_path}: {last})\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.name}'s log\n" + "\n".join(tail)

    def terminate(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait until its port is free; keep the log."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        deadline = time.monotonic() + timeout
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def restart(self, timeout: float = 60.0) -> ServerProcess:
        """Stop and start again, then wait until ready (what a kubelet does after a failed probe)."""
        self.terminate()
        return self.start(timeout)

    def stop(self) -> None:
        """Stop the process, free the port and remove the log directory (and the child's own TMPDIR in it)."""
        self.terminate()
        self.process = None
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def baseline_server(model_dir: str | Path, port: int | None = None) -> ServerProcess:
    """The plain FastAPI/uvicorn baseline (not started yet; ``start()`` or use ``with``)."""
    port = port or free_port()
    return ServerProcess("kit.serve.baseline", ["--model-dir", str(model_dir), "--port", str(port)],
                         port=port, name="baseline")
