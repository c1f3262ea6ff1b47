"""Small v2 endpoints on loopback, for the rehearsal and the scorer's tests: one that answers well
(a nearest-centroid classifier fitted on the team's data: numpy, no torch), and one per way a team's
server can misbehave. Each runs a ``ThreadingHTTPServer`` in a daemon thread of this process.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from kit.machine.processes import free_port

HOST = "127.0.0.1"
#: mode -> what the server does with a well-formed v2 request
MODES = {
    "good": "answers the right schema with a nearest-centroid classifier's labels",
    "http500": "answers HTTP 500 with an error body",
    "schema": "answers 200 with a v1 body (`predictions`), not v2",
    "shape": "answers one label fewer than the rows it was sent",
    "huge": "answers a body of several MiB",
    "slow": "waits longer than the scorer's request limit before answering",
    "trickle": "sends its answer one byte at a time, slowly",
    "garbage": "answers 200 with a body that is not JSON",
}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client that hung up on a misbehaving answer
        return


class Centroids:
    """The simplest honest model: the mean image of each class; predicts the nearest mean."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.means = np.stack([x[y == label].mean(axis=0) for label in range(10)])

    def predict(self, rows: np.ndarray) -> list[int]:
        distance = ((rows[:, None, :] - self.means[None, :, :]) ** 2).sum(axis=2)
        return distance.argmin(axis=1).tolist()


class Endpoint:
    """A loopback v2 endpoint in ``mode`` (see :data:`MODES`); ``with Endpoint(...) as e: e.url``."""

    def __init__(self, mode: str, model: Centroids | None = None, delay_s: float = 30.0, lag_s: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if mode == "good" and model is None:
            raise ValueError("a good endpoint needs a model")
        self.mode, self.model, self.delay_s, self.lag_s = mode, model, delay_s, lag_s
        self.requests = 0
        self.stopping = threading.Event()
        self.port = free_port()
        self.server = _QuietServer((HOST, self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"kit-endpoint-{mode}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                return

            def _send(self, status: int, body: bytes, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, b'{"ready": true}')

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(size) or b"{}")
                tensor = request["inputs"][0]
                rows = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
                n, mode = len(rows), endpoint.mode
                endpoint.requests += 1
                if endpoint.lag_s:  # every answer this much later (a slow but correct server)
                    endpoint.stopping.wait(endpoint.lag_s)
                if mode == "good":
                    assert endpoint.model is not None
                    labels = endpoint.model.predict(rows)
                    self._send(200, json.dumps({"model_name": "digits", "outputs": [
                        {"name": "label", "shape": [n], "datatype": "INT64", "data": labels}]}).encode())
                elif mode == "http500":
                    self._send(500, b'{"error": "internal error: model not loaded"}')
                elif mode == "schema":
                    self._send(200, json.dumps({"predictions": [0] * n}).encode())
                elif mode == "shape":
                    self._send(200, json.dumps({"outputs": [{"name": "label", "data": [0] * (n - 1)}]}).encode())
                elif mode == "huge":
                    self._send(200, b'{"outputs": [{"name": "label", "data": [' + b"0, " * 2_000_000 + b"0]}]}")
                elif mode == "slow":
                    endpoint.stopping.wait(endpoint.delay_s)
                    self._send(200, json.dumps({"outputs": [{"name": "label", "data": [0] * n}]}).encode())
                elif mode == "trickle":
                    body = json.dumps({"outputs": [{"name": "label", "data": [0] * n}]}).encode()
                    self.send_response(200)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    for byte in body:
                        if endpoint.stopping.wait(0.5):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                else:  # garbage
                    self._send(200, b"<html>oops</html>")

        return Handler

    def start(self) -> Endpoint:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago): connections are refused."""
    return f"http://{HOST}:{free_port()}"

