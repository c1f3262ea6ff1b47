"""Start, reuse and stop a local Ray sized for this machine.

Every notebook calls :func:`start` (safe to re-run) and :func:`stop` in its last cell. The first
notebook of a Jupyter server starts Ray; every next one attaches to it in about a second, and it
stops with the server (:mod:`kit.machine.ray_session`). Ray is sized from the container's limits
(:mod:`kit.machine.resources`: the cgroup this process is in, so 2 GiB on Binder), keeps its
object store small, prestarts no idle workers and runs no autoscaler, so that a notebook's whole
process tree fits a 1.5 GiB budget; it binds the dashboard to loopback only when asked, and runs
with token authentication on: Ray's Jobs API runs arbitrary code by design (CVE-2023-48022,
"ShadowRay"), so an open local Ray is an open door on a shared JupyterHub."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import secrets
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.machine import ray_output, ray_session, resources
from kit.machine.ray_cluster import RayUnreachable  # noqa: F401 - raised by connect_cluster, caught by callers
from kit.machine.ray_session import RaySessionError

log = logging.getLogger(__name__)


#: Object store cap: small data only in this kit; Ray's own minimum is 75 MiB.
OBJECT_STORE_BYTES = 128 * resources.MiB
TOKEN_ENV = "RAY_AUTH_TOKEN_PATH"
MODE_ENV = "RAY_AUTH_MODE"
TEMP_ENV = "KIT_RAY_TMPDIR"
#: The raylet waits a fixed 15 s for its agents (Python, importing Ray) to publish their ports and then aborts; on a
#: loaded 1-2 core machine they can need longer (measured 16-30 s at load 8), so a failed start is retried.
START_ATTEMPTS = 3


@dataclass(frozen=True)
class RayInfo:
    """What :func:`start` gave you."""

    address: str
    cpus: int
    object_store_bytes: int
    dashboard_url: str | None
    token_path: Path
    temp_dir: Path
    reused: bool
    start_seconds: float
    remote: bool = False
    nodes: int = 1
    attached: bool = False  # joined the Ray an earlier notebook of this Jupyter server started

    def __str__(self) -> str:
        if self.remote:
            return (f"Ray cluster at {self.address}: {self.nodes} node(s), {self.cpus} CPU(s), token auth on, "
                    "the kit shipped to the nodes (runtime_env py_modules)")
        dash = self.dashboard_url or "off (start(dashboard=True) to open it)"
        verb = ("reused" if self.reused else
                f"attached in {self.start_seconds:.1f} s (started by an earlier notebook; it stops with Jupyter)"
                if self.attached else f"started in {self.start_seconds:.1f} s")
        return (
            f"Local Ray {verb}: {self.cpus} CPU(s), object store "
            f"{self.object_store_bytes // resources.MiB} MiB, token auth on, dashboard {dash}"
        )


def temp_root() -> Path:
    """Where the kit's Ray sessions live: ``$KIT_RAY_TMPDIR`` or a short per-user path."""
    override = os.environ.get(TEMP_ENV)
    return Path(override) if override else Path(tempfile.gettempdir()) / f"kit-ray-{getpass.getuser()}"


def default_temp_dir() -> Path:
    """The directory of the Ray this process attaches to: one per Jupyter server (:mod:`kit.machine.ray_session`).

    Kept short on purpose: Ray's unix sockets live below it and must stay under ~107 characters.
    """
    return ray_session.directory_for(temp_root(), ray_session.owner_pid())


def token_path() -> Path:
    """Where the Ray auth token lives: ``$RAY_AUTH_TOKEN_PATH`` or Ray's default ``~/.ray/auth_token``."""
    return Path(os.environ.get(TOKEN_ENV) or Path.home() / ".ray" / "auth_token")


def ensure_token(path: Path | None = None) -> Path:
    """Create the token file if missing, readable by its owner only (Ray writes it world-readable)."""
    path = path or token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists() or not path.read_text().strip():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    return path


def token_is_private(path: Path | None = None) -> bool:
    """True when the token file exists and neither group nor others may read it."""
    path = path or token_path()
    return path.exists() and not stat.S_IMODE(path.stat().st_mode) & 0o077


