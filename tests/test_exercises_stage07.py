"""Stage 07 exercises: 07.deployment is reasoned about without Ray first (specific hints for what can be
seen in the answer), then run on a local Serve (a burst through the ingress, batch sizes read back, wrong
runs translated); the stretch 07.scale_to_zero is checked against Serve's own AutoscalingConfig."""

from __future__ import annotations

import pytest
from ray import serve

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage07
from kit.course.exercises import stage07_deployment as deployment
from kit.serve import predictor


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


def _app(batch=True, size=8, wait=0.02, length=0, await_model=True, async_call=True, bind_model=True,
         model_dir=None):
    """An answer to 07.deployment, right by default; each argument makes one mistake. Classes made in a
    function are pickled by value, so the replicas need not import this test module."""

    class Model:
        def __init__(self, model_dir: str) -> None:
            self.predictor = predictor.Predictor(model_dir, backend="auto")

        async def predict(self, rows):
            labels = self.predictor.predict(rows)
            return labels + labels[:length] if length else labels

    if batch:
        Model.predict = serve.batch(max_batch_size=size, batch_wait_timeout_s=wait)(Model.predict)
    model = serve.deployment(Model)

    class Front:
        def __init__(self, model=None) -> None:
            self.model = model

        async def __call__(self, row):
            if not await_model:
                return self.model.predict.remote(row)
            return await self.model.predict.remote(row)

    if not async_call:
        Front.__call__ = lambda self, row: self.model.predict.remote(row).result()
    front = serve.deployment(Front)
    model_dir = model_dir or str(predictor.ensure_model())
    return front.bind(model.bind(model_dir)) if bind_model else front.bind()


@pytest.mark.parametrize(("answer", "message"), [
    (lambda: int, "got the plain class int"),
    (lambda: serve.deployment(type("Front", (), {})), "is a Deployment, not an application"),
    (lambda: _app(bind_model=False), "got no bound deployment, so it holds no handle"),
    (lambda: _app(batch=False), "every call would have batch size 1"),
    (lambda: _app(size=1), r"max_batch_size=1\) means batches of one"),
    (lambda: _app(wait=2.0), "would wait 2.0 s for company"),
    (lambda: _app(async_call=False), r"Front.__call__ is not async def"),
])
def test_deployment_rejects_what_it_can_see_without_running(answer, message, monkeypatch, model_dir):
    monkeypatch.setattr(predictor, "ensure_model", lambda *a: model_dir)
    monkeypatch.setattr(deployment, "run_burst", lambda *a: pytest.fail("ran an answer it could reject unseen"))
    _wrong("07.deployment", answer(), message)


@pytest.fixture(scope="module")
def served_model(local_ray, model_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predictor, "ensure_model", lambda *a: model_dir)
        yield model_dir
    from kit.serve import rayserve

    rayserve.shutdown()


def test_deployment_reference_runs_with_batches_and_deletes_its_app(served_model, capsys):
    app = deployment.reference_app(str(served_model))
    assert exercises.check("07.deployment", app) is app
    run = stage07.last_run()
    assert run is not None and sum(run.batch_sizes) == deployment.BURST and max(run.batch_sizes) > 1
    assert "the batch method saw batches of" in capsys.readouterr().out
    assert deployment.APP_NAME not in serve.status().applications


@pytest.mark.parametrize(("mistake", "message"), [
    (dict(length=1), r"predict\(\) returned \d+ results for a batch of \d+ \(Serve: \"Batched function doesn't"),
    (dict(await_model=False), "returned the model's DeploymentResponse instead of its value"),
    (dict(model_dir="/nonexistent/model"), "serve.run failed: "),
])
def test_deployment_translates_serves_errors_when_run(served_model, mistake, message):
    _wrong("07.deployment", _app(**mistake), message)
    assert deployment.APP_NAME not in serve.status().applications


@pytest.mark.parametrize(("labels", "sizes", "message"), [
    ([0] * deployment.BURST, [8, 8], "the ingress answered .* the model says"),
    (None, [], r"Model.predict\(\) saw 0 of 16 requests: the ingress must call it through its handle"),
    (None, [1] * deployment.BURST, r"every call had batch size 1 \(16 calls for 16 concurrent requests\)"),
])
def test_deployment_rejects_what_the_run_measured(labels, sizes, message, monkeypatch, model_dir):
    """The verdicts on a run's measurements (the runs themselves: the tests above and below)."""
    monkeypatch.setattr(predictor, "ensure_model", lambda *a: model_dir)
    rows = predictor.sample_instances(deployment.BURST, seed=7)
    right = predictor.Predictor(model_dir, backend="auto").predict(rows)
    measured = deployment.BurstResult(labels or right, sizes, start_s=1.0, burst_s=0.1)
    monkeypatch.setattr(deployment, "run_burst", lambda parts, rows: measured)
    _wrong("07.deployment", _app(), message)


@pytest.mark.parametrize(("answer", "message"), [
    ([0, 2], "expected a dict"),
    ({"min_replicas": 0, "max_replicas": 2, "scale_to_zero": True}, r"unknown key\(s\) \['scale_to_zero'\]"),
    ({"min_replicas": 3, "max_replicas": 2}, "Serve rejects it"),
    ({"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1}, "min_replicas=1 keeps 1 replica"),
    ({"min_replicas": 0, "max_replicas": 2, "downscale_to_zero_delay_s": 120}, "initial_replicas=None"),
    ({"min_replicas": 0, "max_replicas": 2, "initial_replicas": 1}, "no downscale_to_zero_delay_s"),
    ({"min_replicas": 0, "max_replicas": 2, "initial_replicas": 1, "downscale_to_zero_delay_s": 600},
     "goes after 600 s idle"),
])
def test_scale_to_zero_rejects_wrong_configs(answer, message):
    _wrong("07.scale_to_zero", answer, message)


def test_scale_to_zero_reference_is_a_valid_autoscaling_config():
    from ray.serve.config import AutoscalingConfig

    answer = exercises.skip_ahead("07.scale_to_zero")
    assert exercises.check("07.scale_to_zero", answer) is answer
    assert AutoscalingConfig(**answer).min_replicas == 0
