"""RayService and InferenceService builders: upstream CRDs, the restricted policy, the same config."""

from __future__ import annotations

import pytest
import yaml

from kit import versions
from kit.config.serve import ServeConfig, serve_config_v2
from kit.k8s.builders import serving
from kit.k8s.validation import validate


def _problems(docs):
    return validate.validate_documents(docs, "serving")


@pytest.mark.parametrize(
    "doc",
    [
        serving.rayservice(),
        serving.rayservice(ServeConfig(model_dir="/models/digits", autoscaling={"min_replicas": 1, "max_replicas": 4}),
                           queue="team-a", name="auto"),
        serving.inferenceservice(),
        serving.with_canary(serving.inferenceservice(name="canary")),
    ],
    ids=["rayservice", "rayservice-autoscaling", "inferenceservice", "inferenceservice-canary"],
)
def test_passes_crd_and_policy_with_zero_problems(doc):
    problems = _problems([doc])
    assert problems == [], "\n".join(map(str, problems))


def test_rayservice_uses_the_same_serve_config_token_auth_and_pinned_image():
    config = ServeConfig(model_dir="/models/digits", max_batch_size=32, max_ongoing_requests=8)
    service = serving.rayservice(config)
    cluster = service["spec"]["rayClusterConfig"]
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == serve_config_v2(config)
    assert cluster["authOptions"] == {"mode": "token"} and cluster["rayVersion"] == versions.RAY
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    assert {c["image"] for g in groups for c in g["template"]["spec"]["containers"]} == {versions.IMAGES["kit"]}
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"containerPort": 8000, "name": "serve"} in head["ports"]


def test_inferenceservice_is_standard_mode_with_probes_on_v2_ready():
    isvc = serving.inferenceservice()
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = isvc["spec"]["predictor"]
    container = predictor["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert "canaryTrafficPercent" not in predictor  # Knative-only: ignored in Standard mode
    assert "kit.serve.kserve_model" in container["command"]


def test_impossible_inferenceservice_options_fail_fast():
    with pytest.raises(ValueError):
        serving.inferenceservice(min_replicas=3, max_replicas=2)
    with pytest.raises(ValueError):
        serving.with_canary(serving.inferenceservice(), traffic_percent=120)


def test_canary_runs_the_new_model_beside_the_stable_one_and_the_route_splits_by_its_percent():
    stable = serving.inferenceservice()
    isvc = serving.with_canary(stable, name="v2", storage_uri="pvc://kit-models/digits-v2", traffic_percent=10)
    assert isvc["spec"]["predictor"] == stable["spec"]["predictor"] and "canary" not in stable["spec"]
    (canary,) = isvc["spec"]["canary"]
    env = {e["name"]: e["value"] for e in canary["predictor"]["containers"][0]["env"]}
    assert canary["trafficPercent"] == 10 and env["STORAGE_URI"] == "pvc://kit-models/digits-v2"
    backends = serving.canary_route(isvc)["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [("digits-predictor", 90), ("digits-v2-predictor", 10)]
