"""The small path (fits Binder's 2 GiB): OpenAI-style completions from the model in this process.

:func:`completion_response` turns one ``/v1/completions`` body into a response — streamed as server-sent
events (one ``data:`` event per decoded token, then ``data: [DONE]``) or whole — with
:func:`kit.llm.generate.stream_tokens` doing the decoding: one request at a time, no batching, no paged
KV cache. :class:`kit.llm.rayserve.TinyLM` serves it behind Ray Serve; :func:`small_server` serves it from
a thread of the notebook's own process (no engine, no Ray: the lightest way to stream tokens over HTTP).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from kit.serve.threaded import ThreadedServer


def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    """An OpenAI-style error body with its HTTP status."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def completion_response(model, tokenizer, name: str, raw_body: bytes) -> Response:
    """The answer to one ``/v1/completions`` request body for the model served as ``name``."""
    from kit.llm.generate import stream_tokens

    try:
        body: dict[str, Any] = json.loads(raw_body)
    except ValueError as problem:
        return error(400, f"the body is not JSON: {problem}")
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object")
    if body.get("model") != name:
        return error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
    prompt, max_tokens = body.get("prompt"), body.get("max_tokens", 16)
    if not isinstance(prompt, str) or not isinstance(max_tokens, int):
        return error(400, "prompt must be a string and max_tokens an integer")
    try:
        chunks = stream_tokens(model, tokenizer, prompt, max_tokens, float(body.get("temperature", 0.0)),
                               ignore_eos=bool(body.get("ignore_eos")))
        first = next(chunks, None)  # errors in the arguments surface here, before any byte is sent
    except (TypeError, ValueError) as problem:
        return error(400, str(problem))
    ident, created = f"cmpl-{uuid.uuid4().hex[:12]}", int(time.time())

    def event(text: str, finish: str | None) -> str:
        choice = {"index": 0, "text": text, "finish_reason": finish}
        return "data: " + json.dumps({"id": ident, "object": "text_completion", "created": created,
                                      "model": name, "choices": [choice]}) + "\n\n"

    if not body.get("stream"):
        text = (first or "") + "".join(chunks)
        return JSONResponse({"id": ident, "object": "text_completion", "created": created, "model": name,
                             "choices": [{"index": 0, "text": text, "finish_reason": "length"}]})

    def events():
        if first is not None:
            yield event(first, None)
        for text in chunks:
            yield event(text, None)
        yield event("", "length")
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def small_app(model_dir: str | Path, name: str = "kit-tiny-llama"):
    """A Starlette app answering ``POST /v1/completions`` and ``GET /health`` with the model at ``model_dir``."""
    import torch
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from kit.llm.artifact import load

    torch.set_num_threads(1)
    model, tokenizer, _ = load(model_dir)

    async def completions(request: Request) -> Response:
        return completion_response(model, tokenizer, name, await request.body())

    async def health(_: Request) -> Response:
        return Response(status_code=200)

    return Starlette(routes=[Route("/v1/completions", completions, methods=["POST"]), Route("/health", health)])


def small_server(model_dir: str | Path, name: str = "kit-tiny-llama") -> ThreadedServer:
    """The small path's server (not started: ``start()`` or ``with``), in a thread of this process."""
    return ThreadedServer(small_app(model_dir, name), name="small language-model server")
