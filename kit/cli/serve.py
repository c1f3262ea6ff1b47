"""``python -m kit serve``: serve a trained model's artifact with one of the kit's servers.

::

    python -m kit serve --server ray                 # Ray Serve on 127.0.0.1:8000
    python -m kit serve --server kserve --port 8080  # KServe model server (v1 and v2 protocol)
    python -m kit serve --server baseline --model-dir DIR

The model directory defaults to the standard location training writes to
(``python -m kit train``, stages 03-05). The artifact is checked (metadata and the SHA-256
of the weights) before any server starts: a missing or altered model is exit 1 with the fix.
The server runs in the foreground, on loopback, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from kit import versions
from kit.config.train import standard_model_dir
from kit.train import artifact

SERVERS = ("ray", "kserve", "baseline")
DEFAULT_PORTS = {"ray": versions.PORTS["ray-serve"], "kserve": versions.PORTS["kserve"],
                 "baseline": versions.PORTS["baseline"]}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=SERVERS, required=True)
    parser.add_argument("--model-dir", type=Path, default=None,
                        help=f"the trained model (default: {standard_model_dir()})")
    parser.add_argument("--port", type=int, default=None,
                        help="port on 127.0.0.1 (default: ray 8000, kserve 8080, baseline 8090)")
    return parser


def serve_ray(model_dir: Path, port: int) -> None:
    """The Ray Serve app on the local Ray until Ctrl-C; then Serve and Ray stop."""
    from kit.config.serve import ServeConfig
    from kit.machine import local_ray
    from kit.serve import rayserve

    local_ray.start()
    try:
        app = rayserve.deploy(ServeConfig(model_dir=str(model_dir)), port=port)
        print(f"Ray Serve: POST {app.predict_url}  (Ctrl-C stops)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        rayserve.shutdown(port)
        local_ray.stop()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    model_dir = (args.model_dir or standard_model_dir()).resolve()
    metadata = artifact.verify(model_dir)  # a KitError (message + fix) before any server starts
    port = args.port or DEFAULT_PORTS[args.server]
    print(f"serving {metadata.name!r} (accuracy {metadata.accuracy}, weights {metadata.weights_sha256[:12]}) "
          f"from {model_dir} with {args.server} on 127.0.0.1:{port}", flush=True)
    if args.server == "ray":
        serve_ray(model_dir, port)
    elif args.server == "kserve":
        from kit.serve import kserve_model

        kserve_model.main(["--model-dir", str(model_dir), "--port", str(port)])
    else:
        from kit.serve import baseline

        with contextlib.suppress(KeyboardInterrupt):
            baseline.main(["--model-dir", str(model_dir), "--port", str(port)])
    return 0
