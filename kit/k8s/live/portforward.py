"""``kubectl port-forward`` on 127.0.0.1 as a managed subprocess, and the endpoints the kit forwards:
the Ray dashboard, a RayService's Serve endpoint and an InferenceService's predictor."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import IO

from kit.errors import KitError
from kit.k8s.live.kubectl import kubectl_hint
from kit.machine.processes import free_port, port_is_free
from kit.versions import PORTS

log = logging.getLogger(__name__)


class PortForwardError(KitError, RuntimeError):
    """kubectl port-forward did not start; the message has its output, ``fix`` what to check."""


@dataclass
class PortForward:
    """``kubectl port-forward`` to ``target`` (e.g. ``svc/x``) on loopback, started and stopped by the kit."""

    target: str
    remote_port: int
    namespace: str = "default"
    local_port: int | None = None
    address: str = "127.0.0.1"
    kubectl: str = "kubectl"
    process: subprocess.Popen[str] | None = field(default=None, repr=False)

    def command(self, local_port: int | None = None) -> list[str]:
        """The kubectl command line, forwarding ``local_port`` (default: the local, else the remote port)."""
        local = local_port or self.local_port or self.remote_port
        return [self.kubectl, "port-forward", "--address", self.address, "-n", self.namespace, self.target,
                f"{local}:{self.remote_port}"]

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.local_port}"

    def start(self, timeout: float = 20.0) -> str:
        """Start forwarding (idempotent); return the local URL once kubectl says it is forwarding."""
        if self.process is not None and self.process.poll() is None:
            return self.url
        if self.local_port is None or not port_is_free(self.local_port, self.address):
            chosen = free_port(self.local_port or self.remote_port, self.address)
            if chosen != (self.local_port or self.remote_port):
                log.warning("port %s is in use here; forwarding %s instead", self.local_port or self.remote_port,
                            chosen)
            self.local_port = chosen
        if shutil.which(self.kubectl) is None:
            raise PortForwardError(f"{self.kubectl} not found",
                                   fix="install kubectl: https://kubernetes.io/docs/tasks/tools/")
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        atexit.register(self.stop)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line.rstrip())
            if line.startswith("Forwarding from"):
                return self.url
        self.stop()
        output = "\n".join(seen) or "(no output)"
        raise PortForwardError(f"`{' '.join(self.command())}` did not start forwarding:\n{output}",
                               fix=kubectl_hint(output) or "check that the target exists and its pod is running")

    def stop(self) -> None:
        """Stop kubectl (and nothing else); safe to call twice."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> PortForward:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    if stream is None:
        lines.put(None)
        return
    for line in stream:
        lines.put(line)
    lines.put(None)


def dashboard(raycluster: str, namespace: str) -> PortForward:
    """The Ray dashboard (and Jobs API) of a RayCluster: its head Service, port 8265."""
    return PortForward(f"svc/{raycluster}-head-svc", PORTS["ray-dashboard"], namespace)


def serve_endpoint(rayservice: str, namespace: str) -> PortForward:
    """A RayService's Serve HTTP endpoint: its serve Service, port 8000."""
    return PortForward(f"svc/{rayservice}-serve-svc", 8000, namespace)


def inference_endpoint(isvc: str, namespace: str) -> PortForward:
    """An InferenceService in Standard mode: its predictor Service, port 80."""
    return PortForward(f"svc/{isvc}-predictor", 80, namespace, local_port=8080)
