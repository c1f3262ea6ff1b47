"""Serving track (stages 07-08): one trained model served two ways, and measured.

``artifact`` saves and loads the model directory both servers read (weights plus
JSON metadata) and holds the one predict function every server calls; ``api`` is
the HTTP contract they share (pydantic request models, short JSON errors, a body
size limit); ``rayserve`` is the Ray Serve application (FastAPI ingress, dynamic
batching, autoscaling, a preprocess -> model graph); ``kserve_model`` is the KServe
predictor run as its own loopback process; ``baseline`` is plain FastAPI on uvicorn;
``loadgen`` is the load generator. Submodules are imported on use.
"""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
