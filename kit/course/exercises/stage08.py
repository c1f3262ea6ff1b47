"""Exercises of stage 08 (KServe): a v2 request by hand, a ``kserve.Model`` served over the Open Inference
Protocol, and (stretch) a canary in Standard mode."""

from __future__ import annotations

from typing import Any

from kit.course.exercises import NotYetRight, exercise, expect_manifest, listed, validation_problems

#: Where the stretch exercise's new model version lives (the stable one is ``pvc://kit-models/digits``).
CANARY_URI = "pvc://kit-models/digits-v2"
_ROWS = 4  # rows the predictor exercise sends (seed 3: not the rows the notebook shows)


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


def _reference_model() -> type:
    from kit.serve import kserve_model

    return kserve_model.make_oip_class()


@exercise(
    "08.kserve_model",
    "Write a KServe predictor: a kserve.Model served over the Open Inference Protocol",
    "class DigitsModel(kserve.Model) with __init__(self, name, model_dir) that calls super().__init__(name); "
    "load(): self.predictor = kit.serve.predictor.Predictor(self.model_dir), then self.ready = True and return it; "
    "predict(self, payload, headers=None): payload is a kserve.InferRequest, payload.inputs[0].as_numpy() the "
    "(rows, 64) pixels, self.predictor.predict(pixels) the labels; return kserve.InferResponse("
    "response_id=payload.id or kserve.utils.utils.generate_uuid(), model_name=self.name, infer_outputs=["
    "kserve.InferOutput(name='label', shape=[len(labels)], datatype='INT64', data=labels)]).",
    reference=_reference_model,
)
def check_kserve_model(cls) -> None:
    """In this process first (specific hints, fast), then for real: ``kserve.ModelServer`` on loopback
    serves the class and answers ``POST /v2/models/digits/infer``."""
    from kserve import Model

    from kit.serve import predictor
    from kit.train import artifact

    if not isinstance(cls, type) or not issubclass(cls, Model):
        raise NotYetRight(f"expected a class that subclasses kserve.Model, got {short(cls)}")
    for method, why in (("load", "KServe's only sets ready; yours must load the artifact"),
                        ("predict", "KServe's forwards to a remote predictor_host, and there is none")):
        if getattr(cls, method) is getattr(Model, method):
            raise NotYetRight(f"{cls.__name__} does not define {method}(): {why}")
    model_dir = str(artifact.ensure_trained())
    rows = predictor.sample_instances(_ROWS, seed=3)
    expected = predictor.Predictor(model_dir).predict(rows)
    _check_in_process(cls, model_dir, rows, expected)
    served = _served_labels(cls, model_dir, rows)
    if served != expected:
        raise NotYetRight(f"the model server answered labels {served}, the kit's predictor says {expected}")
    print(f"   kserve.ModelServer on 127.0.0.1 served {cls.__name__}: POST /v2/models/digits/infer -> "
          f"label INT64 [{_ROWS}], the same labels as the kit's predictor")


def _check_in_process(cls: type, model_dir: str, rows: list[list[float]], expected: list[int]) -> None:
    """What KServe does with the class, in this process: build, load, ``__call__`` with an InferRequest,
    encode the answer as the REST server does."""
    import numpy as np
    from kserve import InferInput, InferRequest, InferResponse
    from kserve.protocol.rest.v2_datamodels import InferenceResponse

    from kit.serve.loadgen import run_sync

    try:
        model = cls("digits", model_dir)
    except Exception as error:
        raise NotYetRight(f"{cls.__name__}('digits', model_dir) raised {describe(error)}: the server builds "
                          "the model as cls(name, model_dir)") from None
    if getattr(model, "name", None) != "digits":
        raise NotYetRight(f"the model's name is {short(getattr(model, 'name', None))}, not 'digits': pass name "
                          "to super().__init__(name) - it is the <name> in /v2/models/<name>/infer")
    try:
        model.load()
    except Exception as error:
        raise NotYetRight(f"load() raised {describe(error)}") from None
    if model.ready is not True:
        raise NotYetRight("after load(), self.ready is not True: KServe answers /v2/health/ready with 503 and "
                          "sends no traffic until it is - set self.ready = True at the end of load()")
    tensor = InferInput(name="pixels", shape=[len(rows), len(rows[0])], datatype="FP32")
    tensor.set_data_from_numpy(np.asarray(rows, dtype=np.float32), binary_data=False)
    try:
        response, _ = run_sync(model(InferRequest(model_name="digits", infer_inputs=[tensor])))
    except Exception as error:
        raise NotYetRight(f"predict() raised {describe(error)} on a v2 request for {len(rows)} rows") from None
    if not isinstance(response, InferResponse):
        raise NotYetRight(f"predict() returned {type(response).__name__}: a v2 request (an InferRequest) is "
                          "answered with a kserve.InferResponse holding InferOutput tensors")
    outputs = response.outputs
    if len(outputs) != 1 or outputs[0].name != "label" or outputs[0].datatype != "INT64":
        found = [(o.name, o.datatype) for o in outputs]
        raise NotYetRight(f"outputs {found}: the model declares one output, ('label', 'INT64')")
    try:
        InferenceResponse.model_validate(response.to_rest()[0])  # (JSON body, length of its JSON part)
    except ValueError as error:
        why = " ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise NotYetRight(f"KServe's REST server could not send this InferResponse ({why})") from None
    labels = [int(x) for x in np.asarray(outputs[0].data).ravel()]
    if labels != expected:
        raise NotYetRight(f"labels {labels} for {len(rows)} rows; the kit's predictor says {expected} - let "
                          "self.predictor.predict(pixels) do the scaling and the class mapping")


