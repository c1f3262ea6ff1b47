"""An ASGI application served by uvicorn in a thread of this process, on loopback.

For servers that must share the caller's memory (a notebook's small language model, the hackathon
board in a rehearsal) rather than run as a child process like :class:`kit.serve.process.ServerProcess`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from kit.errors import KitError
from kit.machine.processes import free_port

Server = TypeVar("Server", bound="ThreadedServer")


class ThreadedServer:
    """``app`` on ``host:port`` (a free port when None) in a daemon thread; ``with`` starts and stops it."""

    def __init__(self, app: Any, port: int | None = None, host: str = "127.0.0.1", name: str = "server") -> None:
        import uvicorn

        self.name, self.port = name, port or free_port()
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"kit-{name}", daemon=True)

    def start(self: Server, timeout_s: float = 20.0) -> Server:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.stop()
                raise KitError(f"the {self.name} did not start on {self.url}",
                               fix=f"check that port {self.port} is free (python -m kit doctor lists busy ports)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Ask uvicorn to finish its open responses and exit; the port is free when this returns."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def __enter__(self: Server) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
