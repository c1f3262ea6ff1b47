"""``kubectl apply --dry-run=server``: what only the API server can check (CEL rules, admission
webhooks, the namespace's Pod Security level), as problems like the offline checks'."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from kit.k8s.live.kubectl import Runner
from kit.k8s.validation.problems import Problem


def server_dry_run(paths: Sequence[str], *, kubectl: str = "kubectl", run: Runner = subprocess.run,
                   timeout: float = 60.0) -> list[Problem]:
    """``kubectl apply --dry-run=server`` on each path; one problem when no cluster is reachable.

    The API server adds what offline checks cannot: CEL rules, admission webhooks
    and the cluster's own Pod Security level.
    """
    if shutil.which(kubectl) is None:
        return [Problem("-", "-", "", f"server dry-run: {kubectl} not found on PATH")]
    try:
        probe = run([kubectl, "version", "-o", "json", "--request-timeout=5s"],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        probe = None
    if probe is None or probe.returncode != 0 or '"serverVersion"' not in (probe.stdout or ""):
        detail = _last_line(probe.stderr if probe is not None else "") or "timed out"
        return [Problem("-", "-", "", f"server dry-run: no cluster reachable ({kubectl}: {detail})")]
    problems = []
    for path in paths:
        command = [kubectl, "apply", "--dry-run=server", "-f", path]
        if Path(path).is_dir():
            command.append("--recursive")
        result = run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
            problems += [Problem(path, "-", "", f"server dry-run: {line}") for line in lines or ["failed"]]
    return problems


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


