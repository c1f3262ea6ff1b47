"""The same predict function behind every server, measured in one run (``python -m kit bench serve``).

Servers: plain FastAPI on one uvicorn process (the baseline); Ray Serve in two shapes, *two-hop*
(proxy -> ingress deployment -> model deployment, the stage 07 app) and *one-hop* (proxy -> one
deployment that is the ingress and the model), unbatched and batched; a ``DeploymentHandle`` called
from Python (no HTTP at all); KServe v1 and v2. All call :class:`kit.serve.predictor.Predictor`;
the load generator, payload and concurrency are the same for all, and the runs alternate
(round-robin, ``repeat`` rounds) so that a noisy neighbour hits everyone alike.

Two models, both trained here by the kit's one training function:

- ``digits`` (MLP 64-128-128-10): a forward pass costs ~0.05 ms, so throughput measures the
  *server's* per-request cost. Baseline vs Ray Serve vs KServe is compared here.
- ``heavy`` (:class:`kit.train.models.RecurrentMLP`, hidden 128, one block run 1024 times per call:
  ~5,000 small operations, each with a fixed cost whatever the batch): one row costs tens of ms,
  sixteen rows barely more. That is where dynamic batching pays, so batched vs unbatched is
  compared on both models side by side.

:func:`explain` says, from an in-process micro-measurement of each model's forward pass at batch 1
and batch 16 and the HTTP path's measured cost, how much batching *can* win, next to what it did.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kit.bench import machine
from kit.serve import loadgen, predictor, speed

CONCURRENCY = 16
BATCH = 16  # @serve.batch max_batch_size of the batched apps, and the micro-measurement's batch
#: Training configurations (the kit's TrainConfig fields). The heavy model trains on 128 synthetic rows, one
#: epoch (two steps): what it costs per call is the point, not its accuracy.
MODELS = {
    "digits": {"dataset": "digits", "model": "mlp", "hidden": 128, "epochs": 10},
    "heavy": {"dataset": "synthetic", "samples": 160, "model": "recurrent", "hidden": 128, "epochs": 1,
              "batch_size": 64},
}

BASELINE = "FastAPI/uvicorn baseline (digits)"
TWO_HOP = "Ray Serve two-hop, unbatched (digits)"
ONE_HOP = "Ray Serve one-hop, unbatched (digits)"
ONE_HOP_BATCHED = "Ray Serve one-hop, batched (digits)"
HANDLE = "Ray Serve DeploymentHandle, no HTTP (digits)"
KSERVE_V1 = "KServe v1 (digits)"
KSERVE_V2 = "KServe v2 (digits)"
HEAVY = "Ray Serve one-hop, unbatched (heavy)"
HEAVY_BATCHED = "Ray Serve one-hop, batched (heavy)"
#: model -> (unbatched row, batched row)
BATCHING_PAIRS = {"digits": (ONE_HOP, ONE_HOP_BATCHED), "heavy": (HEAVY, HEAVY_BATCHED)}
#: Below this best-case gain, batching "cannot help".
HELPS = 1.2

Run = Callable[[str, float, int], loadgen.LoadResult]  # (label, seconds, concurrency) -> result


def train_model(model_dir: Path, config: dict) -> None:
    """Train with the kit's one training function; the artifact lands in ``model_dir``."""
    from kit.train import launchers

    launchers.run_in_process({**config, "model_dir": str(model_dir)})


def _http(url: str, body: dict) -> Run:
    return lambda label, seconds, concurrency: loadgen.run_load(url, body, concurrency=concurrency,
                                                                duration_s=seconds, label=label)


