"""The notebook's side of a Ray cluster that is not on its machine (PROFILE='kind' or 'cluster').

Three settings, all environment variables (a JupyterHub profile or the pod spec sets them once):

- ``RAY_ADDRESS`` (Ray's own): the head's Ray Client address, ``ray://HOST:10001``.
- ``KIT_SHARED_STORAGE``: a directory mounted at this same path on the notebook and on every Ray
  node (a ReadWriteMany volume). Ray Train/Tune ``storage_path``, the data a Tune trial reads,
  the served model and each notebook's scratch files go there, never to the notebook's own disk.
- ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``: the cluster's token (Ray 2.60 has token auth on;
  KubeRay keeps it in a Secret).

:func:`connect` opens Ray Client and **ships the kit** as ``runtime_env={"py_modules": [kit]}``: the
nodes need the kit's third-party dependencies (torch, scikit-learn: the kit's image, ``make image``)
but not the kit's own code, so a notebook's edits to ``kit/`` reach the cluster as they are.
Served HTTP endpoints are the head's host (the host of ``RAY_ADDRESS``, or ``KIT_SERVE_HOST``).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from kit import paths, versions
from kit.errors import KitError

ADDRESS_ENV = "RAY_ADDRESS"
STORAGE_ENV = versions.SHARED_STORAGE_ENV
SERVE_HOST_ENV = "KIT_SERVE_HOST"
DEFAULT_ADDRESS = "ray://127.0.0.1:10001"
#: How long a notebook waits for the cluster before it says so (Ray Client retries within it).
CONNECT_TIMEOUT_S = 60.0
#: The ``ray.get`` timeout the kit uses for short remote calls on a cluster.
GET_TIMEOUT_S = 120.0


class RayUnreachable(KitError, ConnectionError):
    """Ray Client could not reach the cluster's Ray."""


class StorageMissing(KitError, RuntimeError):
    """Work runs on a remote Ray cluster, but no shared storage is configured."""


def address() -> str:
    """The cluster's Ray Client address: ``$RAY_ADDRESS`` or a port-forwarded head on 127.0.0.1."""
    return os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def is_remote() -> bool:
    """True while this process drives Ray through Ray Client (a cluster that is not this machine)."""
    if "ray" not in sys.modules:
        return False
    from ray.util.client import ray as client_ray

    return bool(client_ray.is_connected())


def runtime_env() -> dict:
    """What every task and actor of the connection gets: the kit's code and the shared-storage setting."""
    kit_dir = paths.source_root() / "kit"
    env_vars = {key: os.environ[key] for key in (STORAGE_ENV,) if os.environ.get(key)}
    return {"py_modules": [str(kit_dir)], "excludes": ["__pycache__", "*.pyc"], "env_vars": env_vars}


def connect(where: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S):
    """Open Ray Client to ``where`` (default :func:`address`) with the kit shipped; return Ray's context.

    A token in ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH`` is sent with every call.
    """
    import ray

    from kit.machine import local_ray

    where = where or address()
    if not where.startswith("ray://"):
        raise RayUnreachable(f"RAY_ADDRESS={where!r} is not a Ray Client address",
                             fix="set RAY_ADDRESS to ray://HEAD_HOST:10001 (the head service's client port)")
    if os.environ.get("RAY_AUTH_TOKEN"):  # the token itself (a Secret as an env var): token mode, no file
        os.environ[local_ray.MODE_ENV] = "token"
    else:
        local_ray.enable_token_auth(create=False)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    began = time.monotonic()
    while True:
        try:
            return ray.init(address=where, runtime_env=runtime_env(), logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError) as error:
            if time.monotonic() - began < timeout_s and "authentication" not in str(error).lower():
                time.sleep(2.0)
                continue
            raise RayUnreachable(
                f"cannot reach Ray at {where} within {timeout_s:g} s: {error}",
                fix="check RAY_ADDRESS (ray://HEAD:10001; from a laptop `kubectl port-forward "
                    "svc/kit-raycluster-head-svc 10001:10001`) and the token (RAY_AUTH_TOKEN from the "
                    "cluster's auth Secret)",
            ) from error


