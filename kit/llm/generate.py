"""The small path (fits Binder's 2 GiB): stream tokens from the model with ``transformers`` in this process.

:func:`stream_tokens` runs the decode loop itself — one forward pass per token, reusing the KV cache of
the previous steps (``past_key_values``) — and yields each token's text as soon as it is decoded: the
same shape of output as vLLM's stream, without an engine, batching or paging. :mod:`kit.llm.rayserve`
serves it as an OpenAI-style streaming endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator


def stream_tokens(model, tokenizer, prompt: str, max_tokens: int = 32, temperature: float = 0.0,
                  seed: int = 0, ignore_eos: bool = False) -> Iterator[str]:
    """Yield the text of each generated token (greedy when ``temperature`` is 0)."""
    import torch

    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    ids = tokenizer.encode(prompt)
    limit = model.config.max_position_embeddings
    if len(ids) + max_tokens > limit:
        raise ValueError(f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) is over the model's "
                         f"context of {limit} tokens")
    generator = torch.Generator().manual_seed(seed)
    generated: list[int] = []
    shown = ""
    past = None
    step_input = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(max_tokens):
            out = model(input_ids=step_input, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1]
            if temperature == 0:
                token = int(logits.argmax())
            else:
                token = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator))
            if token == tokenizer.eos_token_id and not ignore_eos:
                return
            generated.append(token)
            text = tokenizer.decode(generated, skip_special_tokens=True)
            if len(text) > len(shown) and not text.endswith("\ufffd"):  # a whole character decoded
                yield text[len(shown):]
                shown = text
            step_input = torch.tensor([[token]])


def timed(chunks: Iterator[str]) -> list[tuple[float, str]]:
    """``(seconds since the call, text)`` for each chunk of a stream: TTFT and TPOT without HTTP."""
    started = time.perf_counter()
    return [(time.perf_counter() - started, chunk) for chunk in chunks]
