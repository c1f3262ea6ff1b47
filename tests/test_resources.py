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
