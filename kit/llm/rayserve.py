"""Ray Serve in front of the engine, and around the small in-process model.

- :class:`EngineProxy` (:func:`proxy_app`): an OpenAI-style ingress that forwards ``/v1/completions`` and
  ``/v1/chat/completions`` to a vLLM server and streams its server-sent events back chunk by chunk
  (``StreamingResponse``), errors passed through with their status. Serve adds what the engine lacks:
  replicas, autoscaling, one HTTP entry for several models; the engine keeps continuous batching.
- :class:`TinyLM` (:func:`tiny_app`): the small path (:mod:`kit.llm.small`) in a Serve replica — ``transformers``,
  one request at a time, tokens streamed from :func:`kit.llm.generate.stream_tokens`.

Why not Ray Serve LLM (``ray.serve.llm``) here: it drives vLLM's engine inside Ray actors with its own
placement groups; with the CPU build of vLLM on two cores that was not tried in this stage's time budget.
On a GPU cluster it is what the RayService of :mod:`kit.k8s.builders.llm` runs.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from ray import serve
from starlette.responses import Response, StreamingResponse

from kit.llm.small import completion_response

proxy_api = FastAPI()
tiny_api = FastAPI()


@serve.deployment(max_ongoing_requests=64)
@serve.ingress(proxy_api)
class EngineProxy:
    """Forwards OpenAI requests to ``engine_url`` and streams the answers back."""

    def __init__(self, engine_url: str) -> None:
        self.engine_url = engine_url.rstrip("/")
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0))

    async def _forward(self, path: str, request: Request) -> Response:
        body = await request.body()
        outgoing = self.client.build_request("POST", self.engine_url + path, content=body,
                                             headers={"content-type": "application/json"})
        answer = await self.client.send(outgoing, stream=True)
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            async def events():
                try:
                    async for chunk in answer.aiter_raw():
                        yield chunk
                finally:  # the client went away (or the stream ended): close the engine request, freeing its slot
                    await answer.aclose()

            return StreamingResponse(events(), status_code=answer.status_code, media_type="text/event-stream")
        content = await answer.aread()
        await answer.aclose()
        return Response(content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type", "application/json"))

    @proxy_api.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        return await self._forward("/v1/completions", request)

    @proxy_api.post("/v1/chat/completions")
    async def chat(self, request: Request) -> Response:
        return await self._forward("/v1/chat/completions", request)


def proxy_app(engine_url: str):
    """The bound proxy application (``serve.run`` target) for the engine at ``engine_url``."""
    return EngineProxy.bind(engine_url)  # type: ignore[attr-defined]  # serve.ingress hides the Deployment type


@serve.deployment(max_ongoing_requests=4)
@serve.ingress(tiny_api)
class TinyLM:
    """The model in this replica (``transformers``): OpenAI-style completions, streamed or not."""

    def __init__(self, model_dir: str, name: str = "kit-tiny-llama") -> None:
        import torch

        from kit.llm.artifact import load

        torch.set_num_threads(1)
        self.model, self.tokenizer, _ = load(model_dir)
        self.name = name

    @tiny_api.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        return completion_response(self.model, self.tokenizer, self.name, await request.body())


def tiny_app(model_dir: str):
    """The bound in-process application for the model at ``model_dir``."""
    return TinyLM.bind(model_dir)  # type: ignore[attr-defined]  # serve.ingress hides the Deployment type