def shared_dir(*parts: str, create: bool = True) -> Path:
    """A directory every Ray node and this notebook see at the same path.

    ``$KIT_SHARED_STORAGE`` when set; on a local Ray, the kit's work dir (the machine is the cluster);
    on a remote cluster without the setting, :class:`StorageMissing` (a path on the notebook's disk
    would not exist on the nodes).
    """
    root = os.environ.get(STORAGE_ENV)
    if not root:
        if is_remote():
            raise StorageMissing(
                "Ray runs on a remote cluster, but KIT_SHARED_STORAGE is not set: the nodes cannot see this "
                "notebook's disk", fix="mount a ReadWriteMany volume at the same path on the notebook and the "
                "Ray pods and set KIT_SHARED_STORAGE to that path")
        return paths.work_dir(*parts, create=create)
    path = Path(root).joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def scratch_dir(prefix: str) -> Path:
    """A new empty directory for one notebook's files (remove it at the end): on the shared storage
    when Ray is remote or shared storage is configured, else in the system temp dir."""
    if os.environ.get(STORAGE_ENV) or is_remote():
        return Path(tempfile.mkdtemp(prefix=prefix, dir=shared_dir("scratch")))
    return Path(tempfile.mkdtemp(prefix=prefix))


def shared_model_dir(model_dir: str | Path) -> Path:
    """``model_dir`` as the cluster's nodes can read it: itself when on the shared storage, else a copy there.

    The copy is named by the content's SHA-256, so a retrained model gets a new directory and the same
    model is copied once.
    """
    source = Path(model_dir).resolve()
    root = shared_dir("models").resolve()
    if source.is_relative_to(root.parent):
        return source
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise StorageMissing(f"no model files in {source}",
                             fix="train a model first (kit.train.artifact.ensure_trained)")
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(source)).encode())
        digest.update(path.read_bytes())
    target = root / f"{source.name}-{digest.hexdigest()[:12]}"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{source.name}-", dir=root))
        shutil.copytree(source, staging, dirs_exist_ok=True)
        os.replace(staging, target)
    return target


def serve_host() -> tuple[str, str]:
    """(host Serve's proxy binds to, host a client reaches it at): loopback locally, the head's on a cluster."""
    if not is_remote():
        return "127.0.0.1", "127.0.0.1"
    public = os.environ.get(SERVE_HOST_ENV) or urlparse(address()).hostname or "127.0.0.1"
    return "0.0.0.0", public  # the proxy must answer on the head's address, not only its loopback


def alive_nodes() -> list[dict]:
    """Ray's view of the live nodes."""
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def largest_node_cpus() -> float:
    """The CPUs of the biggest single node: the most one task can ask for and still be scheduled."""
    return max((node["Resources"].get("CPU", 0.0) for node in alive_nodes()), default=0.0)


def wait_for_nodes(nodes: int, cpus: float = 0.0, timeout_s: float = 120.0) -> list[dict]:
    """Wait until ``nodes`` live nodes with ``cpus`` CPUs in all have joined; raise on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = alive_nodes()
        total = sum(node["Resources"].get("CPU", 0.0) for node in alive)
        if len(alive) >= nodes and total >= cpus:
            return alive
        if time.monotonic() > deadline:
            raise RayUnreachable(f"{len(alive)} live node(s) with {total:g} CPU(s) after {timeout_s:g} s; "
                                 f"expected {nodes} with {cpus:g}", fix="read the Ray nodes' logs")
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    """``python -m kit.machine.ray_cluster wait --nodes N``: connect to RAY_ADDRESS and wait for N nodes."""
    import ray

    parser = argparse.ArgumentParser(prog="python -m kit.machine.ray_cluster")
    parser.add_argument("command", choices=["wait"])
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--cpus", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    began = time.monotonic()
    connect(timeout_s=args.timeout)
    try:
        alive = wait_for_nodes(args.nodes, args.cpus, max(1.0, args.timeout - (time.monotonic() - began)))
    finally:
        ray.shutdown()
    print(f"{len(alive)} Ray nodes up at {address()}: " + ", ".join(n["NodeManagerAddress"] for n in alive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
