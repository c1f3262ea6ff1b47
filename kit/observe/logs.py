"""Where a learner looks when a Ray task failed: Ray's state API and its log API (``ray.util.state``).

Both ask the Ray dashboard's state server, so the local Ray must run with its dashboard
(``kit.machine.local_ray.start(dashboard=True)``). Task events reach it about a second after they happen,
so :func:`failed_tasks` polls until the failure is listed. On a cluster the same calls work through the head's
dashboard, and ``python -m kit cluster diagnostics`` gathers pods' ``kubectl logs`` and events.
"""

from __future__ import annotations

import time
from typing import Any

from kit.errors import KitError

#: The fields of a task's state worth showing (``ray.util.state.common.TaskState``).
FIELDS = ("task_id", "name", "state", "error_type", "node_id", "worker_id", "attempt_number")


def failed_tasks(name: str | None = None, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Failed tasks (of function ``name`` when given) as ``list_tasks`` reports them, once Ray has recorded one."""
    from ray.util.state import list_tasks

    filters: list[tuple[str, str, Any]] = [("state", "=", "FAILED")]
    if name:
        filters.append(("name", "=", name))
    deadline = time.monotonic() + timeout
    while True:
        tasks = list_tasks(filters=filters, detail=True, raise_on_missing_output=False)
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


def task_log(task_id: str, tail: int = 20) -> list[str]:
    """The last ``tail`` lines the task printed (stdout and stderr of its worker, for that task only)."""
    from ray.util.state import get_log

    lines: list[str] = []
    for suffix in ("out", "err"):
        for chunk in get_log(task_id=task_id, suffix=suffix, tail=tail):
            lines.extend(line for line in chunk.splitlines() if line.strip())
    return lines[-tail:]
