"""One model from training to serving: every local launcher's artifact, served by Ray Serve and KServe.

Each launcher (in-process, torchrun, Ray Train, Kubeflow local) trains a tiny model with
:func:`kit.train.loop.train_func`; rank 0 writes the serving artifact. Both servers load
exactly that directory and must answer with the predictions the artifact gives in this
process. One Ray start (the session's ``local_ray``) and one Serve instance for the module.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serving_cases import TINY_TRAINING

from kit.config.serve import ServeConfig
from kit.serve import kserve_model, predictor, rayserve
from kit.train import artifact
from kit.train import launchers as launch

LAUNCHERS = ("in-process", "torchrun", "ray-train", "kubeflow-local")
ROWS = predictor.sample_instances(16, seed=3)


def _run(launcher: str, model_dir: Path) -> launch.LaunchResult:
    config = {**TINY_TRAINING, "epochs": 1, "model_dir": str(model_dir)}
    if launcher == "in-process":
        return launch.run_in_process(config)
    if launcher == "torchrun":
        return launch.run_torchrun({**config, "workers": 2}, on_line=None)
    if launcher == "ray-train":
        return launch.run_ray_train({**config, "workers": 2}, storage_path=model_dir.parent / "ray")
    return launch.run_kubeflow_local(config, on_line=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, local_ray):
    """launcher -> (its LaunchResult, its model directory), trained once per launcher on first use."""
    cache: dict[str, tuple[launch.LaunchResult, Path]] = {}

    def get(launcher: str) -> tuple[launch.LaunchResult, Path]:
        if launcher not in cache:
            model_dir = tmp_path_factory.mktemp(launcher) / "digits"
            cache[launcher] = (_run(launcher, model_dir), model_dir)
        return cache[launcher]

    return get


@pytest.fixture(scope="module")
def serve_instance(local_ray):
    yield
    rayserve.shutdown()


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_launcher_writes_the_artifact_it_reports(trained, launcher):
    result, model_dir = trained(launcher)
    assert result.artifact is not None and Path(result.artifact).resolve() == model_dir.resolve()
    metadata = artifact.verify(model_dir)
    assert metadata.train_config["workers"] == result.result["world_size"]
    assert metadata.accuracy == pytest.approx(result.final["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_ray_serve_and_kserve_predict_what_the_artifact_predicts(trained, serve_instance, launcher):
    _, model_dir = trained(launcher)
    expected = predictor.Predictor(model_dir).predict(ROWS)
    app = rayserve.deploy(ServeConfig(model_dir=str(model_dir), name=f"t2s-{launcher}", route_prefix=f"/{launcher}"))
    try:
        response = httpx.post(app.predict_url, json={"instances": ROWS}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == expected
    finally:
        rayserve.delete(app.name)
    with kserve_model.kserve_server(model_dir) as server:
        v1 = httpx.post(f"{server.url}/v1/models/digits:predict", json={"instances": ROWS}, timeout=30)
        assert v1.status_code == 200, v1.text
        assert v1.json()["predictions"] == expected
        assert kserve_model.client_infer(server.url, ROWS) == expected  # v2, through KServe's own client


def test_servers_refuse_an_artifact_whose_weights_changed(trained, tmp_path):
    import shutil

    _, model_dir = trained("in-process")
    altered = tmp_path / "digits"
    shutil.copytree(model_dir, altered)
    with (altered / artifact.WEIGHTS).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(Exception, match="SHA-256") as caught, kserve_model.kserve_server(altered):
        pass
    assert str(altered / artifact.WEIGHTS) in str(caught.value)
