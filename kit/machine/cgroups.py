"""Run a command inside a fresh cgroup with a memory (and optionally CPU) limit, as Binder does.

Binder gives a learner about 2 GiB and one CPU; a notebook that needs more is OOM-killed there.
:func:`create` makes a child of this process's own cgroup (v1: one per controller; v2: one
directory), sets ``memory.limit_in_bytes`` + ``memory.memsw.limit_in_bytes`` (v1) or
``memory.max`` + ``memory.swap.max = 0`` (v2) so swap cannot hide an overrun, and optionally a CPU
quota. :meth:`Cgroup.command` wraps a command so that its first process joins the cgroup before it
``exec``\\ s; every process it starts (Jupyter kernel, Ray's GCS, raylet, workers) inherits it.
Needs root, or a delegated cgroup; :func:`unavailable` says why not. Kernel interface:
https://docs.kernel.org/admin-guide/cgroup-v1/memory.html and .../cgroup-v2.html.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import KitError
from kit.machine import resources

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
OFF = ("", "0", "off", "none", "no", "false")


class CgroupUnavailable(KitError):
    """This machine does not let the kit create a cgroup (not root, or no writable hierarchy)."""


def parse_size(text: str) -> int | None:
    """``"2G"``, ``"1.5GiB"``, ``"512M"`` or bytes -> bytes; None for ``off``/``0``/empty (no limit)."""
    if text.strip().lower() in OFF:
        return None
    match = _SIZE.match(text)
    if not match:
        raise KitError(f"cannot read the memory size {text!r}", fix="write it like 2G, 1536M or 2147483648, or off")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def gib(size: int) -> str:
    """``2147483648`` -> ``"2 GiB"``; ``1610612736`` -> ``"1.5 GiB"``."""
    return f"{size / resources.GiB:.2f}".rstrip("0").rstrip(".") + " GiB"


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_keys(path: Path) -> dict[str, int]:
    """``key value`` lines (``memory.oom_control``, ``memory.events``) -> dict."""
    keys = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                keys[name] = int(value)
    return keys


@dataclass
class Cgroup:
    """A cgroup this process created: one directory per v1 controller, or one v2 directory."""

    name: str
    version: int
    dirs: dict[str, Path]  # controller ("memory", "cpu") -> directory; v2: both the same directory
    memory_bytes: int | None
    cpus: float | None
    removed: bool = field(default=False)

    @property
    def procs_files(self) -> list[Path]:
        return sorted({d / "cgroup.procs" for d in self.dirs.values()})

    def command(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` prefixed so that its process joins this cgroup, then ``exec``\\ s it (children inherit)."""
        files = [str(f) for f in self.procs_files]
        return [sys.executable, "-m", "kit.machine.cgroups", "exec", *files, "--", *cmd]

    def attach(self, pid: int) -> None:
        """Move ``pid`` (not its existing children) into this cgroup."""
        for procs in self.procs_files:
            _write(procs, str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in procs.read_text().split()}
        return found

    def oom_kills(self) -> int:
        """Processes the kernel OOM-killed in this cgroup (v1 ``memory.oom_control``, v2 ``memory.events``)."""
        memory = self.dirs.get("memory")
        if memory is None:
            return 0
        if self.version == 2:
            return _read_keys(memory / "memory.events").get("oom_kill", 0)
        return _read_keys(memory / "memory.oom_control").get("oom_kill", 0)

    def limit_hits(self) -> int:
        """How often usage reached the limit (v1 ``memory.failcnt``, v2 ``memory.events`` ``max``)."""
        memory = self.dirs.get("memory")
        if memory is None:
            return 0
        if self.version == 2:
            return _read_keys(memory / "memory.events").get("max", 0)
        with contextlib.suppress(OSError, ValueError):
            return int((memory / "memory.failcnt").read_text())
        return 0

    def peak_bytes(self) -> int | None:
        """The cgroup's peak charge, page cache included (v1 ``max_usage_in_bytes``, v2 ``memory.peak``)."""
        memory = self.dirs.get("memory")
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError, ValueError, TypeError):
            return int((memory / name).read_text())  # type: ignore[operator]
        return None

    def oom_message(self) -> str:
        """What to tell the learner when :meth:`oom_kills` is non-zero."""
        limit = gib(self.memory_bytes) if self.memory_bytes else "memory"
        return (f"OOM-killed in the {limit} cgroup ({self.oom_kills()} process(es) killed, limit reached "
                f"{self.limit_hits()} times, peak {gib(self.peak_bytes() or 0)} incl. page cache)")

    def remove(self, timeout: float = 10.0) -> None:
        """Kill whatever still runs in the cgroup, then remove its directories."""
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        for directory in sorted(set(self.dirs.values()), reverse=True):
            with contextlib.suppress(FileNotFoundError):
                directory.rmdir()
        self.removed = True


