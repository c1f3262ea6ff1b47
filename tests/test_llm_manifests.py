"""Stage 12's cluster manifests: KServe's LLMInferenceService and a RayService running vLLM (Ray Serve LLM),
GPU requests and the model on a volume, valid strictly; each ported webhook rule rejects its bad case."""

from __future__ import annotations

import copy

import pytest
import yaml

from kit.k8s.builders import llm
from kit.k8s.validation import validate


def _problems(docs):
    return validate.validate_documents(docs, "llm")


def test_the_llm_manifests_are_valid_and_ask_for_gpus_and_the_model_volume():
    isvc, service = llm.llm_inference_service("kit"), llm.rayservice_vllm("kit")
    assert _problems([llm.llm_models_claim("kit"), isvc, service]) == []
    main = isvc["spec"]["template"]["containers"][0]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert isvc["spec"]["model"]["uri"] == f"pvc://{llm.LLM_CLAIM}/{llm.MODEL_DIR}"
    app = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    source = app["args"]["llm_configs"][0]["model_loading_config"]["model_source"]
    gpu_group = next(g for g in service["spec"]["rayClusterConfig"]["workerGroupSpecs"] if g["groupName"] == "gpu")
    pod = gpu_group["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "llm-models")
    assert source.startswith(mount["mountPath"])
    with pytest.raises(ValueError):
        llm.llm_inference_service("kit", gpus=0)


def _with(change):
    doc = copy.deepcopy(llm.llm_inference_service("kit"))
    change(doc["spec"])
    return doc


@pytest.mark.parametrize("change, path, says", [
    (lambda s: s.update(worker={"containers": []}), "spec.worker", "parallelism must be configured"),
    (lambda s: s.update(parallelism={"data": 2}), "spec.parallelism.dataLocal", "dataLocal must be set"),
    (lambda s: s.update(parallelism={"pipeline": 2, "data": 2, "dataLocal": 1}), "spec.parallelism",
     "cannot set both"),
    (lambda s: s.update(parallelism={"pipeline": 0}), "spec.parallelism.pipeline", "greater than 0"),
    (lambda s: s["router"].update(scheduler={"replicas": 0}), "spec.router.scheduler.replicas", "greater than zero"),
    (lambda s: s["router"].update(scheduler={"config": {}}), "spec.router.scheduler.config", "inline or ref"),
    (lambda s: s["router"]["route"].update(http={"refs": [{"name": "r"}]}), "spec.router.route.http.refs",
     "managed gateway"),
])
def test_each_webhook_rule_rejects_its_case(change, path, says):
    problems = _problems([_with(change)])
    assert any(p.path == path and says in p.message for p in problems), [str(p) for p in problems]
