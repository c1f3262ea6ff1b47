"""The same predict function behind five servers, measured in one run (``python -m kit bench serve``).

Servers: plain FastAPI on one uvicorn process (the baseline), Ray Serve unbatched and
batched, KServe v1 and v2. All call :class:`kit.serve.predictor.Predictor`; the load
generator, payload and concurrency are the same for all, and the runs alternate
(round-robin, ``repeat`` rounds) so that a noisy neighbour hits everyone alike.

Two model configurations:

- ``small`` (64-128-128-10): a forward pass costs ~0.05 ms, so throughput measures the
  *server's* per-request overhead. Baseline vs Ray Serve vs KServe is compared here.
- ``wide`` (64-4096-4096-10, 67 MB of weights): one row costs ~6 ms because the whole
  weight matrix streams from memory for each call; 16 rows cost barely more per call.
  That is where dynamic batching matters, so batched vs unbatched is compared here.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from kit.bench import machine
from kit.serve import loadgen, predictor

SMALL = 128  # TrainConfig.hidden: 64-128-128-10
WIDE = 4096  # 64-4096-4096-10
CONCURRENCY = 16


def train_model(model_dir: Path, hidden: int, epochs: int) -> None:
    """Train the digits MLP with the kit's one training function; the artifact lands in ``model_dir``."""
    from kit.train import launchers

    launchers.run_in_process({"dataset": "digits", "hidden": hidden, "epochs": epochs, "model_dir": str(model_dir)})


def _targets(small_dir: Path, wide_dir: Path, stack) -> dict[str, tuple[str, dict]]:
    """label -> (url, body) for every server, started here and stopped by ``stack``."""
    from kit.config.serve import ServeConfig
    from kit.machine import local_ray as raylocal
    from kit.serve import kserve_model, rayserve
    from kit.serve.process import baseline_server

    v1 = {"instances": predictor.sample_instances(1)}
    v2 = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": v1["instances"]}]}
    baseline = stack.enter_context(baseline_server(small_dir))
    kserve = stack.enter_context(kserve_model.kserve_server(small_dir))
    raylocal.start()
    stack.callback(raylocal.stop)
    stack.callback(rayserve.shutdown)
    apps = {}
    for name, model_dir, batch in (("small-unbatched", small_dir, 1), ("small-batched", small_dir, 16),
                                   ("wide-unbatched", wide_dir, 1), ("wide-batched", wide_dir, 16)):
        apps[name] = rayserve.deploy(ServeConfig(model_dir=str(model_dir), name=name, route_prefix=f"/{name}",
                                                 max_batch_size=batch, max_ongoing_requests=64,
                                                 max_queued_requests=256))
    return {
        "FastAPI/uvicorn baseline (small)": (f"{baseline.url}/v1/models/digits:predict", v1),
        "Ray Serve unbatched (small)": (apps["small-unbatched"].predict_url, v1),
        "Ray Serve batched (small)": (apps["small-batched"].predict_url, v1),
        "KServe v1 (small)": (f"{kserve.url}/v1/models/digits:predict", v1),
        "KServe v2 (small)": (f"{kserve.url}/v2/models/digits/infer", v2),
        "Ray Serve unbatched (wide)": (apps["wide-unbatched"].predict_url, v1),
        "Ray Serve batched (wide)": (apps["wide-batched"].predict_url, v1),
    }


def bench_serve(repeat: int = 2, seconds: float = 4.0, concurrency: int = CONCURRENCY) -> dict:
    """Throughput and latency of every server, ``repeat`` alternating rounds; medians and goal ratios."""
    import contextlib

    began = time.perf_counter()
    runs: dict[str, list[loadgen.LoadResult]] = {}
    with tempfile.TemporaryDirectory(prefix="kit-bench-serve-") as tmp, contextlib.ExitStack() as stack:
        small_dir, wide_dir = Path(tmp) / "small", Path(tmp) / "wide"
        train_model(small_dir, hidden=SMALL, epochs=10)
        train_model(wide_dir, hidden=WIDE, epochs=1)
        targets = _targets(small_dir, wide_dir, stack)
        for url, body in targets.values():  # warm-up: first requests pay for lazy imports
            loadgen.run_load(url, body, concurrency=4, duration_s=0.5)
        for _ in range(repeat):
            for label, (url, body) in targets.items():
                result = loadgen.run_load(url, body, concurrency=concurrency, duration_s=seconds, label=label)
                runs.setdefault(label, []).append(result)
    rows = {label: _median_row(results) for label, results in runs.items()}
    base = rows["FastAPI/uvicorn baseline (small)"]["throughput_rps"]

    def ratio(a: str, b: float) -> float:
        return round(rows[a]["throughput_rps"] / b, 2) if b else float("nan")

    goals = {
        "Ray Serve / baseline (goal >= 0.5)": ratio("Ray Serve unbatched (small)", base),
        "Ray Serve batched / unbatched, wide model (goal >= 2)":
            ratio("Ray Serve batched (wide)", rows["Ray Serve unbatched (wide)"]["throughput_rps"]),
        "KServe v1 / baseline (goal >= 0.8)": ratio("KServe v1 (small)", base),
        "KServe v2 / baseline (goal >= 0.8)": ratio("KServe v2 (small)", base),
    }
    return {"machine": machine(), "concurrency": concurrency, "seconds_per_run": seconds, "repeat": repeat,
            "rows": rows, "goals": goals, "wall_seconds": round(time.perf_counter() - began, 1)}


def format_serve(data: dict) -> str:
    """The figures as the table the command prints."""
    lines = [f"machine: {data['machine']}",
             f"closed loop, {data['concurrency']} concurrent clients, {data['seconds_per_run']:g} s per run, "
             f"{data['repeat']} alternating rounds, 1 row per request; medians",
             markdown_table(data["rows"]), ""]
    lines += [f"{name}: {value}" for name, value in data["goals"].items()]
    lines.append(f"wall time: {data['wall_seconds']} s")
    return "\n".join(lines)


def _median_row(results: list[loadgen.LoadResult]) -> dict:
    summaries = [r.summary() for r in results]
    row = {key: statistics.median(s[key] for s in summaries)
           for key in ("throughput_rps", "p50_ms", "p95_ms", "p99_ms")}
    row["errors"] = sum(s["errors"] for s in summaries)
    row["runs_rps"] = [s["throughput_rps"] for s in summaries]
    return row


def markdown_table(rows: dict[str, dict]) -> str:
    lines = ["| server | req/s | p50 ms | p95 ms | p99 ms | errors |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, row in rows.items():
        lines.append(f"| {label} | {row['throughput_rps']:.0f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['errors']} |")
    return "\n".join(lines)