def _v2_parent(chain: list[Path], controllers: list[str]) -> Path:
    """A v2 directory whose children may use ``controllers``: our own cgroup, else the hierarchy root.

    v2's "no internal processes" rule: a non-root cgroup with processes cannot enable controllers for
    its children, so a process in a populated leaf falls back to the root (exempt from the rule).
    """
    errors = []
    for parent in (chain[0], chain[-1]):
        wanted = [c for c in controllers if c not in (parent / "cgroup.subtree_control").read_text().split()]
        try:
            if wanted:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
            return parent
        except OSError as error:
            errors.append(f"{parent}: {error}")
    raise CgroupUnavailable("cannot enable " + "/".join(controllers) + " for a child cgroup: " + "; ".join(errors),
                            fix="run as root, or in a cgroup delegated to this user (systemd-run --user --scope)")


def create(name: str, memory_bytes: int | None, cpus: float | None = None,
           proc_self: Path = Path("/proc/self")) -> Cgroup:
    """A fresh child of this process's cgroup named ``name``, limited to ``memory_bytes`` and ``cpus``."""
    controllers = ["memory"] + (["cpu"] if cpus else [])
    chains = {c: resources.cgroup_chain(c, proc_self) for c in controllers}
    missing = [c for c, chain in chains.items() if chain is None]
    if missing:
        raise CgroupUnavailable(f"no cgroup hierarchy with the {', '.join(missing)} controller is mounted",
                                fix="mount cgroup v1 memory/cpu or cgroup v2 with them enabled")
    version = chains["memory"][0]  # type: ignore[index]
    dirs: dict[str, Path] = {}
    if version == 2:
        directory = _v2_parent(chains["memory"][1], controllers) / name  # type: ignore[index]
        dirs = dict.fromkeys(controllers, directory)
    else:
        dirs = {c: chain[1][0] / name for c, chain in chains.items()}  # type: ignore[index]
    group = Cgroup(name, version, dirs, memory_bytes, cpus)
    try:
        for directory in set(dirs.values()):
            directory.mkdir()
        _limit(group)
    except OSError as error:
        group.remove()
        raise CgroupUnavailable(f"cannot create and limit the cgroup {name}: {error}",
                                fix="run as root, or in a cgroup delegated to this user") from error
    return group


def _limit(group: Cgroup) -> None:
    memory, cpu = group.dirs["memory"], group.dirs.get("cpu")
    if group.version == 2:
        if group.memory_bytes:
            _write(memory / "memory.max", str(group.memory_bytes))
            if (memory / "memory.swap.max").exists():
                _write(memory / "memory.swap.max", "0")
        if cpu is not None and group.cpus:
            _write(cpu / "cpu.max", f"{int(group.cpus * 100_000)} 100000")
        return
    if group.memory_bytes:
        _write(memory / "memory.limit_in_bytes", str(group.memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():  # memory + swap, set after memory (must be >=)
            _write(memory / "memory.memsw.limit_in_bytes", str(group.memory_bytes))
    if cpu is not None and group.cpus:
        _write(cpu / "cpu.cfs_period_us", "100000")
        _write(cpu / "cpu.cfs_quota_us", str(int(group.cpus * 100_000)))


_UNAVAILABLE: dict[bool, str | None] = {}


def unavailable(with_cpu: bool = False) -> str | None:
    """Why this machine cannot give a run its own limited cgroup, or None when it can (probed once)."""
    if with_cpu not in _UNAVAILABLE:
        try:
            create(f"kit-probe-{os.getpid()}", 64 * resources.MiB, 1.0 if with_cpu else None).remove()
            _UNAVAILABLE[with_cpu] = None
        except (CgroupUnavailable, OSError) as error:
            _UNAVAILABLE[with_cpu] = str(error)
    return _UNAVAILABLE[with_cpu]


def _exec(argv: list[str]) -> None:
    """``exec PROCS... -- CMD...``: write this pid into each PROCS file, then exec CMD."""
    split = argv.index("--")
    for procs in argv[:split]:
        Path(procs).write_text(str(os.getpid()))
    os.execvp(argv[split + 1], argv[split + 1:])


if __name__ == "__main__":  # pragma: no cover - exercised through Cgroup.command in tests/test_harness.py
    if len(sys.argv) < 4 or sys.argv[1] != "exec" or "--" not in sys.argv:
        sys.exit("usage: python -m kit.machine.cgroups exec CGROUP.PROCS... -- COMMAND...")
    _exec(sys.argv[2:])
