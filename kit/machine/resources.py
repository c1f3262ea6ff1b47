"""CPUs, memory and GPUs as the container sees them.

``os.cpu_count()`` and ``/proc/meminfo`` report the host, not the container: on
Binder they claim dozens of CPUs and hundreds of GiB while the pod may use 1 CPU
and 2 GiB. Sizing Ray from them is how notebooks get OOM-killed. This module reads
the cgroup (v2, then v1) limits and the CPU affinity mask instead.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

GiB = 1024**3
MiB = 1024**2
_UNLIMITED_V1 = 1 << 60  # cgroup v1 reports "no limit" as a huge number


@dataclass(frozen=True)
class Resources:
    """What this process may use: effective CPUs, memory limit and GPUs."""

    cpus: float  # may be fractional under a CPU quota (e.g. 0.5)
    memory_bytes: int
    host_cpus: int
    host_memory_bytes: int
    gpus: int
    gpu_names: tuple[str, ...]
    cpu_source: str  # where the CPU figure came from
    memory_source: str

    @property
    def cpu_slots(self) -> int:
        """Whole CPUs to hand to schedulers such as Ray (at least 1)."""
        return max(1, math.floor(self.cpus))

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GiB

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["cpu_slots"] = self.cpu_slots
        data["memory_gib"] = round(self.memory_gib, 2)
        return data


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class CgroupMount:
    """One mounted cgroup hierarchy (a line of ``/proc/self/mountinfo``)."""

    mount_point: Path
    root: str  # the hierarchy's directory mounted there ("/" unless a container mounted only its own)
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: from the mount options; v2: from cgroup.controllers


def cgroup_mounts(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[CgroupMount]:
    """The cgroup hierarchies mounted in this process's view, v1 and v2 (see proc(5), "mountinfo")."""
    mounts = []
    for line in (_read(mountinfo) or "").splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype, _source, options = [*line.split(" - ", 1)[1].split(), "", ""][:3]
        root, point = fields[3], Path(fields[4].replace("\\040", " "))
        if fstype == "cgroup":
            mounts.append(CgroupMount(point, root, 1, frozenset(options.split(","))))
        elif fstype == "cgroup2":
            mounts.append(CgroupMount(point, root, 2, frozenset((_read(point / "cgroup.controllers") or "").split())))
    return mounts


