"""KServe predictor as its own loopback process: v1 and v2, the bad-input matrix, restart."""

from __future__ import annotations

import httpx
import psutil
import pytest
import serving_cases as cases

from kit.serve import kserve_model, predictor
from kit.serve.process import ServerNotReady, port_is_free


@pytest.fixture(scope="module")
def server(model_dir):
    with kserve_model.kserve_server(model_dir) as running:
        yield running
    assert port_is_free(running.port), "stop() must free the port"


def test_binds_loopback_only(server):
    addresses = {c.laddr.ip for c in psutil.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.pid == server.process.pid}
    assert addresses == {"127.0.0.1"}


def test_v1_and_v2_give_the_same_predictions(server):
    rows = predictor.sample_instances(3)
    v1 = httpx.post(f"{server.url}/v1/models/digits:predict", json={"instances": rows}).json()
    body = {"inputs": [{"name": "pixels", "shape": [3, 64], "datatype": "FP32", "data": rows}]}
    v2 = httpx.post(f"{server.url}/v2/models/digits/infer", json=body).json()
    assert v2["outputs"][0]["name"] == "label" and v2["outputs"][0]["datatype"] == "INT64"
    assert v2["outputs"][0]["data"] == v1["predictions"] and len(v1["predictions"]) == 3
    assert v2["model_version"] == "1"


def test_v2_health_and_metadata(server):
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    meta = httpx.get(f"{server.url}/v2/models/digits").json()
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]


@pytest.mark.parametrize("case", cases.v1_cases() + cases.v2_cases(), ids=lambda c: c[0])
def test_bad_input_is_a_short_4xx_and_serving_continues(server, case):
    name, method, path, body, allowed = case
    cases.assert_short_client_error(cases.send(server.url, method, path, body), allowed, name)
    cases.assert_still_serving(server.url)


def test_restart_comes_back_ready(server):
    old = server.process.pid
    server.restart()
    assert server.process.pid != old
    cases.assert_still_serving(server.url)


def test_missing_artifact_fails_fast_with_the_path(tmp_path):
    missing = tmp_path / "no-model"
    with pytest.raises(ServerNotReady, match="exited") as caught, kserve_model.kserve_server(missing):
        pass
    assert str(missing) in str(caught.value)
