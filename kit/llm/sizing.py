"""KV-cache arithmetic: how many tokens, and so how many requests, a cache of a given size holds.

Each token a sequence has seen keeps a key and a value vector per layer and KV head in the cache; vLLM
allocates the cache in blocks of ``block_size`` tokens (128 on the CPU backend here), so a request
holds whole blocks. The engine states its own figure at start-up (``Maximum concurrency for N tokens per
request: X``): :func:`engine_reported_concurrency` reads it from its log.
"""

from __future__ import annotations

import math
import re


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, dtype_bytes: int = 4) -> int:
    """Bytes of KV cache one token occupies: a key and a value vector per layer and KV head."""
    return 2 * layers * kv_heads * head_dim * dtype_bytes


def admitted(kv_gib: int, per_token: int, tokens_per_request: int) -> int:
    """How many requests of ``tokens_per_request`` tokens a KV cache of ``kv_gib`` GiB holds at once."""
    return (kv_gib * 2**30) // (per_token * tokens_per_request)


def engine_reported_concurrency(log_text: str) -> float | None:
    """vLLM's ``Maximum concurrency for N tokens per request: X`` from its log, or None."""
    found = re.findall(r"Maximum concurrency for [\d,]+ tokens per request: ([\d.,]+)x", log_text)
    return float(found[-1].replace(",", "")) if found else None


def blocks_for(tokens: int, block_size: int) -> int:
    """KV-cache blocks one request of ``tokens`` tokens (prompt + completion) holds."""
    return math.ceil(tokens / block_size)
