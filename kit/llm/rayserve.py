"""Ray Serve in front of the engine, and around the small in-process model.

- :class:`EngineProxy` (:func:`proxy_app`): an OpenAI-style ingress that forwards ``/v1/completions`` and
  ``/v1/chat/completions`` to a vLLM server and streams its server-sent events back chunk by chunk
  (``StreamingResponse``), errors passed through with their status. Serve adds what the engine lacks:
  replicas, autoscaling, one HTTP entry for several models; the engine keeps continuous batching.
- :class:`TinyLM` (:func:`tiny_app`): the small path (:mod:`kit.llm.small`) in a Serve replica — ``transformers``,
  one request at a time, tokens streamed from :func:`kit.llm.generate.stream_tokens`.
- :func:`serve_llm_app`: **Ray Serve LLM** (``ray.serve.llm.build_openai_app``): vLLM's engine inside a
  Serve replica, OpenAI routes from Serve's own ingress. It runs with the CPU build of vLLM on Ray 2.60 with
  two settings found by trying: ``accelerator_config={"kind": "cpu"}`` (else ``LLMConfig`` assumes a GPU and
  asks for ``{"GPU": 1}`` bundles that never schedule: ray/llm/_internal/serve/core/configs/llm_config.py,
  accelerators.py), and zero CPUs for the ingress and the replica actor (else the replica's placement group takes
  both CPUs of a two-core machine and the ingress waits forever: core/server/llm_server.py
  ``get_deployment_options``). Its process tree measured ~4.9 GiB PSS here (Ray and Serve's actors besides
  the engine), over stage 12's 4 GiB budget: the tests run it, the notebook does not. Streams arrive in
  bursts: Serve LLM batches a stream's tokens every 50 ms (``RAYLLM_MODEL_RESPONSE_BATCH_TIMEOUT_MS``).
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from ray import serve
from starlette.responses import Response, StreamingResponse

from kit.llm.server import EngineOptions
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


def serve_llm_app(model_dir: str, options: EngineOptions | None = None):
    """Ray Serve LLM's OpenAI application for the model at ``model_dir`` on the CPU build of vLLM (``serve.run``
    target); the engine knobs and environment are :class:`kit.llm.server.EngineOptions`'."""
    from ray.serve.llm import LLMConfig, build_openai_app

    options = options or EngineOptions(max_num_seqs=8)
    config = LLMConfig(
        model_loading_config={"model_id": options.served_name, "model_source": str(model_dir)},
        engine_kwargs={"dtype": options.dtype, "max_model_len": options.max_model_len,
                       "max_num_seqs": options.max_num_seqs, "enable_prefix_caching": options.prefix_caching},
        # pydantic turns the dict into ray.llm's CPUConfig, which ray.serve.llm does not export
        accelerator_config={"kind": "cpu"},  # type: ignore[arg-type]
        runtime_env={"env_vars": options.env()},
        deployment_config={"autoscaling_config": {"min_replicas": 1, "max_replicas": 1},
                           "ray_actor_options": {"num_cpus": 0}},
    )
    ingress = {"ray_actor_options": {"num_cpus": 0}}
    return build_openai_app({"llm_configs": [config], "ingress_deployment_config": ingress})