def enable_token_auth(create: bool = True) -> Path:
    """Turn Ray token authentication on explicitly for this process and the Ray it starts.

    ``create=False`` (a cluster's token): use the token file as it is, never write one.
    """
    path = ensure_token() if create else token_path()
    changed = os.environ.get(MODE_ENV) != "token" or os.environ.get(TOKEN_ENV) != str(path)
    os.environ[MODE_ENV] = "token"
    os.environ[TOKEN_ENV] = str(path)
    if changed and "ray" in sys.modules:
        # Ray reads RAY_AUTH_MODE once, at import: refresh its cached config as Ray's own
        # token setup does, or this driver would talk to its token-protected GCS without a token.
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]  # Cython, no stub

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    return path


def object_store_bytes(memory_bytes: int) -> int:
    """Object store size: a tenth of the memory limit, capped at :data:`OBJECT_STORE_BYTES`."""
    return int(max(80 * resources.MiB, min(OBJECT_STORE_BYTES, memory_bytes // 10)))


#: Ray internals that cost memory and buy a notebook nothing (issue 11: Binder's 2 GiB). Ray 2.60,
#: src/ray/common/ray_config_def.h: ``prestart_worker_first_driver`` (default true) starts one idle
#: Python worker per CPU when the first driver connects, ~60 MiB each before any task needs it.
SYSTEM_CONFIG: dict[str, Any] = {"prestart_worker_first_driver": False}
#: glibc's per-thread malloc arenas (mallopt(3), M_ARENA_MAX): Ray's many-threaded workers keep up
#: to 8 per core; 2 saves ~20 MiB per torch worker. Inherited by every process Ray starts.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


def ray_memory_bytes(memory_bytes: int, store: int) -> int:
    """Ray's logical ``memory`` resource: the container's limit less the object store (Ray would take the host's)."""
    return max(store, memory_bytes - store)


def start(num_cpus: int | None = None, dashboard: bool = False, quiet: bool = True) -> RayInfo:
    """Attach to this Jupyter server's local Ray, starting it sized for this container if none runs yet.

    ``quiet`` (the default) keeps Ray's own log lines and its workers' stdout out of the notebook: a task's or
    a training run's error still reaches the cell as the exception it raises, with the remote traceback.
    ``quiet=False`` streams every worker's output (``log_to_driver``) and Ray's INFO logs.

    Re-running the cell reuses this kernel's connection; the next notebook attaches to the same Ray
    (:mod:`kit.machine.ray_session`), so only the first stage of a session waits for Ray to start.
    """
    import ray

    _no_auto_init(ray)
    if ray.is_initialized():  # this kernel's local Ray, or the cluster it connected to
        from kit.machine import ray_cluster

        if ray_cluster.is_remote() or ray_session.find(temp_root()) is not None:
            return _info(ray, token_path(), default_temp_dir(), reused=True, seconds=0.0)
        log.warning("The local Ray this kernel used has stopped; starting a new one ...")
        ray.shutdown()
    path = enable_token_auth()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)
    root = temp_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    began = time.perf_counter()
    session = ray_session.find(root)
    attached = session is not None
    if session is not None and dashboard and not session.dashboard:
        raise RaySessionError("this Jupyter server's Ray was started without its dashboard",
                              fix="Restart the Jupyter server (or the kernel that started Ray), then run "
                                  "start(dashboard=True) in the first notebook you open.")
    if session is None:
        session = _launch(root, num_cpus, dashboard)
    if quiet:
        ray_output.quiet_error_messages()
    ray.init(address=session.gcs_address, configure_logging=True,
             logging_level=logging.ERROR if quiet else logging.INFO,
             log_to_driver=not quiet)
    return _info(ray, path, session.directory, reused=False, seconds=time.perf_counter() - began,
                 attached=attached)


def _no_auto_init(ray) -> None:
    """Turn off Ray's auto-start: a ``.remote()`` call after Ray stopped would otherwise start a second, default
    Ray (sized for the host, not the container, no token) in this kernel: it fails instead, saying to run start().

    Ray reads ``RAY_ENABLE_AUTO_CONNECT`` once, at import (``ray/_private/auto_init_hook.py``).
    """
    os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
    from ray._private import auto_init_hook

    auto_init_hook.enable_auto_connect = False


def _launch(root: Path, num_cpus: int | None, dashboard: bool) -> ray_session.Session:
    """Start the session Ray sized from the container's limits; retry when Ray was slow to come up."""
    limits = resources.detect()
    store = object_store_bytes(limits.memory_bytes)
    options: dict[str, Any] = dict(
        num_cpus=num_cpus or limits.cpu_slots,
        num_gpus=limits.gpus,
        object_store_memory=store,
        memory=ray_memory_bytes(limits.memory_bytes, store),
        _system_config=dict(SYSTEM_CONFIG),
        dashboard_host="127.0.0.1",
    )
    log.info("Starting local Ray with %s CPU(s): about 10 s on 2 cores, once per Jupyter server ...",
             options["num_cpus"])
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return ray_session.launch(root, options, dashboard)
        except RaySessionError as error:
            # See START_ATTEMPTS: the raylet gave up on its agents. Clean up, retry.
            if "timed out during startup" not in str(error) or attempt == START_ATTEMPTS:
                raise
            log.warning("Ray was slow to start on a busy machine; retrying (%d of %d) ...", attempt + 1, START_ATTEMPTS)
            _wait_for_ray_processes(ray_session.directory_for(root, ray_session.owner_pid()))
    raise AssertionError("unreachable")


def _info(ray, path: Path, temp_dir: Path, reused: bool, seconds: float, attached: bool = False) -> RayInfo:
    from kit.machine import ray_cluster

    remote = ray_cluster.is_remote()
    nodes = [n for n in ray.nodes() if n["Alive"]]
    store = int(sum(n["Resources"].get("object_store_memory", 0) for n in nodes))
    dash = ray.get_dashboard_url() if hasattr(ray, "get_dashboard_url") and not remote else None
    return RayInfo(
        address=ray_cluster.address() if remote else ray.get_runtime_context().gcs_address,
        cpus=int(ray.cluster_resources().get("CPU", 0)),
        object_store_bytes=store,
        dashboard_url=f"http://{dash}" if dash else None,
        token_path=path,
        temp_dir=temp_dir,
        reused=reused,
        start_seconds=seconds,
        remote=remote,
        nodes=len(nodes),
        attached=attached,
    )


def stop(remove_logs: bool = True) -> None:
    """Disconnect this kernel from Ray; stop Ray itself when this process started it for itself.

    A notebook's Ray belongs to the Jupyter server and stops with it (:mod:`kit.machine.ray_session`):
    the next notebook attaches in about a second. Serve applications this kernel deployed are shut
    down first, since Serve's actors are detached and would outlive the notebook.
    """
    import ray

    from kit.machine import ray_cluster

    if ray.is_initialized():
        if "ray.serve" in sys.modules and not ray_cluster.is_remote():
            from ray import serve

            serve.shutdown()
        ray.shutdown()
    temp_dir = default_temp_dir()
    session = ray_session.find(temp_root())
    if session is None or not session.owned_by_this_process:
        return
    ray_session.stop(session)
    _wait_for_ray_processes(temp_dir)
    if remove_logs and temp_dir.exists():
        shutil.rmtree(temp_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # the shared root goes once no session is left in it
        temp_dir.parent.rmdir()


def ray_processes(temp_dir: Path | None = None) -> list:
    """Processes that belong to a local Ray started under ``temp_dir`` (default: the kit's)."""
    import psutil

    marker = f"{temp_dir or default_temp_dir()}{os.sep}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if marker in cmdline:
            found.append(proc)
    return found


def _wait_for_ray_processes(temp_dir: Path, timeout: float = 10.0) -> None:
    import psutil

    procs = ray_processes(temp_dir)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:  # Ray normally exits by itself; never leave an orphan behind
        proc.kill()
    psutil.wait_procs(alive, timeout=5)


def connect_cluster(address: str | None = None) -> RayInfo:
    """Connect to a remote Ray cluster through Ray Client with the kit shipped (:mod:`kit.machine.ray_cluster`)."""
    import ray

    from kit.machine import ray_cluster

    if ray.is_initialized():
        return _info(ray, token_path(), default_temp_dir(), reused=True, seconds=0.0)
    began = time.perf_counter()
    ray_cluster.connect(address)
    return _info(ray, token_path(), default_temp_dir(), reused=False, seconds=time.perf_counter() - began)


def for_profile(profile_name: str, dashboard: bool = False) -> RayInfo:
    """Local Ray for PROFILE='local'; the cluster's Ray (Ray Client at ``$RAY_ADDRESS``) for 'kind' and 'cluster'."""
    from kit.config import profile

    if profile.resolve(profile_name).on_kubernetes:
        return connect_cluster()
    return start(dashboard=dashboard)
