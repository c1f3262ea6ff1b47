"""The Ray Serve app on one shared local Ray: bad input, overload, re-deploy, replica-kill drill."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import serving_cases as cases
import yaml

from kit.config.serve import ServeConfig, serve_config_v2
from kit.serve import loadgen, predictor, rayserve


@pytest.fixture(scope="module")
def app(local_ray, model_dir):
    deployed = rayserve.deploy(ServeConfig(model_dir=str(model_dir), num_replicas=2, max_batch_size=8))
    yield deployed
    rayserve.shutdown()
    from kit.serve.process import port_is_free

    assert port_is_free(8000), "rayserve.shutdown() must free Serve's port"


def test_predicts_over_http_on_loopback(app):
    assert app.url.startswith("http://127.0.0.1:")
    rows = predictor.sample_instances(4)
    body = httpx.post(app.predict_url, json={"instances": rows}, timeout=30).json()
    assert body["model_name"] == "digits" and len(body["predictions"]) == 4
    assert httpx.get(f"{app.url}/v1/models/digits").json()["ready"] is True


@pytest.mark.parametrize("case", cases.v1_cases(), ids=lambda c: c[0])
def test_bad_input_is_a_short_4xx_and_serving_continues(app, case):
    name, method, path, body, allowed = case
    cases.assert_short_client_error(cases.send(app.url, method, path, body), allowed, name)
    cases.assert_still_serving(app.url)


def test_concurrent_requests_are_batched_and_answered_correctly(app):
    rows = predictor.sample_instances(8)
    expected = predictor.Predictor(app.config.model_dir).predict(rows)
    result = loadgen.run_load(app.predict_url, {"instances": rows}, concurrency=8, requests=64)
    assert result.ok == 64 and result.errors == 0
    assert httpx.post(app.predict_url, json={"instances": rows}).json()["predictions"] == expected


def test_replica_kill_drill_recovers_within_five_seconds(app):
    drill = rayserve.kill_drill(app, {"instances": predictor.sample_instances(1)}, duration_s=6, kill_at_s=2)
    assert drill.killed.startswith("SERVE_REPLICA::digits#DigitsClassifier#")
    assert drill.load.ok > 0
    assert drill.recovery_s <= 5.0, str(drill)
    assert drill.lost == drill.load.errors  # counted, whatever it was
    cases.assert_still_serving(app.url)


def test_overload_is_rejected_with_503_not_queued_forever(app, model_dir):
    tight = ServeConfig(model_dir=str(model_dir), name="tight", route_prefix="/tight", max_ongoing_requests=1,
                        max_queued_requests=1, max_batch_size=1)
    small = rayserve.deploy(tight)
    try:
        result = loadgen.run_load(small.predict_url, {"instances": predictor.sample_instances(64)},
                                  concurrency=24, duration_s=3, timeout_s=15)
        assert set(result.statuses) <= {200, 503}, result.statuses
        assert result.statuses[503] > 0 and result.ok > 0, result.statuses
    finally:
        rayserve.delete("tight")


def test_rerunning_deploy_replaces_the_app(app, model_dir):
    again = rayserve.deploy(ServeConfig(model_dir=str(model_dir), num_replicas=2, max_batch_size=8))
    assert again.url == app.url
    assert len(rayserve.replica_actor_names("digits")) == 2
    cases.assert_still_serving(app.url)


def test_serve_config_v2_is_a_valid_serve_deploy_config(model_dir):
    from ray.serve.schema import ServeDeploySchema

    config = ServeConfig(model_dir=str(model_dir),
                         autoscaling={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8})
    schema = ServeDeploySchema.model_validate(yaml.safe_load(yaml.safe_dump(serve_config_v2(config))))
    deployments = {d.name: d for d in schema.applications[0].deployments}
    assert deployments["DigitsClassifier"].autoscaling_config["max_replicas"] == 4
    assert deployments["DigitsIngress"].max_queued_requests == config.max_queued_requests


def test_the_compact_shape_answers_like_the_torch_graph_over_http_and_its_handle(app, model_dir):
    """One hop, NumPy replicas (the shape Binder's 2 GiB runs): the same answers, the same 4xx."""
    one_hop = rayserve.deploy(ServeConfig(model_dir=str(model_dir), name="one-hop", route_prefix="/one-hop",
                                          max_batch_size=8, backend="auto"), one_hop=True)
    try:
        assert rayserve.replica_actor_names("one-hop", "DigitsService")
        assert one_hop.model_deployment == "DigitsService"
        rows = predictor.sample_instances(4)
        answer = httpx.post(one_hop.predict_url, json={"instances": rows}, timeout=30).json()
        assert answer == httpx.post(app.predict_url, json={"instances": rows}, timeout=30).json()
        labels = rayserve.model_handle(one_hop).predict.remote(np.asarray(rows, dtype=np.float32)).result()
        assert labels == answer["predictions"]
        for name, method, path, body, allowed in cases.v1_cases():
            cases.assert_short_client_error(cases.send(one_hop.url, method, path, body), allowed, name)
        cases.assert_still_serving(one_hop.url)
    finally:
        rayserve.delete("one-hop")
