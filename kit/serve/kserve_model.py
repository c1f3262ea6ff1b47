"""The KServe predictor: a ``kserve.Model`` serving the kit's artifact over v1 and v2.

``python -m kit.serve.kserve_model --model-dir DIR --port PORT`` runs
``kserve.ModelServer`` with one worker, gRPC off, bound to 127.0.0.1 only (KServe
binds every interface by default, which on a laptop or a shared hub exposes the model
to the network). :func:`kserve_server` starts it as a child process and waits for
``/v2/health/ready``. Endpoints (KServe's, not the kit's)::

    v1  GET /v1/models/<name>         POST /v1/models/<name>:predict  {"instances": [[...]]}
    v2  GET /v2/health/ready          GET /v2/models/<name>
        POST /v2/models/<name>/infer  {"inputs": [{"name", "shape", "datatype", "data"}]}

Bad input raises ``kserve.errors.InvalidInput``, which KServe answers with 400 and
``{"error": "..."}``; an unknown model is KServe's 404.

``--model-class FILE`` serves another ``kserve.Model`` subclass instead (a class the notebook defined,
saved with cloudpickle by :func:`kserve_server`; built as ``cls(name, model_dir)``): stage 08's exercise
runs the learner's own predictor in the same server, on the same loopback port rules.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from kit import versions
from kit.serve.process import ServerProcess, free_port

#: v2 tensor datatypes this model accepts (converted to float32).
NUMERIC_DATATYPES = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
                     "UINT64"}
INPUT_NAME = "pixels"
OUTPUT_NAME = "label"


def make_model_class():
    """The ``kserve.Model`` subclass (built on use, so importing this module does not import KServe)."""
    import numpy as np
    from kserve import InferOutput, InferRequest, InferResponse, Model
    from kserve.errors import InvalidInput as KServeInvalidInput

    from kit.serve.predictor import InvalidInput, Predictor

    class DigitsModel(Model):
        """Loads the artifact once; preprocess validates either protocol; predict calls the shared Predictor."""

        def __init__(self, model_dir: str | Path, name: str | None = None) -> None:
            from kit.train.artifact import verify

            self.model_dir = Path(model_dir)
            super().__init__(name or verify(self.model_dir).name)
            self.predictor: Predictor | None = None

        def load(self) -> bool:
            self.predictor = Predictor(self.model_dir)
            self.ready = True
            return self.ready

        def get_input_types(self) -> list[dict]:
            from kit.train.artifact import load_metadata

            features = load_metadata(self.model_dir).features
            return [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, features]}]

        def get_output_types(self) -> list[dict]:
            return [{"name": OUTPUT_NAME, "datatype": "INT64", "shape": [-1]}]

        def preprocess(self, payload, headers=None):
            """A validated float32 array, from a v1 dict or a v2 ``InferRequest``."""
            try:
                if isinstance(payload, InferRequest):
                    return self.predictor.validate(self._v2_array(payload))
                if not isinstance(payload, dict):
                    raise InvalidInput("expected a JSON object with an `instances` field")
                unknown = set(payload) - {"instances"}
                if unknown or "instances" not in payload:
                    raise InvalidInput(f"expected exactly the field `instances`, got {sorted(payload)}")
                instances = payload["instances"]
                if _has_bool_or_str(instances):
                    raise InvalidInput("instances must be numbers (no strings or booleans)")
                return self.predictor.validate(instances)
            except InvalidInput as error:
                raise KServeInvalidInput(str(error)) from None

        def _v2_array(self, request) -> np.ndarray:
            if len(request.inputs) != 1:
                raise InvalidInput(f"expected one input tensor {INPUT_NAME!r}, got {len(request.inputs)}")
            tensor = request.inputs[0]
            if tensor.name != INPUT_NAME:
                raise InvalidInput(f"unknown input {tensor.name!r}; this model's input is {INPUT_NAME!r}")
            shape = list(tensor.shape or [])
            if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
                raise InvalidInput(f"tensor shape {shape} is not concrete: a request gives every dimension "
                                   "as an integer >= 0 (-1 is for model metadata only)")
            if tensor.datatype not in NUMERIC_DATATYPES:
                raise InvalidInput(f"datatype {tensor.datatype} is not numeric; send FP32")
            try:
                return tensor.as_numpy()
            except (ValueError, TypeError) as error:
                raise InvalidInput(f"tensor data does not match shape {tensor.shape} and datatype "
                                   f"{tensor.datatype}: {str(error)[:120]}") from None

        def predict(self, array, headers=None):
            labels = self.predictor.predict_array(array)
            return {"predictions": labels}

        async def __call__(self, body, headers=None, verb=None):
            # Answer v2 requests in v2: KServe leaves encoding to the model's return type.
            if verb is None:
                response, response_headers = await super().__call__(body, headers)
            else:
                response, response_headers = await super().__call__(body, headers, verb)
            if isinstance(body, InferRequest):
                labels = np.asarray(response["predictions"], dtype=np.int64)
                output = InferOutput(name=OUTPUT_NAME, shape=list(labels.shape), datatype="INT64",
                                     data=labels.tolist())
                response = InferResponse(response_id=body.id or "", model_name=self.name,
                                         model_version=self.predictor.metadata.version, infer_outputs=[output])
            return response, response_headers

    return DigitsModel


def make_oip_class():
    """The smallest ``kserve.Model`` for the digits artifact over the Open Inference Protocol (v2 only):
    ``load`` builds the kit's :class:`~kit.serve.predictor.Predictor` and sets ``ready``; ``predict`` takes
    an ``InferRequest`` and answers an ``InferResponse`` with one INT64 tensor ``label``. Exercise 08.2's
    reference answer, written as a learner would (no input checks: :func:`make_model_class` has them)."""
    from kserve import InferOutput, InferRequest, InferResponse, Model
    from kserve.utils.utils import generate_uuid

    from kit.serve.predictor import Predictor

    class DigitsOIP(Model):
        def __init__(self, name: str, model_dir: str) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.predictor: Predictor | None = None

        def load(self) -> bool:
            self.predictor = Predictor(self.model_dir)
            self.ready = True
            return self.ready

        def predict(self, payload: InferRequest, headers=None) -> InferResponse:
            assert self.predictor is not None, "load() first"
            pixels = payload.inputs[0].as_numpy()
            labels = self.predictor.predict(pixels)
            output = InferOutput(name="label", shape=[len(labels)], datatype="INT64", data=labels)
            return InferResponse(response_id=payload.id or generate_uuid(), model_name=self.name,
                                 infer_outputs=[output])

    return DigitsOIP


def _has_bool_or_str(value) -> bool:
    if isinstance(value, (bool, str)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_bool_or_str(item) for item in value)
    return False


def _bind_loopback(host: str) -> None:
    """Make KServe's REST server bind ``host`` instead of its hard-coded 0.0.0.0 (kserve 0.20)."""
    import kserve.model_server
    from kserve.protocol.rest.server import RESTServer

    class LoopbackRESTServer(RESTServer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host

    kserve.model_server.RESTServer = LoopbackRESTServer


def _install_kit_http_rules(app) -> None:
    """The kit's body limit and short 404/405/422 errors on KServe's FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from kit.serve import api

    app.add_middleware(api.BodyLimit, max_bytes=api.MAX_BODY_BYTES)

    async def invalid_request(_, exc):
        return api.error(422, api.describe_validation(exc))

    async def http_error(_, exc):
        return api.error(exc.status_code, str(exc.detail))

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kit.serve.kserve_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, default=versions.PORTS["kserve"])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (in a pod: 0.0.0.0)")
    parser.add_argument("--name", default=None, help="model name in the URL (default: the artifact's)")
    parser.add_argument("--model-class", default=None,
                        help="a cloudpickled kserve.Model subclass to serve instead, built as cls(name, model_dir)")
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported; it must not see ours
    import kserve
    import kserve.model_server

    _bind_loopback(args.host)
    _install_kit_http_rules(kserve.model_server.app)
    if args.model_class:
        import cloudpickle

        with open(args.model_class, "rb") as file:  # written by this user's kernel (kserve_server)
            model = cloudpickle.load(file)(args.name or "digits", args.model_dir)
    else:
        model = make_model_class()(args.model_dir, args.name)
    model.load()
    kserve.ModelServer(http_port=args.port, workers=1, enable_grpc=False, enable_latency_logging=False,
                       grace_period=2).start([model])


def kserve_server(model_dir: str | Path, port: int | None = None, name: str | None = None,
                  model_class: type | None = None) -> ServerProcess:
    """The KServe model server as a loopback child process (not started: ``start()`` or ``with``).

    ``model_class``: serve this ``kserve.Model`` subclass (built as ``model_class(name, model_dir)``) instead
    of the kit's; it is cloudpickled into the server's own directory, removed with its log by ``stop()``."""
    port = port or free_port()
    args = ["--model-dir", str(model_dir), "--port", str(port)] + (["--name", name] if name else [])
    if model_class is None:
        return ServerProcess("kit.serve.kserve_model", args, port=port, ready_path="/v2/health/ready", name="kserve")
    import cloudpickle

    directory = Path(tempfile.mkdtemp(prefix="kit-kserve-"))
    pickled = directory / "model_class.pkl"
    module = sys.modules.get(model_class.__module__)
    by_value = module is not None and model_class.__module__ != "__main__" and not model_class.__module__.startswith(
        "kit.")  # a notebook's classes are pickled by value anyway; a learner's own module may not be importable
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        pickled.write_bytes(cloudpickle.dumps(model_class))
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    return ServerProcess("kit.serve.kserve_model", [*args, "--model-class", str(pickled)], port=port,
                         ready_path="/v2/health/ready", name="kserve", _log_dir=directory)


def v2_request(instances: list[list[float]]) -> dict:
    """The Open Inference Protocol v2 body for ``instances`` (one FP32 tensor named ``pixels``)."""
    flat = [float(x) for row in instances for x in row]
    return {"inputs": [{"name": INPUT_NAME, "shape": [len(instances), len(instances[0]) if instances else 0],
                        "datatype": "FP32", "data": flat}]}


def client_infer(base_url: str, instances: list[list[float]], model_name: str = "digits") -> list[int]:
    """Predict through KServe's own v2 client (``kserve.InferenceRESTClient``); return the labels."""
    import numpy as np
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    from kit.serve.loadgen import run_sync

    tensor = InferInput(name=INPUT_NAME, shape=[len(instances), len(instances[0])], datatype="FP32")
    tensor.set_data_from_numpy(np.asarray(instances, dtype=np.float32), binary_data=False)
    request = InferRequest(model_name=model_name, infer_inputs=[tensor])

    async def call():
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            return await client.infer(base_url, request, model_name=model_name)
        finally:
            await client.close()

    response = run_sync(call())
    return response.outputs[0].as_numpy().tolist()


if __name__ == "__main__":
    main()
