"""The bad-input matrix both servers must answer with a short 4xx JSON error."""

from __future__ import annotations

import json

import httpx

from kit.serve import api
from kit.serve.predictor import MAX_BATCH, sample_instances

ROW = sample_instances(1)[0]
#: A training configuration small enough for tests (seconds on one CPU); every serving test's model uses it.
TINY_TRAINING = {"dataset": "digits", "model": "mlp", "hidden": 32, "batch_size": 32, "lr": 0.01, "device": "cpu"}


def v1_cases(model: str = "digits") -> list[tuple[str, str, str, bytes | None, set[int]]]:
    """(case, method, path, body, acceptable statuses) for the v1 routes."""
    predict = f"/v1/models/{model}:predict"

    def body(value) -> bytes:
        return json.dumps(value).encode()

    return [
        ("malformed JSON", "POST", predict, b'{"instances": [[1, 2', {400, 422}),
        ("wrong field name", "POST", predict, body({"inputs": [ROW]}), {400, 422}),
        ("extra field", "POST", predict, body({"instances": [ROW], "x": 1}), {400, 422}),
        ("wrong shape", "POST", predict, body({"instances": [ROW[:10]]}), {400, 422}),
        ("flat row", "POST", predict, body({"instances": ROW}), {400, 422}),
        ("wrong dtype", "POST", predict, body({"instances": [["a"] * 64]}), {400, 422}),
        ("booleans", "POST", predict, body({"instances": [[True] * 64]}), {400, 422}),
        ("NaN", "POST", predict, b'{"instances": [[NaN' + b", 0" * 63 + b"]]}", {400, 422}),
        ("infinity", "POST", predict, b'{"instances": [[Infinity' + b", 0" * 63 + b"]]}", {400, 422}),
        ("empty batch", "POST", predict, body({"instances": []}), {400, 422}),
        ("oversized batch", "POST", predict, body({"instances": [ROW] * (MAX_BATCH + 1)}), {400, 413, 422}),
        ("oversized body", "POST", predict, b" " * (api.MAX_BODY_BYTES + 10), {413}),
        ("unknown model", "POST", "/v1/models/nope:predict", body({"instances": [ROW]}), {404}),
        ("wrong method", "DELETE", predict, None, {405}),
        # KServe routes GET /v1/models/<name> to model status, so it reads "digits:predict" as a name: 404
        ("GET on predict", "GET", predict, None, {404, 405}),
    ]


def v2_cases(model: str = "digits") -> list[tuple[str, str, str, bytes | None, set[int]]]:
    infer = f"/v2/models/{model}/infer"

    def tensor(**overrides) -> bytes:
        item = {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ROW, **overrides}
        return json.dumps({"inputs": [item]}).encode()

    return [
        ("v2 malformed JSON", "POST", infer, b'{"inputs": [', {400, 422}),
        ("v2 wrong field name", "POST", infer, json.dumps({"instances": [ROW]}).encode(), {400, 422}),
        ("v2 wrong input name", "POST", infer, tensor(name="image"), {400, 422}),
        ("v2 shape mismatch", "POST", infer, tensor(shape=[2, 64]), {400, 422}),
        ("v2 wildcard shape", "POST", infer, tensor(shape=[-1, 64]), {400}),
        ("v2 negative shape", "POST", infer, tensor(shape=[1, -64]), {400}),
        ("v2 wrong shape", "POST", infer, tensor(shape=[1, 16], data=ROW[:16]), {400, 422}),
        ("v2 wrong dtype", "POST", infer, tensor(datatype="BYTES", data=["a"] * 64), {400, 422}),
        ("v2 strings as FP32", "POST", infer, tensor(data=["a"] * 64), {400, 422}),
        ("v2 empty batch", "POST", infer, tensor(shape=[0, 64], data=[]), {400, 422}),
        ("v2 oversized batch", "POST", infer, tensor(shape=[MAX_BATCH + 1, 64], data=ROW * (MAX_BATCH + 1)),
         {400, 413, 422}),
        ("v2 NaN", "POST", infer, tensor().replace(b'"data": [', b'"data": [NaN, ', 1).replace(
            b'"shape": [1, 64]', b'"shape": [1, 65]'), {400, 422}),
        ("v2 oversized body", "POST", infer, b" " * (api.MAX_BODY_BYTES + 10), {413}),
        ("v2 unknown model", "POST", "/v2/models/nope/infer", tensor(), {404}),
        ("v2 wrong method", "GET", infer, None, {405}),
        ("v2 DELETE", "DELETE", infer, None, {405}),
    ]


def send(base: str, method: str, path: str, body: bytes | None) -> httpx.Response:
    headers = {"content-type": "application/json"} if body is not None else {}
    return httpx.request(method, base + path, content=body, headers=headers, timeout=30)


def assert_short_client_error(response: httpx.Response, allowed: set[int], case: str) -> None:
    assert response.status_code in allowed, f"{case}: HTTP {response.status_code} {response.text[:300]}"
    assert len(response.content) < 600, f"{case}: error body too long: {response.text[:600]}"
    assert "Traceback" not in response.text and 'File "' not in response.text, f"{case}: traceback in body"
    payload = response.json()
    message = payload.get("error") or payload.get("detail")
    assert isinstance(message, str) and message, f"{case}: no error message in {payload}"


def assert_still_serving(base: str, model: str = "digits") -> None:
    response = httpx.post(f"{base}/v1/models/{model}:predict", json={"instances": [ROW]}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] and isinstance(response.json()["predictions"][0], int)
