"""The digits KServe predictor, observed: the kit's metrics, structured request logs, fault injection, drift.

``python -m kit.observe.model --model-dir DIR --port PORT --control DIR`` serves the same
:func:`kit.serve.kserve_model.make_model_class` model on loopback, and adds, on KServe's own ``/metrics``
(which exports prometheus_client's default registry, next to KServe's ``request_predict_seconds``):

* ``digits_requests_total{code}`` and ``digits_request_duration_seconds`` (histogram): what the SLOs
  (:mod:`kit.observe.rules`) are computed from, measured around the whole model call;
* ``digits_predicted_class_total{label}``: the application metric (which digits the model answers);
* ``digits_input_drift_score``: :class:`kit.observe.drift.DriftWindow` over the last rows, computed at
  each scrape.

Every request writes one JSON line to ``<control>/requests.jsonl`` with its ``x-request-id`` (the one
the ingress set, or a new one), code, latency and rows; the id is echoed in the response header.
``<control>/fault.json`` (:func:`set_fault`) injects a fault: ``{"delay_s": 0.2}`` makes this replica slow,
``{"error_rate": 0.5}`` fails that fraction of requests with HTTP 500.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kit.serve.process import ServerProcess, free_port

#: Latency buckets (seconds): fine around the 100 ms latency SLO threshold.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FAULT_FILE = "fault.json"
REQUEST_LOG = "requests.jsonl"


def set_fault(control: str | Path, delay_s: float = 0.0, error_rate: float = 0.0) -> None:
    """Inject (or with no arguments clear) a fault in the server reading ``control``."""
    if not 0 <= error_rate <= 1 or delay_s < 0:
        raise ValueError("delay_s >= 0 and 0 <= error_rate <= 1")
    (Path(control) / FAULT_FILE).write_text(json.dumps({"delay_s": delay_s, "error_rate": error_rate}))


def request_log(control: str | Path, request_id: str | None = None) -> list[dict]:
    """The structured request log (every line, or those of one ``request_id``)."""
    path = Path(control) / REQUEST_LOG
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return [line for line in lines if request_id is None or line["request_id"] == request_id]


def _log(path: Path, line: dict) -> None:
    with path.open("a") as log:
        log.write(json.dumps({"ts": round(time.time(), 3), **line}) + "\n")


class RequestMetrics:
    """ASGI middleware around every predict/infer request: the request id (the ingress's ``x-request-id``, or a
    new one) is put in the headers the model receives and echoed in the response; the HTTP code and the
    latency of the whole request go to ``digits_requests_total`` / ``digits_request_duration_seconds`` and
    to one ``"stage": "ingress"`` log line."""

    def __init__(self, app, log_path: Path) -> None:
        from prometheus_client import Counter, Histogram

        self.app, self.log_path = app, log_path
        self.requests = Counter("digits_requests_total", "digits predict requests by HTTP code", ["code"])
        self.duration = Histogram("digits_request_duration_seconds", "digits predict latency (whole request)",
                                  buckets=BUCKETS)
        for code in ("200", "400", "422", "500"):  # every series exists from the start: rate() needs two samples
            self.requests.labels(code)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path.endswith(":predict") or path.endswith("/infer")):
            return await self.app(scope, receive, send)
        import uuid

        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"x-request-id"]
        given = dict(scope.get("headers", [])).get(b"x-request-id")
        request_id = given.decode("latin-1") if given else uuid.uuid4().hex[:16]
        scope = dict(scope, headers=[*headers, (b"x-request-id", request_id.encode("latin-1"))])
        status: dict[str, int] = {"code": 500}
        began = time.perf_counter()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], 1
                message = dict(message, headers=[*message.get("headers", []),
                                                 (b"x-request-id", request_id.encode("latin-1"))])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:  # KServe's 500 handler sits outside this middleware: answer here, with the id
            if "started" in status:
                raise
            from kit.serve import api

            status["code"] = 500
            await api.error(500, f"internal error ({type(error).__name__}); see the server log")(
                scope, receive, send_with_id)
            print(f"request {request_id}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        finally:
            seconds = time.perf_counter() - began
            self.requests.labels(str(status["code"])).inc()
            self.duration.observe(seconds)
            _log(self.log_path, {"stage": "ingress", "request_id": request_id, "path": path,
                                 "code": status["code"], "latency_ms": round(seconds * 1e3, 2)})


def make_observed_class(control: Path):
    """The observed ``kserve.Model`` (built on use: importing this module does not import KServe)."""
    import asyncio
    import random
    from collections import Counter as Counter_

    from prometheus_client import Counter, Gauge

    from kit.observe.drift import DriftWindow, reference_rows
    from kit.serve.kserve_model import make_model_class

    predicted = Counter("digits_predicted_class_total", "predictions by predicted digit", ["label"])
    window = DriftWindow(reference_rows())
    Gauge("digits_input_drift_score", "mean per-pixel KS statistic, last inputs vs training data").set_function(
        window.score)
    fault_path, log_path = control / FAULT_FILE, control / REQUEST_LOG

    class ObservedDigits(make_model_class()):  # type: ignore[misc]
        fault: dict | None = None
        fault_mtime = 0.0

        def _read_fault(self) -> dict:
            try:
                mtime = fault_path.stat().st_mtime
            except FileNotFoundError:
                return {}
            if self.fault is None or mtime != self.fault_mtime:
                self.fault, self.fault_mtime = json.loads(fault_path.read_text() or "{}"), mtime
            return self.fault

        def preprocess(self, payload, headers=None):
            array = super().preprocess(payload, headers)
            window.add(array)
            return array

        def predict(self, array, headers=None):
            response = super().predict(array, headers)
            for label in response["predictions"]:
                predicted.labels(str(label)).inc()
            return response

        async def __call__(self, body, headers=None, verb=None):
            request_id = (headers or {}).get("x-request-id", "")
            fault = self._read_fault()
            if fault.get("delay_s"):
                await asyncio.sleep(float(fault["delay_s"]))
            if random.random() < float(fault.get("error_rate", 0)):
                _log(log_path, {"stage": "model", "request_id": request_id, "error": "injected fault"})
                raise RuntimeError("injected fault: this replica fails requests (kit.observe.model.set_fault)")
            response, response_headers = await super().__call__(body, headers, verb)
            labels = response.get("predictions", []) if isinstance(response, dict) else []
            _log(log_path, {"stage": "model", "request_id": request_id, "model": self.name, "rows": len(labels),
                            "predicted": dict(sorted(Counter_(labels).items()))})
            return response, response_headers

    return ObservedDigits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kit.observe.model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control", required=True, help="directory of fault.json and requests.jsonl")
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported
    import kserve
    import kserve.model_server

    from kit.serve.kserve_model import _bind_loopback, _install_kit_http_rules

    _bind_loopback("127.0.0.1")
    _install_kit_http_rules(kserve.model_server.app)
    kserve.model_server.app.add_middleware(RequestMetrics, log_path=Path(args.control) / REQUEST_LOG)
    model = make_observed_class(Path(args.control))(args.model_dir)
    model.load()
    kserve.ModelServer(http_port=args.port, workers=1, enable_grpc=False, enable_latency_logging=False,
                       grace_period=2).start([model])


def observed_server(model_dir: str | Path, control: str | Path, port: int | None = None) -> ServerProcess:
    """The observed KServe server as a loopback child process (not started: ``start()`` or ``with``)."""
    port = port or free_port()
    Path(control).mkdir(parents=True, exist_ok=True)
    return ServerProcess("kit.observe.model", ["--model-dir", str(model_dir), "--port", str(port),
                                               "--control", str(control)],
                         port=port, ready_path="/v2/health/ready", name="kserve-observed")


if __name__ == "__main__":
    main()
