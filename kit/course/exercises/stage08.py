"""Exercises of stage 08 (KServe): a v2 request written by hand, and a canary InferenceService."""

from __future__ import annotations

from kit.course.exercises import NotYetRight, exercise


def _reference_v2_request() -> dict:
    from kit.serve import kserve_model, predictor

    return kserve_model.v2_request(predictor.sample_instances(2))


@exercise(
    "08.v2_request",
    "Write an Open Inference Protocol v2 request by hand",
    'One tensor: {"inputs": [{"name": "pixels", "shape": [rows, 64], "datatype": "FP32", "data": [...]}]}; '
    "data holds rows*64 numbers (flat, row after row).",
    reference=_reference_v2_request,
)
def check_v2_request(body) -> None:
    import numpy as np
    from kserve.protocol.rest.v2_datamodels import InferenceRequest

    if not isinstance(body, dict):
        raise NotYetRight(f"expected a dict (the JSON body), got {type(body).__name__}")
    if "instances" in body:
        raise NotYetRight('"instances" is the v1 protocol; v2 sends a list of typed tensors under "inputs"')
    try:
        request = InferenceRequest.model_validate(body)
    except ValueError as error:
        raise NotYetRight(f"not a v2 request: {str(error).splitlines()[0]}") from None
    if len(request.inputs) != 1:
        raise NotYetRight(f"send exactly one tensor, got {len(request.inputs)}")
    tensor = request.inputs[0]
    if tensor.name != "pixels":
        raise NotYetRight(f"the model's input is named 'pixels' (see GET /v2/models/digits), got {tensor.name!r}")
    if tensor.datatype != "FP32":
        raise NotYetRight(f"datatype {tensor.datatype!r}: the model takes FP32")
    if len(tensor.shape) != 2 or tensor.shape[1] != 64 or tensor.shape[0] < 1:
        raise NotYetRight(f"shape {tensor.shape}: expected [rows, 64] with at least one row")
    values = np.asarray(tensor.data, dtype=object).ravel()
    if values.size != tensor.shape[0] * 64:
        raise NotYetRight(f"shape {tensor.shape} needs {tensor.shape[0] * 64} numbers, data has {values.size}")


def _reference_canary() -> dict:
    from kit.k8s.builders import serving

    return serving.inferenceservice(canary_traffic_percent=10)


@exercise(
    "08.canary",
    "Canary rollout: send a small share of traffic to the new revision",
    "kit.k8s.builders.serving.inferenceservice(..., canary_traffic_percent=N) with N a small share (e.g. 10); "
    "the rest keeps going to the last ready revision.",
    reference=_reference_canary,
)
def check_canary(isvc) -> None:
    from kit.k8s.validation import validate

    if not isinstance(isvc, dict) or isvc.get("kind") != "InferenceService":
        raise NotYetRight("expected an InferenceService dict from kit.k8s.builders.serving.inferenceservice(...)")
    percent = isvc.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
    if percent is None:
        raise NotYetRight("no canaryTrafficPercent: the new revision would take 100% of the traffic at once")
    if not 1 <= percent <= 50:
        raise NotYetRight(f"canaryTrafficPercent={percent}: a canary is a small share (1-50), not the majority")
    problems = validate.validate_documents([isvc], "canary")
    if problems:
        raise NotYetRight("the manifest does not validate: " + "; ".join(map(str, problems[:3])))