def _targets(dirs: dict[str, Path], stack: contextlib.ExitStack) -> dict[str, Run]:
    """label -> load run for every server, started here and stopped by ``stack``."""
    import numpy as np
    from ray import serve

    from kit.config.serve import ServeConfig
    from kit.machine import local_ray as raylocal
    from kit.serve import kserve_model, rayserve
    from kit.serve.process import baseline_server

    v1 = {"instances": predictor.sample_instances(1)}
    v2 = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": v1["instances"]}]}
    baseline = stack.enter_context(baseline_server(dirs["digits"]))
    kserve = stack.enter_context(kserve_model.kserve_server(dirs["digits"]))
    raylocal.start()
    stack.callback(raylocal.stop)
    stack.callback(rayserve.shutdown)
    urls = {}
    for label, model, batch, one_hop in ((TWO_HOP, "digits", 1, False), (ONE_HOP, "digits", 1, True),
                                         (ONE_HOP_BATCHED, "digits", BATCH, True), (HEAVY, "heavy", 1, True),
                                         (HEAVY_BATCHED, "heavy", BATCH, True)):
        name = f"{model}-{'one' if one_hop else 'two'}-hop-b{batch}"
        config = ServeConfig(model_dir=str(dirs[model]), name=name, route_prefix=f"/{name}", max_batch_size=batch,
                             max_ongoing_requests=64, max_queued_requests=256)
        urls[label] = rayserve.deploy(config, one_hop=one_hop).predict_url
    handle = serve.get_app_handle("digits-one-hop-b1")
    rows = np.asarray(v1["instances"], dtype=np.float32)
    return {
        BASELINE: _http(f"{baseline.url}/v1/models/digits:predict", v1),
        TWO_HOP: _http(urls[TWO_HOP], v1),
        ONE_HOP: _http(urls[ONE_HOP], v1),
        ONE_HOP_BATCHED: _http(urls[ONE_HOP_BATCHED], v1),
        HANDLE: lambda label, seconds, concurrency: loadgen.run_calls(
            lambda: handle.predict.remote(rows), concurrency=concurrency, duration_s=seconds, label=label),
        KSERVE_V1: _http(f"{kserve.url}/v1/models/digits:predict", v1),
        KSERVE_V2: _http(f"{kserve.url}/v2/models/digits/infer", v2),
        HEAVY: _http(urls[HEAVY], v1),
        HEAVY_BATCHED: _http(urls[HEAVY_BATCHED], v1),
    }


def bench_serve(repeat: int = 2, seconds: float = 4.0, concurrency: int = CONCURRENCY) -> dict:
    """Throughput and latency of every server, ``repeat`` alternating rounds; medians, ratios, explanations."""
    began = time.perf_counter()
    runs: dict[str, list[loadgen.LoadResult]] = {}
    with tempfile.TemporaryDirectory(prefix="kit-bench-serve-") as tmp, contextlib.ExitStack() as stack:
        dirs = {name: Path(tmp) / name for name in MODELS}
        for name, config in MODELS.items():
            train_model(dirs[name], config)
        # before any server starts, so the model has the CPU to itself as far as this run goes
        forward = {name: speed.forward_ms(path, (1, BATCH)) for name, path in dirs.items()}
        targets = _targets(dirs, stack)
        for label, run in targets.items():  # warm-up: first requests pay for lazy imports
            run(label, 0.5, 4)
        for _ in range(repeat):
            for label, run in targets.items():
                runs.setdefault(label, []).append(run(label, seconds, concurrency))
    rows = {label: _median_row(results) for label, results in runs.items()}
    return {"machine": machine(), "concurrency": concurrency, "seconds_per_run": seconds, "repeat": repeat,
            "batch": BATCH, "models": MODELS, **summarize(rows, forward),
            "wall_seconds": round(time.perf_counter() - began, 1)}


def summarize(rows: dict[str, dict], forward: dict[str, dict[int, float]], batch: int = BATCH) -> dict:
    """Goal ratios and the batching explanation of each model, from the rows and the forward-pass times."""
    def rps(label: str) -> float:
        return rows[label]["throughput_rps"]

    def ratio(a: str, b: str) -> float:
        return round(rps(a) / rps(b), 2) if rps(b) else float("nan")

    goals = {
        "Ray Serve two-hop / baseline (goal >= 0.5)": ratio(TWO_HOP, BASELINE),
        "Ray Serve one-hop / baseline (goal >= 0.5)": ratio(ONE_HOP, BASELINE),
        "Ray Serve handle, no HTTP / baseline": ratio(HANDLE, BASELINE),
        "batched / unbatched, digits model": ratio(ONE_HOP_BATCHED, ONE_HOP),
        "batched / unbatched, heavy model (goal >= 2)": ratio(HEAVY_BATCHED, HEAVY),
        "KServe v1 / baseline (goal >= 0.8)": ratio(KSERVE_V1, BASELINE),
        "KServe v2 / baseline (goal >= 0.8)": ratio(KSERVE_V2, BASELINE),
    }
    # What a request costs beyond the model: the one-hop app's time per request with the tiny model, less the model.
    http_ms = max(0.0, per_request_ms(rps(ONE_HOP)) - forward["digits"][1])
    explanations = {}
    for name, (unbatched, batched) in BATCHING_PAIRS.items():
        explanations[name] = explain(forward[name][1], forward[name][batch], batch, http_ms,
                                     measured=ratio(batched, unbatched), p50_ms=rows[unbatched]["p50_ms"])
    hops = {label: round(per_request_ms(rps(label)), 2) for label in (BASELINE, HANDLE, ONE_HOP, TWO_HOP)}
    return {"rows": rows, "forward_ms": forward, "goals": goals, "explanations": explanations,
            "ms_per_request": hops}


