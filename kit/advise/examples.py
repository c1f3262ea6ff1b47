"""The worked examples of ``python -m kit advise --example NAME`` (``--example list`` lists them).

Each is a workload description as a YAML file would give it; ``tests/test_advise.py`` asserts the key
recommendations and reasons of every one, and that its manifests validate.
"""

from __future__ import annotations

from typing import Any

from kit.advise.workload import Workload, from_mapping

#: name -> (one line, the description)
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "laptop-learner": ("a learner trains the kit's model on a laptop", {
        "name": "laptop learner", "where": "laptop", "train_hours": 0.05}),
    "binder-user": ("the curriculum on mybinder.org: one core, 2 GB", {
        "name": "binder user", "where": "binder", "train_hours": 0.05}),
    "hackathon-10-teams": ("ten teams share a 32-CPU cluster, training with Ray", {
        "name": "hackathon", "where": "cluster", "nodes": 4, "node_cpus": 8, "node_memory_gb": 32, "teams": 10,
        "train_hours": 2, "uses_ray": True, "storage_class": "nfs-client"}),
    "single-gpu-finetune": ("fine-tune a 1B-parameter model on one 80 GB GPU", {
        "name": "single gpu finetune", "where": "gpu-pool", "nodes": 1, "node_cpus": 16, "node_memory_gb": 128,
        "gpus": 1, "gpus_per_node": 1, "gpu_type": "H100", "gpu_memory_gb": 80, "model_params": "1B",
        "data_gb": 5, "train_hours": 4, "requires_gpu": True}),
    "multi-node-gpu-training": ("train a 7B model on 4 nodes x 8 H200", {
        "name": "multi node training", "where": "gpu-pool", "nodes": 4, "node_cpus": 64, "node_memory_gb": 512,
        "gpus": 32, "gpus_per_node": 8, "gpu_type": "H200", "gpu_memory_gb": 141, "model_params": "7B",
        "data_gb": 500, "train_hours": 24, "requires_gpu": True, "storage_class": "efs-sc"}),
    "latency-critical-serving": ("500 req/s of the kit's model at p95 50 ms on CPU nodes", {
        "name": "online serving", "where": "cluster", "nodes": 3, "node_cpus": 16, "node_memory_gb": 64,
        "serve_rps": 500, "p95_ms": 50}),
    "nightly-batch-inference": ("score 20 million rows every night within 2 hours", {
        "name": "nightly batch", "where": "cluster", "nodes": 2, "node_cpus": 16, "node_memory_gb": 64,
        "model_params": "50M", "model_ms": 8, "batch16_ms": 32, "batch_rows": 20_000_000,
        "batch_window_hours": 2, "data_gb": 20}),
    "small-llm-service": ("a 1.5B-parameter LLM behind an API on two L4 nodes", {
        "name": "small llm", "where": "gpu-pool", "nodes": 2, "node_cpus": 32, "node_memory_gb": 256, "gpus": 4,
        "gpus_per_node": 2, "gpu_type": "L4", "gpu_memory_gb": 24, "model_kind": "llm", "model_params": "1.5B",
        "model_ms": 900, "replica_rps": 20, "serve_rps": 5, "p95_ms": 4000, "requires_gpu": True}),
}


def example(name: str) -> Workload:
    """The workload of example ``name``."""
    from kit.errors import KitError

    if name not in EXAMPLES:
        raise KitError(f"no example {name!r}", fix=f"use one of: {', '.join(EXAMPLES)} (`--example list`)")
    return from_mapping(dict(EXAMPLES[name][1]), f"example {name}")


def listing() -> str:
    """``name  description`` per example."""
    return "\n".join(f"{name:<26} {line}" for name, (line, _) in EXAMPLES.items())
