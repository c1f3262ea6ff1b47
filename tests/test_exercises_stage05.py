"""Stage 05 exercises reject wrong answers with specific messages and accept right ones."""

from __future__ import annotations

import pytest

from kit import versions
from kit.course import exercises
from kit.course.exercises import NotYetRight, stage05
from kit.k8s.builders import runtime


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


def _job(change) -> dict:
    job = stage05.unqueued_trainjob()
    change(job)
    return job


@pytest.mark.parametrize(("answer", "message"), [
    ("kit-queue", "expected the TrainJob as a dict"),
    ({"kind": "PyTorchJob"}, "expected kind TrainJob, got 'PyTorchJob'"),
    (stage05.unqueued_trainjob(), r"1 problem\(s\) remain:\n  metadata.labels\[\"kueue.x-k8s.io/queue-name\"\]: "
                                  "missing label"),
    (_job(lambda j: j["metadata"]["labels"].update({versions.QUEUE_LABEL: "default"})),
     "queue label is 'default', expected 'kit-queue'"),
    (_job(lambda j: j["metadata"].update(annotations={versions.QUEUE_LABEL: "kit-queue"})),
     "the queue name is in metadata.annotations"),
    (_job(lambda j: j["metadata"].update({versions.QUEUE_LABEL: "kit-queue"})), "metadata \\(as a field of its own\\)"),
    (_job(lambda j: (j["metadata"]["labels"].update({versions.QUEUE_LABEL: "kit-queue"}),
                     j["spec"]["trainer"].update(numNodes=2))), "the TrainJob's spec changed"),
])
def test_queue_label_rejects_wrong_answers(answer, message):
    _wrong("05.queue_label", answer, message)


def test_queue_label_accepts_the_label_and_the_reference():
    job = _job(lambda j: j["metadata"]["labels"].update({versions.QUEUE_LABEL: stage05.QUEUE}))
    assert exercises.check("05.queue_label", job) is job
    assert exercises.skip_ahead("05.queue_label")["metadata"]["labels"][versions.QUEUE_LABEL] == "kit-queue"


@pytest.mark.parametrize(("answer", "message"), [
    (runtime.UPSTREAM_NAME,
     r"'torch-distributed' fails the restricted policy with 5 problem\(s\), e.g. .*runAsNonRoot"),
    ("torch-distributed-secure", "no ClusterTrainingRuntime named 'torch-distributed-secure'"),
    (3, "expected the runtime's name as a string, got int"),
    (runtime.torch_distributed_restricted(), "expected the runtime's name as a string, got dict"),
])
def test_restricted_runtime_rejects_wrong_answers(answer, message):
    _wrong("05.restricted_runtime", answer, message)


def test_restricted_runtime_accepts_the_kits_runtime():
    assert exercises.check("05.restricted_runtime", runtime.NAME) == "torch-distributed-restricted"