def per_request_ms(throughput_rps: float) -> float:
    """Capacity cost of one request: 1000 / throughput (the whole machine's time per answer)."""
    return 1e3 / throughput_rps if throughput_rps > 0 else float("inf")


def explain(model_b1_ms: float, model_batch_ms: float, batch: int, http_ms: float, measured: float,
            p50_ms: float) -> dict:
    """How much dynamic batching can win, and whether it can help at all.

    A request costs the HTTP path (``http_ms``) plus the model (``model_b1_ms`` alone, or
    ``model_batch_ms / batch`` when it shares a forward pass). Batching shortens only the model's part,
    so the gain is at most ``(http + model_b1) / (http + model_per_row)`` when the two run one after
    the other, ``max(http, model_b1) / max(http, model_per_row)`` when they overlap on separate cores.
    """
    per_row = model_batch_ms / batch
    serial = (http_ms + model_b1_ms) / (http_ms + per_row) if http_ms + per_row > 0 else 1.0
    overlapped = max(http_ms, model_b1_ms) / max(http_ms, per_row) if max(http_ms, per_row) > 0 else 1.0
    share = model_b1_ms / (model_b1_ms + http_ms) if model_b1_ms + http_ms > 0 else 0.0
    helps = max(serial, overlapped) >= HELPS
    if helps:
        verdict = (f"batching pays: the model is {share:.0%} of a request's cost at batch 1, and batch {batch} "
                   f"cuts it from {model_b1_ms:.2f} to {per_row:.2f} ms per row")
    else:
        verdict = (f"batching cannot help: the model is {share:.1%} of a request's cost ({model_b1_ms:.2f} of "
                   f"{model_b1_ms + http_ms:.2f} ms); the rest is the HTTP path, which batching does not shorten")
    return {"model_ms_batch1": round(model_b1_ms, 3), "batch": batch, "model_ms_per_row_batched": round(per_row, 3),
            "http_path_ms": round(http_ms, 2), "model_share": round(share, 3),
            "gain_bound": [round(min(serial, overlapped), 2), round(max(serial, overlapped), 2)],
            "measured": measured, "p50_ms_unbatched": p50_ms, "batching_helps": helps, "verdict": verdict}


def format_serve(data: dict) -> str:
    """The figures as the table and explanations the command prints."""
    lines = [f"machine: {data['machine']}",
             f"closed loop, {data['concurrency']} concurrent clients, {data['seconds_per_run']:g} s per run, "
             f"{data['repeat']} alternating rounds, 1 row per request; medians",
             markdown_table(data["rows"]), ""]
    lines += [f"{name}: {value}" for name, value in data["goals"].items()]
    hops = data["ms_per_request"]
    lines += ["", "time per request (1000 / req/s): " + ", ".join(f"{k} {v} ms" for k, v in hops.items()),
              f"  the second hop (ingress -> model handle) costs {hops[TWO_HOP] - hops[ONE_HOP]:.2f} ms; "
              f"Serve's HTTP proxy and ASGI replica cost {hops[ONE_HOP] - hops[HANDLE]:.2f} ms over a bare handle call",
              "", "when batching can help (the model's forward pass timed in-process, 1 thread, as in a replica):"]
    for name, e in data["explanations"].items():
        low, high = e["gain_bound"]
        lines.append(f"  {name}: model {e['model_ms_batch1']} ms at batch 1, "
                     f"{e['model_ms_per_row_batched']} ms per row at batch {e['batch']}; HTTP path "
                     f"{e['http_path_ms']} ms per request; p50 unbatched {e['p50_ms_unbatched']} ms; "
                     f"best case {low}-{high}x, measured {e['measured']}x")
        lines.append(f"    -> {e['verdict']}")
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
