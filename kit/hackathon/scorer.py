"""The scorer: measure a team's submission against labels only the organiser holds, and record it.

A submission is a serving artifact (a model directory in the kit's format) or a live endpoint speaking
the Open Inference Protocol v2 (``POST /v2/models/<name>/infer``, what :mod:`kit.serve.kserve_model`
answers). The scorer

1. checks an artifact's hash and serves it itself with the kit's KServe server in a child process
   (:func:`kit.serve.kserve_model.kserve_server`), so its cost can be measured;
2. sends the whole hidden test set and compares the answers with the labels: accuracy overall and on
   the shifted slice;
3. drives a fixed, seeded load (:mod:`kit.serve.loadgen`): p95 latency, and for an artifact the server
   process's CPU-seconds per 1,000 requests (an endpoint's cost cannot be seen from outside: not scored);
4. turns the figures into a score with the event's weights and budget (:mod:`kit.hackathon.scoring`).

Whatever a submission does (refuses connections, hangs, answers 5xx, the wrong schema or shapes, a huge or
a trickling body, an artifact that does not load or fails its hash) it is recorded as failed with a reason
the team can act on; the scorer itself goes on. Nothing a team reports about itself is used.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

from kit.errors import KitError
from kit.hackathon import challenge, scoring
from kit.hackathon.store import Store, Submission, worker_id

MODEL_NAME = "digits"
#: PSS of one KServe server serving an artifact (measured: about 360 MiB), for the memory-aware pool.
SERVER_MIB = 400


class SubmissionFailed(KitError):
    """What is wrong with a submission, in words the team can act on (``fix``)."""


@dataclass(frozen=True)
class ScorerConfig:
    """Everything that decides a score: the same config, the same hidden set, the same submission -> the same
    accuracy and the same load (latency and cost are measured, so they move with the machine's load)."""

    hidden_dir: str
    weights: scoring.ScoringWeights = field(default_factory=scoring.ScoringWeights)
    budget: scoring.ScoringBudget = field(default_factory=scoring.ScoringBudget)
    model_name: str = MODEL_NAME
    batch_rows: int = 64  # rows per request of the accuracy pass
    load_requests: int = 200  # the fixed load: this many requests ...
    load_concurrency: int = 4  # ... from this many closed-loop clients ...
    load_rows: int = 8  # ... each carrying these rows (chosen with the seed)
    seed: int = 0
    request_timeout_s: float = 5.0  # one request, from sending to the last byte
    max_response_bytes: int = 256 * 1024  # one answer's body
    server_start_s: float = 60.0

    @classmethod
    def smoke(cls, hidden_dir: str, **overrides) -> ScorerConfig:
        """A lighter load for rehearsals and tests (the same hidden set)."""
        return cls(hidden_dir=hidden_dir, **{"load_requests": 80, "load_concurrency": 2, **overrides})


def infer_url(endpoint: str, model_name: str = MODEL_NAME) -> str:
    """``http://host:port`` -> its v2 infer URL; a URL already ending in ``/infer`` is kept."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/infer") else f"{endpoint}/v2/models/{model_name}/infer"


def v2_body(rows: np.ndarray) -> dict:
    return {"inputs": [{"name": "pixels", "shape": [int(rows.shape[0]), int(rows.shape[1])], "datatype": "FP32",
                        "data": rows.astype(np.float32).ravel().tolist()}]}


def _read_capped(response: httpx.Response, cap: int, deadline: float, url: str) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise SubmissionFailed(f"the answer from {url} is over {cap // 1024} KiB",
                                   fix='answer {"outputs": [{"name": "label", "data": [labels]}]}, nothing more')
        if time.monotonic() > deadline:
            raise SubmissionFailed(f"the answer from {url} took over the limit to arrive (a slow or trickling body)",
                                   fix="answer within the request time limit; check the server is not overloaded")
        chunks.append(chunk)
    return b"".join(chunks)


def infer(client: httpx.Client, url: str, rows: np.ndarray, config: ScorerConfig) -> list[int]:
    """One v2 request; the labels, or :class:`SubmissionFailed` saying what the server did wrong."""
    n = len(rows)
    deadline = time.monotonic() + config.request_timeout_s
    try:
        with client.stream("POST", url, json=v2_body(rows), timeout=config.request_timeout_s) as response:
            body = _read_capped(response, config.max_response_bytes, deadline, url)
            status = response.status_code
    except httpx.ConnectError as error:
        raise SubmissionFailed(f"cannot connect to {url} ({type(error).__name__})",
                               fix="is the server running, and reachable from the scorer at this URL?") from None
    except httpx.TimeoutException:
        raise SubmissionFailed(f"no complete answer from {url} within {config.request_timeout_s:g} s "
                               f"for a batch of {n} rows",
                               fix="answer faster: a smaller model, or more replicas") from None
    except httpx.HTTPError as error:
        raise SubmissionFailed(f"HTTP error talking to {url}: {type(error).__name__}: {str(error)[:120]}",
                               fix="check the server speaks HTTP/1.1 and answers each request") from None
    text = body[:200].decode(errors="replace")
    if status >= 500:
        raise SubmissionFailed(f"HTTP {status} from {url} for a valid batch of {n} rows: {text}",
                               fix="read your server's log: it failed on a well-formed request")
    if status != 200:
        raise SubmissionFailed(f"HTTP {status} from {url} for a valid v2 request of shape [{n}, 64]: {text}",
                               fix="accept {\"inputs\": [{\"name\": \"pixels\", \"shape\": [n, 64], "
                                   "\"datatype\": \"FP32\", \"data\": [...]}]} at /v2/models/digits/infer")
    return parse_labels(body, n, url)


def parse_labels(body: bytes, n: int, url: str = "the endpoint") -> list[int]:
    """The labels of a v2 answer, checked: one output whose data is ``n`` class labels 0..9."""
    fix = "answer {\"outputs\": [{\"name\": \"label\", \"shape\": [n], \"datatype\": \"INT64\", \"data\": [...]}]}"
    try:
        payload = json.loads(body)
    except ValueError:
        raise SubmissionFailed(f"the answer from {url} is not JSON: {body[:80]!r}", fix=fix) from None
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], dict):
        keys = sorted(payload)[:5] if isinstance(payload, dict) else type(payload).__name__
        raise SubmissionFailed(f"the answer from {url} is not a v2 inference response (no `outputs` list; "
                               f"got {keys})", fix=fix)
    data = outputs[0].get("data")
    if not isinstance(data, list):
        raise SubmissionFailed(f"`outputs[0].data` from {url} is not a list", fix=fix)
    flat = np.asarray(data, dtype=object).ravel().tolist() if data and isinstance(data[0], list) else data
    if len(flat) != n:
        raise SubmissionFailed(f"{len(flat)} labels from {url} for a batch of {n} rows",
                               fix="one label per row; " + fix)
    labels = []
    for value in flat:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() \
                or not 0 <= value <= 9:
            raise SubmissionFailed(f"label {value!r} from {url} is not a class 0..9", fix="answer the class index")
        labels.append(int(value))
    return labels


def accuracy(url: str, hidden: dict[str, np.ndarray], config: ScorerConfig) -> tuple[float, float]:
    """Overall and shifted-slice accuracy of the endpoint on the hidden test set (sent in fixed batches)."""
    x, y, shifted = hidden["x"], hidden["y"], hidden["shifted"]
    predicted: list[int] = []
    with httpx.Client() as client:
        for start in range(0, len(x), config.batch_rows):
            predicted += infer(client, url, x[start:start + config.batch_rows], config)
    right = np.asarray(predicted) == y
    return float(right.mean()), float(right[shifted].mean())


def load_body(hidden: dict[str, np.ndarray], config: ScorerConfig) -> dict:
    rows = np.random.default_rng(config.seed).choice(len(hidden["x"]), size=config.load_rows, replace=False)
    return v2_body(hidden["x"][np.sort(rows)])


def latency(url: str, hidden: dict[str, np.ndarray], config: ScorerConfig,
            cpu_seconds: Callable[[], float] | None = None) -> tuple[float, float | None, dict]:
    """p95 (ms) under the fixed load, CPU-seconds per 1,000 requests (when ``cpu_seconds`` reads the server's
    CPU time), and the load's summary."""
    from kit.serve.loadgen import run_load

    before = cpu_seconds() if cpu_seconds else 0.0
    result = run_load(url, load_body(hidden, config), concurrency=config.load_concurrency, duration_s=None,
                      requests=config.load_requests, timeout_s=config.request_timeout_s, label="scorer")
    cost = (cpu_seconds() - before) * 1000 / max(result.ok, 1) if cpu_seconds else None
    if result.errors:
        statuses = ", ".join(f"{k}: {v}" for k, v in result.summary()["statuses"].items())
        raise SubmissionFailed(f"{result.errors} of {config.load_requests} requests failed under the fixed load "
                               f"of {config.load_concurrency} clients ({statuses})",
                               fix="the server must answer every request under concurrent load")
    return round(result.p95 * 1e3, 1), None if cost is None else round(cost, 2), result.summary()


def process_cpu_seconds(pid: int) -> Callable[[], float]:
    """A reader of the CPU time (user + system) of process ``pid`` and its children."""
    import psutil

    process = psutil.Process(pid)

    def read() -> float:
        total = 0.0
        for p in [process, *process.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
        return total

    return read


def measure(submission: Submission, hidden: dict[str, np.ndarray], config: ScorerConfig) -> dict:
    """The measured figures of a submission (artifact: served here; endpoint: as it is)."""
    if submission.kind == "endpoint":
        url = infer_url(submission.target, config.model_name)
        acc, shifted = accuracy(url, hidden, config)
        p95, _, load = latency(url, hidden, config)
        return {"accuracy": acc, "shifted_accuracy": shifted, "p95_ms": p95, "cpu_s_per_1k": None, "load": load,
                "cost_note": "not measurable for an endpoint (the scorer cannot see its CPU): scored without it"}
    from kit.serve.kserve_model import kserve_server
    from kit.serve.process import ServerNotReady
    from kit.train.artifact import ArtifactError, verify

    try:
        metadata = verify(submission.target)
    except ArtifactError as error:
        raise SubmissionFailed(f"the artifact does not load: {error.message}", fix=error.fix) from None
    if tuple(metadata.input_shape) != (64,) or len(metadata.classes) != 10:
        raise SubmissionFailed(f"the artifact takes input {list(metadata.input_shape)} and has "
                               f"{len(metadata.classes)} classes; the challenge is 64 pixels, 10 classes",
                               fix="train on the challenge data (split.pt) with the kit's launchers")
    server = kserve_server(submission.target, name=config.model_name)
    try:
        try:
            server.start(timeout=config.server_start_s)
        except ServerNotReady as error:
            raise SubmissionFailed(f"the artifact does not serve: {error.message[-600:]}",
                                   fix="serve it yourself first: `python -m kit serve --server kserve --model-dir "
                                       "DIR`") from None
        url = infer_url(server.url, config.model_name)
        acc, shifted = accuracy(url, hidden, config)
        assert server.process is not None
        p95, cost, load = latency(url, hidden, config, process_cpu_seconds(server.process.pid))
        return {"accuracy": acc, "shifted_accuracy": shifted, "p95_ms": p95, "cpu_s_per_1k": cost, "load": load,
                "model": {"version": metadata.version, "train_config": metadata.train_config}}
    finally:
        server.stop()


@dataclass
class Outcome:
    submission_id: int
    team: str
    status: str
    score: float | None = None
    reason: str | None = None
    figures: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def score_one(store: Store, submission: Submission, hidden: dict[str, np.ndarray], config: ScorerConfig,
              worker: str) -> Outcome:
    """Measure and record one claimed submission; never raises for anything the submission does."""
    try:
        figures = measure(submission, hidden, config)
        value = scoring.score(scoring.Measurement(figures["accuracy"], figures["shifted_accuracy"],
                                                  figures["p95_ms"], figures["cpu_s_per_1k"]),
                              config.weights, config.budget)
    except KitError as error:  # SubmissionFailed, OverBudget: the team's to fix
        reason = error.explain()
        store.fail(submission.id, worker, reason)
        return Outcome(submission.id, submission.team, "failed", reason=reason)
    except Exception as error:  # a case the scorer did not foresee: recorded, and the next one is scored
        reason = f"the scorer could not measure this submission ({type(error).__name__}: {str(error)[:200]})"
        store.fail(submission.id, worker, reason)
        return Outcome(submission.id, submission.team, "failed", reason=reason)
    details = {k: figures[k] for k in ("load", "cost_note", "model") if k in figures}
    details["weights"], details["seed"] = config.weights.as_dict(), config.seed
    store.finish(submission.id, worker, score=value, accuracy=figures["accuracy"],
                 shifted_accuracy=figures["shifted_accuracy"], p95_ms=figures["p95_ms"],
                 cpu_s_per_1k=figures["cpu_s_per_1k"], details=details)
    return Outcome(submission.id, submission.team, "scored", score=value,
                   figures={k: figures[k] for k in ("accuracy", "shifted_accuracy", "p95_ms", "cpu_s_per_1k")})


SERVER_MODULE = "kit.serve.kserve_model"


def stop_orphaned_servers(model_dir: str) -> list[int]:
    """Stop model servers a killed scorer left behind for ``model_dir``: a KServe process of the kit serving
    exactly that directory whose parent scorer is gone (it was re-parented). Returns their pids."""
    import psutil

    stopped = []
    for process in psutil.process_iter(["pid", "cmdline", "ppid"]):
        cmdline = process.info["cmdline"] or []
        if SERVER_MODULE not in cmdline or "--model-dir" not in cmdline:
            continue
        at = cmdline.index("--model-dir") + 1
        if at >= len(cmdline) or cmdline[at] != model_dir:
            continue
        try:
            parent = psutil.Process(process.info["ppid"])
            if "kit" in " ".join(parent.cmdline()) and parent.pid != 1:
                continue  # a live scorer (or a learner's notebook) is using it
        except psutil.Error:
            pass
        try:
            process.kill()
            process.wait(10)
            stopped.append(process.info["pid"])
        except psutil.Error:
            continue
    return stopped


def plan_workers(requested: int, memory_budget_mib: float | None = None) -> int:
    """Workers for the pool: at most ``requested``, the CPU count, and as many servers as fit the memory budget
    (default: half of what the machine has available), never fewer than one."""
    import psutil

    budget = memory_budget_mib if memory_budget_mib is not None else psutil.virtual_memory().available / 2**20 / 2
    return max(1, min(requested, os.cpu_count() or 1, int(budget // SERVER_MIB)))


def drain(store: Store, config: ScorerConfig, workers: int = 1, only: int | None = None,
          on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Recover what a killed scorer left running, then score every queued submission (or only ``only``) with a
    pool of ``workers`` threads, each claiming the next one. Returns the outcomes in the order they finished."""
    hidden = challenge.load_hidden(config.hidden_dir)
    for stale in store.recover():
        submission = store.get(stale)
        if submission.kind == "artifact":
            stop_orphaned_servers(submission.target)
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        worker = f"{worker_id()}:{index}"
        while True:
            with lock:
                submission = store.claim(only, worker=worker)
            if submission is None:
                return
            outcome = score_one(store, submission, hidden, config, worker)
            with lock:
                outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
            if only is not None:
                return

    threads = [threading.Thread(target=work, args=(i,), name=f"kit-scorer-{i}") for i in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def describe(outcome: Outcome) -> str:
    if outcome.status != "scored":
        return f"{outcome.team}: FAILED (submission {outcome.submission_id})\n  {outcome.reason}"
    f = outcome.figures
    cost = "not measurable" if f.get("cpu_s_per_1k") is None else f"{f['cpu_s_per_1k']:.2f} CPU-s per 1,000 requests"
    return (f"{outcome.team}: score {outcome.score:.2f} (submission {outcome.submission_id}): accuracy "
            f"{f['accuracy']:.3f}, shifted slice {f['shifted_accuracy']:.3f}, p95 {f['p95_ms']:.1f} ms, cost {cost}")


def default_paths(directory: str | Path) -> tuple[Path, Path]:
    """The results database and the hidden-set directory under an organiser's directory."""
    root = Path(directory)
    return root / "results.sqlite", root / "hidden"

