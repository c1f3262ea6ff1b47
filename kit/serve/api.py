"""The HTTP contract the FastAPI baseline and the Ray Serve ingress share.

Routes follow KServe's v1 protocol, so one payload works for all three servers::

    GET  /healthz                          -> {"status": "ok"}
    GET  /v1/models/<name>                 -> {"name": ..., "ready": true, "version": ...}
    POST /v1/models/<name>:predict         {"instances": [[64 numbers], ...]}
                                           -> {"predictions": [label, ...], ...}

Every client error is a 4xx with a short JSON body ``{"error": "..."}``: pydantic
rejects wrong fields and types (422), :class:`~kit.serve.predictor.Predictor`
rejects wrong shapes, NaN/inf and empty batches (422) and oversized batches (413),
:class:`BodyLimit` rejects oversized bodies (413) before they are read into memory.
No handler ever returns a traceback.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit.serve.predictor import InvalidInput
from kit.train.artifact import ModelMetadata

#: Largest request body accepted (a full batch of 256 rows of 64 numbers is ~100 KiB).
MAX_BODY_BYTES = 1024 * 1024

#: A pixel: a JSON number (not a string, not a bool), finite.
Pixel = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class PredictRequest(BaseModel):
    """KServe v1 ``predict`` body: ``{"instances": [[...], ...]}``; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")
    instances: list[list[Pixel]]


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[int]


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


def describe_validation(exc: RequestValidationError, limit: int = 3) -> str:
    """pydantic's errors in one short line: where and what, never the (possibly huge) input."""
    parts = []
    for item in exc.errors()[:limit]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def install_error_handlers(app: FastAPI) -> FastAPI:
    """Short JSON errors for every failure; never a traceback in the body."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError):
        return error(422, describe_validation(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid_input(_: Request, exc: InvalidInput):
        return error(exc.status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    return app


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, also when it comes without Content-Length."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                return await self._reject(scope, receive, send)
            return await self.app(scope, receive, send)
        # Chunked upload: read it (up to the limit) before the app sees it, then replay it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._reject(scope, receive, send)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _reject(self, scope, receive, send):
        response = error(413, f"request body is over the limit of {self.max_bytes} bytes")
        await response(scope, receive, send)


def check_model_name(requested: str, metadata: ModelMetadata) -> None:
    if requested != metadata.name:
        raise StarletteHTTPException(404, f"model {requested!r} is not served here; this server has {metadata.name!r}")


def model_info(metadata: ModelMetadata) -> dict:
    return {"name": metadata.name, "version": metadata.version, "ready": True,
            "inputs": {"shape": [-1, *metadata.input_shape], "datatype": "FP32"},
            "classes": list(metadata.classes)}


def predict_response(metadata: ModelMetadata, labels: list[int]) -> dict:
    return {"model_name": metadata.name, "model_version": metadata.version, "predictions": labels}


def new_app(title: str, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """A FastAPI app with the kit's error handlers and body limit (routes are added by the caller)."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return install_error_handlers(app)
