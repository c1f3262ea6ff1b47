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

    def as_dict(self) -> dict:
        data = asdict(self)
        data["cpu_slots"] = self.cpu_slots
        data["memory_gib"] = round(self.memory_gib, 2)
        return data


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPU quota in CPUs from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None if unlimited."""
    v2 = _read(root / "cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    v1_quota = _read(root / "cpu" / "cpu.cfs_quota_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_quota_us")
    v1_period = _read(root / "cpu" / "cpu.cfs_period_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_period_us")
    if v1_quota and v1_period and int(v1_quota) > 0:
        return int(v1_quota) / int(v1_period)
    return None


def cgroup_memory_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory limit in bytes from cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes``; None if none."""
    v2 = _read(root / "memory.max")
    if v2 is not None:
        return None if v2 == "max" else int(v2)
    v1 = _read(root / "memory" / "memory.limit_in_bytes")
    if v1 is not None and int(v1) < _UNLIMITED_V1:
        return int(v1)
    return None


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


def detect(cgroup_root: Path = Path("/sys/fs/cgroup")) -> Resources:
    """Effective resources of this process: the smallest of host, affinity mask and cgroup limits."""
    host_cpus = os.cpu_count() or 1
    cpus, cpu_source = float(host_cpus), "os.cpu_count"
    if hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
        if affinity < cpus:
            cpus, cpu_source = float(affinity), "CPU affinity"
    quota = cgroup_cpu_limit(cgroup_root)
    if quota is not None and quota < cpus:
        cpus, cpu_source = quota, "cgroup CPU quota"

    host_mem = host_memory_bytes()
    memory, memory_source = host_mem, "/proc/meminfo"
    limit = cgroup_memory_limit(cgroup_root)
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