def _served_labels(cls: type, model_dir: str, rows: list[list[float]]) -> list[int]:
    import httpx

    from kit.serve import kserve_model
    from kit.serve.process import ServerNotReady

    try:
        with kserve_model.kserve_server(model_dir, name="digits", model_class=cls) as server:
            answer = httpx.post(f"{server.url}/v2/models/digits/infer", json=kserve_model.v2_request(rows),
                                timeout=60)
    except ServerNotReady as error:
        raise NotYetRight(f"the model server did not start with {cls.__name__}: {error.message[-600:]}") from None
    if answer.status_code != 200:
        raise NotYetRight(f"the model server answered {answer.status_code}: {answer.text[:300]}")
    return [int(x) for x in answer.json()["outputs"][0]["data"]]


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reference_canary() -> dict:
    from kit.k8s.builders import serving

    return serving.with_canary(serving.inferenceservice(), name="v2", storage_uri=CANARY_URI, traffic_percent=10)


@exercise(
    "08.canary",
    "Stretch: a canary in Standard mode",
    "Copy the stable InferenceService (copy.deepcopy) and add spec.canary = [{'trafficPercent': 10, 'predictor': "
    "{'name': 'v2', 'containers': [a copy of the kserve-container whose STORAGE_URI env is "
    f"'{CANARY_URI}']}}}}]. Leave spec.predictor as it is, and no canaryTrafficPercent: only Knative mode "
    "reads it.",
    reference=_reference_canary,
)
def check_canary(isvc) -> None:
    from kit.k8s.builders import serving

    expect_manifest(isvc, "InferenceService")
    spec = isvc.get("spec") or {}
    if "canaryTrafficPercent" in (spec.get("predictor") or {}):
        raise NotYetRight("canaryTrafficPercent is read only by KServe's Knative reconciler; in Standard mode the "
                          "new version would silently take all traffic")
    if spec.get("predictor") != serving.inferenceservice()["spec"]["predictor"]:
        raise NotYetRight("spec.predictor changed: the stable predictor keeps serving the current model, the new "
                          "version goes into spec.canary")
    canaries = spec.get("canary")
    if not isinstance(canaries, list) or len(canaries) != 1 or not isinstance(canaries[0], dict):
        raise NotYetRight(f"spec.canary is {short(canaries)}: a list with one entry {{trafficPercent, predictor}}")
    percent = canaries[0].get("trafficPercent")
    if not isinstance(percent, int) or not 1 <= percent <= 50:
        raise NotYetRight(f"trafficPercent {short(percent)}: a canary gets a small share (1-50), the stable rest")
    containers = (canaries[0].get("predictor") or {}).get("containers") or [{}]
    uris = [e.get("value") for e in containers[0].get("env") or [] if e.get("name") == "STORAGE_URI"]
    if uris != [CANARY_URI]:
        raise NotYetRight(f"the canary's STORAGE_URI is {short(uris)}: it must serve the new model, {CANARY_URI}")
    problems = validation_problems([isvc])
    if problems:
        raise NotYetRight(f"{len(problems)} problem(s) from the validator:{listed(problems)}")
