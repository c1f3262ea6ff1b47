"""What a notebook cell shows of Ray's own messages when the kit runs Ray quietly.

With ``log_to_driver`` off, the only Ray lines that still reach a cell are the raylet's error reports
(``ray/_private/worker.py``, ``listen_error_messages`` -> ``print_to_stdstream``): a task retried, a
worker that died. They are real events, so the kit keeps them, but as one plain sentence each: no ANSI
colours, no remote traceback (the exception that reaches the cell carries it), no worker address, port
or PID, and no file paths of this machine.
"""

from __future__ import annotations

import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Where a report's machine details begin ("RayTask ID: … Worker IP address: 10.0.0.5 Worker port: 4321 …").
_DETAILS = re.compile(r"\s(?:RayTask ID|Task ID|Lease ID|Worker ID|Actor ID|Node ID|Job ID|Worker IP address|"
                      r"Worker exit type):")
_ADDRESS = re.compile(r"\s*\((?:pid=\d+)?(?:, )?(?:ip=[0-9.]+)?\)")
_ORIGINAL = "_kit_original_print_to_stdstream"


def summarize(message: str) -> str:
    """One plain line of a raylet error report."""
    first = _ANSI.sub("", message).strip().splitlines()[0] if message.strip() else ""
    return _ADDRESS.sub("", _DETAILS.split(first)[0]).strip()


def quiet_error_messages() -> None:
    """Route the raylet's error reports through :func:`summarize` in this process (idempotent)."""
    from ray._private import worker

    original = getattr(worker, _ORIGINAL, None) or worker.print_to_stdstream

    def print_summary(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        if data.get("pid") == "raylet":
            lines = [line for line in (summarize(text) for text in data.get("lines", [])) if line]
            print(*(f"(ray) {line}" for line in lines), sep="\n")
            return
        original(data, ignore_prefix=ignore_prefix)

    setattr(worker, _ORIGINAL, original)
    worker.print_to_stdstream = print_summary
