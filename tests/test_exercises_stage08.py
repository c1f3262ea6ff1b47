"""Stage 08 exercises reject wrong answers with specific messages and accept right ones: the v2 request,
the learner's ``kserve.Model`` (checked in process, then served by ``kserve.ModelServer`` on loopback),
and the stretch canary (``spec.canary``, not the Knative-only ``canaryTrafficPercent``)."""

from __future__ import annotations

import copy

import kserve
import pytest

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage08
from kit.k8s.builders import serving
from kit.serve import kserve_model, predictor


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


@pytest.mark.parametrize(("body", "message"), [
    ({"instances": [[0.0] * 64]}, '"instances" is the v1 protocol'),
    ({"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}, "named 'pixels'"),
    ({"inputs": [{"name": "pixels", "shape": [2, 64], "datatype": "FP32", "data": [0.0] * 64}]}, "needs 128 numbers"),
])
def test_v2_request_rejects_wrong_bodies(body, message):
    _wrong("08.v2_request", body, message)


Reference = kserve_model.make_oip_class()


class NotReady(Reference):
    def load(self):
        super().load()
        self.ready = False
        return self.ready


class AnswersV1(Reference):
    def predict(self, payload, headers=None):
        return {"predictions": self.predictor.predict(payload.inputs[0].as_numpy())}


class WrongOutput(Reference):
    def predict(self, payload, headers=None):
        labels = self.predictor.predict(payload.inputs[0].as_numpy())
        return kserve.InferResponse(response_id="x", model_name=self.name, infer_outputs=[
            kserve.InferOutput(name="labels", shape=[len(labels)], datatype="INT64", data=labels)])


class NoResponseId(Reference):
    def predict(self, payload, headers=None):
        response = super().predict(payload, headers)
        response.id = None  # payload.id is None when the client sends no id
        return response


class Constant(Reference):
    def predict(self, payload, headers=None):
        labels = [0] * payload.inputs[0].shape[0]
        return kserve.InferResponse(response_id="x", model_name=self.name, infer_outputs=[
            kserve.InferOutput(name="label", shape=[len(labels)], datatype="INT64", data=labels)])


class NoPredict(kserve.Model):
    def __init__(self, name, model_dir):
        super().__init__(name)

    def load(self):
        self.ready = True
        return self.ready


class OneArgument(Reference):
    def __init__(self, model_dir):
        super().__init__("digits", model_dir)


@pytest.mark.parametrize(("answer", "message"), [
    (Reference(name="digits", model_dir="."), "expected a class that subclasses kserve.Model"),
    (predictor.Predictor, "expected a class that subclasses kserve.Model"),
    (NoPredict, r"does not define predict\(\)"),
    (OneArgument, r"OneArgument\('digits', model_dir\) raised TypeError"),
    (NotReady, "self.ready is not True"),
    (AnswersV1, "returned dict: a v2 request"),
    (WrongOutput, r"outputs \[\('labels', 'INT64'\)\]"),
    (NoResponseId, "could not send this InferResponse"),
    (Constant, r"labels \[0, 0, 0, 0\] for 4 rows; the kit's predictor says"),
])
def test_kserve_model_rejects_wrong_answers(answer, message):
    _wrong("08.kserve_model", answer, message)


def test_kserve_model_reference_is_served_over_the_open_inference_protocol(capsys):
    assert exercises.check("08.kserve_model", Reference) is Reference
    assert "POST /v2/models/digits/infer -> label INT64 [4]" in capsys.readouterr().out


class Defined(Reference):
    """Defined in this test module (not importable by the server process): pickled by value."""


def test_kserve_model_from_a_module_the_server_cannot_import_is_served():
    assert exercises.check("08.kserve_model", Defined) is Defined


def _canary(change) -> dict:
    isvc = exercises.get("08.canary").reference()
    change(isvc)
    return isvc


@pytest.mark.parametrize(("answer", "message"), [
    (serving.rayservice(), "expected kind InferenceService"),
    (serving.inferenceservice(), "spec.canary is None"),
    (_canary(lambda d: d["spec"]["predictor"].update(canaryTrafficPercent=10)), "read only by KServe's Knative"),
    (_canary(lambda d: d["spec"]["predictor"].update(minReplicas=2)), "spec.predictor changed"),
    (_canary(lambda d: d["spec"]["canary"][0].update(trafficPercent=90)), "trafficPercent 90"),
    (_canary(lambda d: d["spec"]["canary"][0]["predictor"]["containers"][0].update(env=[])),
     "STORAGE_URI is \\[\\]"),
    (_canary(lambda d: d["spec"]["canary"][0]["predictor"].update(maxReplicas=3)),
     "must not set maxReplicas"),
    (_canary(lambda d: d["spec"]["canary"][0]["predictor"].pop("name")), "predictor.name is required"),
])
def test_canary_rejects_wrong_answers(answer, message):
    _wrong("08.canary", answer, message)


def test_canary_accepts_spec_canary_written_by_hand():
    stable = serving.inferenceservice()
    canary = copy.deepcopy(stable)
    container = copy.deepcopy(stable["spec"]["predictor"]["containers"][0])
    container["env"] = [{"name": "STORAGE_URI", "value": stage08.CANARY_URI}]
    canary["spec"]["canary"] = [{"trafficPercent": 10, "predictor": {"name": "v2", "containers": [container]}}]
    assert exercises.check("08.canary", canary) is canary