def own_cgroups(proc_cgroup: Path = Path("/proc/self/cgroup")) -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under ``""`` its v2 path (cgroups(7))."""
    paths = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        _hid, controllers, path = [*line.split(":", 2), "", ""][:3]
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def cgroup_chain(controller: str, proc_self: Path = Path("/proc/self")) -> tuple[int, list[Path]] | None:
    """This process's cgroup directories for ``controller``, its own first, then each parent up to the mount.

    A child cgroup only narrows its parents' limits, so the effective limit is the smallest along the chain.
    Reads the process's own path from ``/proc/self/cgroup``: on cgroup v1 a process moved into
    ``memory/kit-nb-1`` sees the hierarchy's root ``memory.limit_in_bytes`` unlimited, its own 2 GiB.
    The v1 hierarchy that carries ``controller`` wins; else the v2 one, if ``controller`` is enabled there.
    """
    own = own_cgroups(proc_self / "cgroup")
    mounts = cgroup_mounts(proc_self / "mountinfo")
    chosen = next(((m, own[controller]) for m in mounts if m.version == 1 and controller in m.controllers
                   and controller in own), None)
    if chosen is None:
        chosen = next(((m, own[""]) for m in mounts if m.version == 2 and controller in m.controllers
                       and "" in own), None)
    if chosen is None:
        return None
    mount, path = chosen
    # The mount shows the hierarchy from mount.root down; a path outside it means a cgroup namespace
    # already made the path relative to what is mounted.
    relative = path[len(mount.root):] if path.startswith(mount.root) else path
    leaf = mount.mount_point / relative.strip("/") if relative.strip("/") else mount.mount_point
    chain = [leaf, *[p for p in leaf.parents if p.is_relative_to(mount.mount_point)]]
    return mount.version, chain


def _quota(v2_text: str | None, v1_quota: str | None, v1_period: str | None) -> float | None:
    if v2_text:
        quota, _, period = v2_text.partition(" ")
        return int(quota) / int(period) if quota != "max" and period else None
    if v1_quota and v1_period and int(v1_quota) > 0:
        return int(v1_quota) / int(v1_period)
    return None


_Limit = TypeVar("_Limit", int, float)


def _memory(v2_text: str | None, v1_text: str | None) -> int | None:
    if v2_text is not None:
        return None if v2_text == "max" else int(v2_text)
    if v1_text is not None and int(v1_text) < _UNLIMITED_V1:
        return int(v1_text)
    return None


def _smallest(values: list[_Limit | None]) -> _Limit | None:
    """The tightest limit along a cgroup chain; None when no level sets one."""
    found = [v for v in values if v is not None]
    return min(found) if found else None


def cgroup_cpu_limit(root: Path | None = None, proc_self: Path = Path("/proc/self")) -> float | None:
    """CPU quota in CPUs from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None if unlimited.

    Without ``root``: the smallest quota along this process's own cgroup chain (:func:`cgroup_chain`).
    With ``root``: the files of one hierarchy root laid out as under ``/sys/fs/cgroup``.
    """
    chain = None if root is not None else cgroup_chain("cpu", proc_self)
    if chain is not None:
        version, dirs = chain
        if version == 2:
            return _smallest([_quota(_read(d / "cpu.max"), None, None) for d in dirs])
        return _smallest([_quota(None, _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")) for d in dirs])
    root = root or Path("/sys/fs/cgroup")
    return _quota(
        _read(root / "cpu.max"),
        _read(root / "cpu" / "cpu.cfs_quota_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_quota_us"),
        _read(root / "cpu" / "cpu.cfs_period_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_period_us"),
    )


def cgroup_memory_limit(root: Path | None = None, proc_self: Path = Path("/proc/self")) -> int | None:
    """Memory limit in bytes from cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes``; None if none.

    Without ``root``: the smallest limit along this process's own cgroup chain (:func:`cgroup_chain`).
    With ``root``: the files of one hierarchy root laid out as under ``/sys/fs/cgroup``.
    """
    chain = None if root is not None else cgroup_chain("memory", proc_self)
    if chain is not None:
        version, dirs = chain
        if version == 2:
            return _smallest([_memory(_read(d / "memory.max"), None) for d in dirs])
        return _smallest([_memory(None, _read(d / "memory.limit_in_bytes")) for d in dirs])
    root = root or Path("/sys/fs/cgroup")
    return _memory(_read(root / "memory.max"), _read(root / "memory" / "memory.limit_in_bytes"))


def host_memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Total memory of the host (or VM) from ``/proc/meminfo``."""
    text = _read(meminfo) or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def detect_gpus() -> tuple[str, ...]:
    """Names of the NVIDIA GPUs this process may use (honours CUDA_VISIBLE_DEVICES), without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return ()
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ()
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    gpus = [line.split(",", 1) for line in out.strip().splitlines() if "," in line]
    if visible:
        wanted = {v.strip() for v in visible.split(",")}
        gpus = [g for g in gpus if g[0].strip() in wanted]
    return tuple(name.strip() for _, name in gpus)


def detect(cgroup_root: Path | None = None, proc_self: Path = Path("/proc/self")) -> Resources:
    """Effective resources of this process: the smallest of host, affinity mask and cgroup limits.

    The cgroup limits are those of this process's own cgroup and its parents (``/proc/self/cgroup``);
    ``cgroup_root`` reads one hierarchy root instead (tests, or a mount without ``/proc``).
    """
    host_cpus = os.cpu_count() or 1
    cpus, cpu_source = float(host_cpus), "os.cpu_count"
    if hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
        if affinity < cpus:
            cpus, cpu_source = float(affinity), "CPU affinity"
    quota = cgroup_cpu_limit(cgroup_root, proc_self)
    if quota is not None and quota < cpus:
        cpus, cpu_source = quota, "cgroup CPU quota"

    host_mem = host_memory_bytes()
    memory, memory_source = host_mem, "/proc/meminfo"
    limit = cgroup_memory_limit(cgroup_root, proc_self)
    if limit is not None and limit < memory:
        memory, memory_source = limit, "cgroup memory limit"

    return Resources(
        cpus=cpus,
        memory_bytes=memory,
        host_cpus=host_cpus,
        host_memory_bytes=host_mem,
        gpus=len(gpus := detect_gpus()),
        gpu_names=gpus,
        cpu_source=cpu_source,
        memory_source=memory_source,
    )
