"""Where a learner looks when a Ray task failed: Ray's state API and its log API (``ray.util.state``).

Both ask the Ray dashboard's state server, so the local Ray must run with its dashboard
(``kit.machine.local_ray.start(dashboard=True)``). Task events reach it about a second after they happen,
so :func:`failed_tasks` polls until the failure is listed. On a cluster the same calls work through the head's
dashboard, and ``python -m kit cluster diagnostics`` gathers pods' ``kubectl logs`` and events.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kit.errors import KitError

#: The fields of a task's state worth showing (``ray.util.state.common.TaskState``).
FIELDS = ("task_id", "name", "state", "error_type", "node_id", "worker_id", "attempt_number")


def api_address() -> str | None:
    """The GCS address of the Ray this process is connected to (None: let Ray find one).

    Without it the state API looks for "the" local Ray (``ray/_private/services.py``,
    ``canonicalize_bootstrap_address_or_die``): the last ``ray start`` (the kit does not use it), else the one GCS
    process on this machine, and fails with "Found multiple active Ray instances" when two local Rays run (another
    Jupyter server's, a test's). With it, Ray reads this Ray's own dashboard URL from its GCS."""
    import ray

    from kit.machine import ray_cluster

    if not ray.is_initialized() or ray_cluster.is_remote():
        return None
    return ray.get_runtime_context().gcs_address


def failed_tasks(name: str | None = None, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Failed tasks (of function ``name`` when given) as ``list_tasks`` reports them, once Ray has recorded one."""
    from ray.util.state import list_tasks

    address = api_address()
    filters: list[tuple[str, str, Any]] = [("state", "=", "FAILED")]
    if name:
        filters.append(("name", "=", name))
    deadline = time.monotonic() + timeout
    while True:
        tasks = list_tasks(address=address, filters=filters, detail=True, raise_on_missing_output=False)
        if tasks or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not tasks:
        raise KitError(f"no failed task{f' named {name!r}' if name else ''} after {timeout:.0f} s",
                       fix="did the task run and raise? (ray.get() on its ref raises when it did)")
    rows = []
    for task in tasks:
        row = {field: getattr(task, field, None) for field in FIELDS}
        message = getattr(task, "error_message", None) or ""
        row["error"] = message.strip().splitlines()[-1] if message.strip() else ""
        rows.append(row)
    return rows


def task_log(task_id: str, tail: int = 20, timeout: float = 15.0) -> list[str]:
    """The last ``tail`` lines the task printed (stdout and stderr of its worker, for that task only).

    Where its output is logged reaches the state server with the task's events, sometimes after its FAILED state:
    until then ``get_log`` answers "Could not find log file", so this polls (KitError after ``timeout``)."""
    from ray.util.state import get_log
    from ray.util.state.exception import RayStateApiException

    address = api_address()
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines: list[str] = []
            for suffix in ("out", "err"):
                for chunk in get_log(address=address, task_id=task_id, suffix=suffix, tail=tail):
                    lines.extend(line for line in chunk.splitlines() if line.strip())
            return lines[-tail:]
        except RayStateApiException as error:
            if "doesn't exist" in str(error):  # the node's agent has no HTTP server: see _lines_from_files
                from_files = _lines_from_files(task_id, address)
                if from_files is not None:
                    return from_files[-tail:]
            if "Could not find log file" not in str(error):
                raise
            if time.monotonic() > deadline:
                raise KitError(f"Ray has no log of task {task_id} after {timeout:.0f} s: {str(error)[:200]}",
                               fix="was the task's worker started with log recording? see ray.util.state.list_logs()"
                               ) from None
        time.sleep(0.5)


def _lines_from_files(task_id: str, address: str | None) -> list[str] | None:
    """The task's output read from its worker's log files at the byte ranges the state API names (``task_log_info``):
    what the node's dashboard agent would have served. Local Ray only (None elsewhere or before the range is known).

    Why: the agent serves logs over HTTP on a fixed port (52365, ``ray_constants.DEFAULT_DASHBOARD_AGENT_LISTEN_PORT``);
    when another local Ray holds it, this Ray's agent runs without it (``ray/dashboard/agent.py``: "the HTTP service
    will be disabled"), and ``get_log`` answers "Agent for node id ... doesn't exist"."""
    import ray
    from ray.util.state import list_tasks

    node = getattr(ray._private.worker, "_global_node", None)
    if node is None:
        return None
    attempts = list_tasks(address=address, filters=[("task_id", "=", task_id)], detail=True,
                          raise_on_missing_output=False)
    info = (attempts[-1].task_log_info or {}) if attempts else {}
    lines: list[str] = []
    for stream in ("stdout", "stderr"):
        name, start, end = info.get(f"{stream}_file"), info.get(f"{stream}_start"), info.get(f"{stream}_end")
        if not name or start is None or end is None or int(end) < 0:
            return None
        with open(Path(node.get_logs_dir_path()) / name, "rb") as handle:
            handle.seek(int(start))
            text = handle.read(int(end) - int(start)).decode(errors="replace")
        lines.extend(line for line in text.splitlines() if line.strip())
    return lines


#: The name :func:`fail_on_purpose` gives its task (``list_tasks`` filters on it).
FAILING_TASK = "kit_fails_on_purpose"


def start_failing_task(marker: str, name: str = FAILING_TASK) -> Any:
    """Submit a Ray task that prints ``marker`` and raises ValueError; return its ``ObjectRef`` (not waited for)."""
    import ray

    @ray.remote(max_retries=0)
    def fails(text: str) -> None:
        print(text, flush=True)
        raise ValueError(f"{text} (raised in the task)")

    return fails.options(name=name).remote(marker)


def confirm_failed(ref: Any, name: str = FAILING_TASK) -> str:
    """``ray.get`` the task of :func:`start_failing_task`: return its name once the exception came back."""
    import ray

    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError:
        return name
    raise KitError(f"task {name} did not fail", fix="it raises ValueError on purpose: is this Ray patched?")


def fail_on_purpose(marker: str, name: str = FAILING_TASK) -> str:
    """Run a Ray task that prints ``marker`` and raises ValueError; return its name once ``ray.get`` raised.

    What a learner's failing task looks like from the driver: the exception comes back with the remote traceback;
    :func:`failed_tasks` and :func:`task_log` then find it in Ray's state and log APIs."""
    return confirm_failed(start_failing_task(marker, name), name)
