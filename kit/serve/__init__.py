"""Serving track (stages 07-08): the model training wrote, served two ways, and measured.

Every server loads the serving artifact :func:`kit.train.loop.train_func` writes
(:mod:`kit.train.artifact`: weights, metadata, their hash). ``predictor`` holds the one
predict function every server calls (validate, preprocess, predict); ``api`` is the HTTP
contract they share (pydantic request models, short JSON errors, a body size limit);
``rayserve`` is the Ray Serve application (FastAPI ingress, dynamic batching, autoscaling,
a preprocess -> model graph); ``shape`` picks the application's shape from the memory limit and
``numpy_model`` runs the MLP without torch for it; ``kserve_model`` is the KServe predictor run as its own
loopback process; ``baseline`` is plain FastAPI on uvicorn; ``loadgen`` is the load
generator. Submodules are imported on use.
"""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
