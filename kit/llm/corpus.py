"""The training text of stage 12's language model: generated here, deterministic, no download.

A tiny grammar writes short sentences about the kit's own subject (clusters, workers, models,
requests), e.g. ``the ray head schedules two training workers on the cpu pool .``. The vocabulary is a
few hundred words, so a 512-token BPE covers most words whole and a model of ~0.4 M parameters learns
the sentence shapes in a minute of CPU time. It learns the grammar, not facts: the text it writes is
plausible-looking nonsense, which is all serving and benchmarking need.
"""

from __future__ import annotations

import random

SUBJECTS = ("the ray head", "a training worker", "the model server", "the scheduler", "kueue", "the gateway",
            "a replica", "the kubelet", "the load balancer", "each pod", "the operator", "the engine",
            "a language model", "the tokenizer", "the router", "the autoscaler", "a data loader", "the job")
VERBS = ("schedules", "starts", "stops", "serves", "measures", "retries", "batches", "streams", "admits",
         "evicts", "caches", "writes", "reads", "restarts", "queues", "routes", "scales", "trains")
COUNTS = ("one", "two", "three", "four", "eight", "sixteen", "many", "a few", "all")
ADJECTIVES = ("small", "large", "ready", "pending", "idle", "busy", "new", "old", "fast", "slow", "warm", "cold")
OBJECTS = ("workers", "requests", "tokens", "models", "pods", "nodes", "gpus", "checkpoints", "batches",
           "streams", "replicas", "jobs", "queues", "sequences", "prompts", "blocks")
PLACES = ("on the cpu pool", "on the gpu nodes", "in the default namespace", "behind the gateway",
          "in the kv cache", "on a spot node", "in the cluster", "after the probe", "before the deadline",
          "under the quota", "in one step", "without a restart")
REASONS = ("because the cache is full", "because the quota allows it", "so the latency stays low",
           "so throughput rises", "when the probe fails", "while the queue is long", "until the job ends")


def sentence(rng: random.Random) -> str:
    """One generated sentence: subject, verb, count, adjective, object, place and sometimes a reason."""
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(COUNTS), rng.choice(ADJECTIVES),
             rng.choice(OBJECTS), rng.choice(PLACES)]
    if rng.random() < 0.4:
        words.append(rng.choice(REASONS))
    return " ".join(words) + " ."


def generate(sentences: int = 4000, seed: int = 0) -> list[str]:
    """``sentences`` generated lines, the same for the same seed."""
    if sentences < 1:
        raise ValueError(f"sentences must be at least 1, got {sentences}")
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(sentences)]
