"""``python -m kit bench ray|train|serve|energy|observe-ray|llm [--json]``: benchmarks measured side by side in one run.

Each prints the machine, a table of medians and the ratios the issues set goals for (``--json``:
the figures as data), and saves ``build/bench/<name>.json`` (train also ``train.png``). Timings
are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kit.cli import EXIT_OK, command_parser


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("bench", __doc__)
    sub = parser.add_subparsers(dest="name", required=True, metavar="{ray,train,serve,energy,observe-ray,llm}")
    ray = sub.add_parser("ray", help="local Ray start-up: cold, warm and reuse")
    ray.add_argument("--repeat", type=int, default=2, help="runs per measurement (medians are reported)")
    train = sub.add_parser("train", help="Ray Train vs torchrun epoch time, launcher start-up, 1 vs 2 workers")
    train.add_argument("--quick", action="store_true", help="less data, fewer epochs, one A/B round")
    train.add_argument("--rounds", type=int, default=None, help="A/B rounds (default 2, or 1 with --quick)")
    serve = sub.add_parser("serve", help="FastAPI baseline vs Ray Serve (two-hop, one-hop, batched, handle; "
                                         "digits and a heavy model) vs KServe v1/v2")
    serve.add_argument("--repeat", type=int, default=2, help="alternating rounds (medians are reported)")
    serve.add_argument("--seconds", type=float, default=4.0, help="seconds per load run")
    energy = sub.add_parser("energy", help="energy trade-offs: 1 vs 2 training workers, fp32 vs int8, batch sizes "
                                           "(accuracy, p95, energy measured or estimated)")
    energy.add_argument("--quick", action="store_true", help="fewer epochs, shorter inference runs")
    energy.add_argument("--country", default="FRA", help="ISO 3166 alpha-3 code for the grid's carbon intensity")
    observe = sub.add_parser("observe-ray", help="Ray's and Ray Serve's metrics in a real Prometheus (PromQL: request "
                                                 "rate, p95, replicas, tasks/actors) and a failed task's state and log")
    observe.add_argument("--seconds", type=float, default=3.0, help="seconds of load on the Serve application")
    observe.add_argument("--concurrency", type=int, default=4, help="concurrent clients of the load")
    observe.add_argument("--model-dir", default=None, help="a trained digits model (default: train a tiny one)")
    llm = sub.add_parser("llm", help="vLLM on this CPU: TTFT, TPOT and tokens/s vs concurrency, KV cache, "
                                     "prefix caching (needs the LLM extra)")
    llm.add_argument("--model-dir", default=None, help="the language model (default: build/models/llm, trained "
                                                       "there first when missing)")
    llm.add_argument("--tokens", type=int, default=32, help="tokens generated per stream")
    llm.add_argument("--repeat", type=int, default=3, help="runs per concurrency (the median run is reported)")
    for command in (ray, train, serve, energy, observe, llm):
        command.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    return parser


def run(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Run the benchmark ``args.name``; return its figures and their table."""
    if args.name == "ray":
        from kit.bench import ray

        data = ray.bench_ray(args.repeat)
        return data, ray.format_ray(data)
    if args.name == "train":
        from kit.bench import train

        data = train.bench_train(quick=args.quick, rounds=args.rounds)
        return data, train.format_train(data)
    if args.name == "energy":
        from kit.bench import energy

        data = energy.bench_energy(quick=args.quick, country=args.country)
        return data, energy.format_energy(data)
    if args.name == "observe-ray":
        from kit.bench import observe_ray

        data = observe_ray.bench_observe_ray(args.seconds, args.concurrency, args.model_dir)
        return data, observe_ray.format_observe_ray(data)
    if args.name == "llm":
        from kit.bench import llm
        from kit.llm.artifact import ensure_trained
        from kit.llm.server import require_extra

        require_extra()
        data = llm.bench_llm(ensure_trained(args.model_dir, threads=1), args.tokens, args.repeat)
        return data, llm.format_llm(data)
    from kit.bench import serve

    data = serve.bench_serve(args.repeat, args.seconds)
    return data, serve.format_serve(data)


def main(argv: list[str]) -> int:
    from kit import bench

    args = _parser().parse_args(argv)
    data, table = run(args)
    saved = [bench.save(args.name, data)]
    if args.name == "train":
        from kit.bench import train

        saved.append(saved[0].with_suffix(".png"))
        train.plot_train(data, saved[-1])
    if args.name == "llm":
        from kit.bench import llm

        saved.append(saved[0].with_suffix(".png"))
        llm.plot_llm(data, saved[-1])
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(table)
        print(f"\nwrote {' and '.join(map(str, saved))}")
    return EXIT_OK
