"""The baseline: the same predict function behind plain FastAPI on one uvicorn process.

``python -m kit.serve.baseline --model-dir DIR --port PORT`` serves on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fastapi import FastAPI

from kit import versions
from kit.serve import api
from kit.serve.predictor import Predictor


def baseline_app(model_dir: str | Path) -> FastAPI:
    """FastAPI app answering the kit's v1 routes (see :mod:`kit.serve.api`)."""
    predictor = Predictor(model_dir)
    app = api.new_app("kit baseline")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/v1/models/{model_name}")
    async def model(model_name: str):
        api.check_model_name(model_name, predictor.metadata)
        return api.model_info(predictor.metadata)

    @app.post("/v1/models/{model_name}:predict")
    async def predict(model_name: str, request: api.PredictRequest):
        api.check_model_name(model_name, predictor.metadata)
        return api.predict_response(predictor.metadata, predictor.predict(request.instances))

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m kit.serve.baseline", description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, default=versions.PORTS["baseline"])
    args = parser.parse_args(argv)
    uvicorn.run(baseline_app(args.model_dir), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
