"""Container-aware resources: cgroup v2 and v1 limits win over the host's figures."""

from __future__ import annotations

from pathlib import Path

import psutil

from kit.machine import resources


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_and_memory(tmp_path):
    _write(tmp_path, "cpu.max", "150000 100000\n")
    _write(tmp_path, "memory.max", "2147483648\n")
    assert resources.cgroup_cpu_limit(tmp_path) == 1.5
    assert resources.cgroup_memory_limit(tmp_path) == 2 * resources.GiB


def test_cgroup_v2_unlimited(tmp_path):
    _write(tmp_path, "cpu.max", "max 100000\n")
    _write(tmp_path, "memory.max", "max\n")
    assert resources.cgroup_cpu_limit(tmp_path) is None
    assert resources.cgroup_memory_limit(tmp_path) is None


def test_cgroup_v1_quota_and_memory(tmp_path):
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "50000\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    _write(tmp_path, "memory/memory.limit_in_bytes", str(512 * resources.MiB))
    assert resources.cgroup_cpu_limit(tmp_path) == 0.5
    assert resources.cgroup_memory_limit(tmp_path) == 512 * resources.MiB


def test_cgroup_v1_unlimited(tmp_path):
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    _write(tmp_path, "memory/memory.limit_in_bytes", str(1 << 62))
    assert resources.cgroup_cpu_limit(tmp_path) is None
    assert resources.cgroup_memory_limit(tmp_path) is None


def test_detect_takes_the_binder_like_limits(tmp_path):
    _write(tmp_path, "cpu.max", "50000 100000\n")
    _write(tmp_path, "memory.max", str(2 * resources.GiB))
    found = resources.detect(tmp_path)
    assert found.cpus == 0.5 and found.cpu_source == "cgroup CPU quota"
    assert found.cpu_slots == 1  # Ray still gets one whole CPU slot
    assert found.memory_bytes == 2 * resources.GiB and found.memory_source == "cgroup memory limit"
    # the host's own figures, from an independent reader (psutil)
    assert (found.host_cpus, found.host_memory_bytes) == (psutil.cpu_count(), psutil.virtual_memory().total)


def test_detect_without_cgroup_files_uses_host(tmp_path):
    found = resources.detect(tmp_path)
    assert found.memory_bytes == found.host_memory_bytes
    assert found.cpus <= found.host_cpus


def test_hidden_gpus_are_not_counted(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resources.detect_gpus() == ()


def _proc(tmp_path: Path, cgroup: str, mounts: list[str]) -> Path:
    """A fake /proc/self: its cgroup file and the cgroup lines of its mountinfo."""
    proc = tmp_path / "proc-self"
    _write(proc, "cgroup", cgroup)
    _write(proc, "mountinfo", "".join(f"{30 + i} 23 0:{40 + i} {m}\n" for i, m in enumerate(mounts)))
    return proc


def test_v1_limit_is_read_from_the_process_own_cgroup_not_the_root(tmp_path):
    """Moved into memory/kit-nb (2 GiB) below a 6 GiB container cgroup: 2 GiB, though the root says unlimited."""
    fs = tmp_path / "sys"
    _write(fs, "memory/memory.limit_in_bytes", "9223372036854771712")
    _write(fs, "memory/pod/memory.limit_in_bytes", str(6 * resources.GiB))
    _write(fs, "memory/pod/kit-nb/memory.limit_in_bytes", str(2 * resources.GiB))
    _write(fs, "cpu,cpuacct/pod/cpu.cfs_quota_us", "150000")
    _write(fs, "cpu,cpuacct/pod/cpu.cfs_period_us", "100000")
    _write(fs, "cpu,cpuacct/pod/kit-nb/cpu.cfs_quota_us", "-1")
    _write(fs, "cpu,cpuacct/pod/kit-nb/cpu.cfs_period_us", "100000")
    proc = _proc(tmp_path, "5:memory:/pod/kit-nb\n3:cpu,cpuacct:/pod/kit-nb\n0::/\n", [
        f"/ {fs}/memory rw,relatime - cgroup cgroup rw,memory",
        f"/ {fs}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
    ])
    assert resources.cgroup_chain("memory", proc) == (1, [fs / "memory/pod/kit-nb", fs / "memory/pod", fs / "memory"])
    assert resources.cgroup_memory_limit(proc_self=proc) == 2 * resources.GiB
    assert resources.cgroup_cpu_limit(proc_self=proc) == 1.5  # the parent's quota still binds
    found = resources.detect(proc_self=proc)
    assert (found.memory_bytes, found.memory_source) == (2 * resources.GiB, "cgroup memory limit")
    assert found.cpu_slots == 1


def test_v1_container_that_mounts_only_its_own_cgroup(tmp_path):
    """Docker without a cgroup namespace: /proc/self/cgroup says /docker/abc, the mount's root is /docker/abc."""
    fs = tmp_path / "sys"
    _write(fs, "memory/memory.limit_in_bytes", str(3 * resources.GiB))
    _write(fs, "memory/kit-nb/memory.limit_in_bytes", str(9 * resources.GiB))
    proc = _proc(tmp_path, "4:memory:/docker/abc/kit-nb\n", [f"/docker/abc {fs}/memory rw - cgroup cgroup rw,memory"])
    assert resources.cgroup_chain("memory", proc) == (1, [fs / "memory/kit-nb", fs / "memory"])
    assert resources.cgroup_memory_limit(proc_self=proc) == 3 * resources.GiB  # the smaller, the container's


def test_v2_limit_is_read_along_the_process_own_path(tmp_path):
    fs = tmp_path / "unified"
    _write(fs, "cgroup.controllers", "cpuset cpu io memory pids\n")
    _write(fs, "user.slice/memory.max", "max\n")
    _write(fs, "user.slice/cpu.max", "max 100000\n")
    _write(fs, "user.slice/kit-nb/memory.max", str(2 * resources.GiB))
    _write(fs, "user.slice/kit-nb/cpu.max", "100000 100000\n")
    proc = _proc(tmp_path, "0::/user.slice/kit-nb\n", [f"/ {fs} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate"])
    assert resources.cgroup_chain("memory", proc) == (2, [fs / "user.slice/kit-nb", fs / "user.slice", fs])
    found = resources.detect(proc_self=proc)
    assert (found.memory_bytes, found.cpus) == (2 * resources.GiB, 1.0)
    assert found.cpu_source == "cgroup CPU quota"


def test_hybrid_uses_v1_memory_when_the_unified_tree_has_no_memory_controller(tmp_path):
    """This kit's CI machine: v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified."""
    fs = tmp_path / "sys"
    _write(fs, "unified/cgroup.controllers", "\n")
    _write(fs, "unified/memory.max", "1024\n")  # must be ignored: memory is not enabled there
    _write(fs, "memory/a/memory.limit_in_bytes", str(resources.GiB))
    proc = _proc(tmp_path, "4:memory:/a\n0::/\n", [
        f"/ {fs}/unified rw - cgroup2 cgroup2 rw",
        f"/ {fs}/memory rw - cgroup cgroup rw,memory",
    ])
    assert resources.cgroup_memory_limit(proc_self=proc) == resources.GiB
    assert resources.cgroup_chain("cpu", proc) is None
    assert resources.cgroup_cpu_limit(proc_self=proc) is None


def test_no_cgroup_mounts_fall_back_to_the_sys_fs_cgroup_layout(tmp_path):
    proc = _proc(tmp_path, "0::/\n", [])
    assert resources.cgroup_chain("memory", proc) is None
