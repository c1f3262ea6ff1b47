"""The harness must never pass silently: canary notebooks that fail, differ or leak are reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import harness
import pytest

from kit.machine import cgroups, resources

CANARIES = Path(__file__).parent / "canary"


def test_failing_cell_is_reported_with_its_source_and_error():
    with pytest.raises(harness.NotebookFailed) as failed:
        harness.run_notebook(CANARIES / "canary_raises.ipynb", "papermill", record=False)
    message = str(failed.value)
    assert "canary_raises.ipynb failed under papermill" in message
    assert "ratio = 1 / 0" in message  # the failing cell's source
    assert "ZeroDivisionError" in message
    assert "=== Ray logs" in message


def test_checked_output_that_differs_fails_under_nbval():
    with pytest.raises(harness.NotebookFailed) as failed:
        harness.run_notebook(CANARIES / "canary_differs.ipynb", "nbval", record=False)
    assert "canary_differs.ipynb failed under nbval" in str(failed.value)


def test_leftover_process_port_and_temp_file_are_reported_and_cleaned():
    with pytest.raises(harness.NotebookFailed) as failed:
        harness.run_notebook(CANARIES / "canary_leaks.ipynb", "papermill", record=False)
    message = str(failed.value)
    assert "process still running" in message
    assert "still listening" in message
    assert "temp file left: canary-" in message


def test_report_table_flags_budgets():
    fast = harness.NotebookRun("00_fast", "papermill", seconds=10, peak_pss_bytes=2**29, ok=True)
    slow = harness.NotebookRun("02_slow", "nbval", seconds=120, peak_pss_bytes=2**31, ok=True)
    edge = harness.NotebookRun("03_edge", "nbval", seconds=90, peak_pss_bytes=3 * 2**29, ok=True)  # at budget
    rows = {line.split()[0]: line.split(None, 5)[5] for line in harness.report_table([fast, slow, edge]).splitlines()
            if line[:2].isdigit()}
    assert rows == {"00_fast": "ok", "02_slow": "ok (over budget: time>90s, mem>1.8GiB)", "03_edge": "ok"}
    mid = harness.NotebookRun("06_mid", "nbval", seconds=9, peak_pss_bytes=int(1.6 * 2**30), ok=True)
    known = harness.NotebookRun("07_known", "nbval", seconds=9, peak_pss_bytes=int(2.2 * 2**30), ok=True,
                                known_over="Serve replicas", peak_processes=[
                                    {"pid": 7, "pss_bytes": 700 * 2**20, "process": "ray::ServeReplica"}])
    table = harness.report_table([mid, known])
    assert "06_mid" + " " * 33 + "nbval          9.0    1638 MiB  ok (over budget: mem>1.5GiB)" in table
    assert "mem>1.8GiB (known, not failed)" in table
    assert "07_known (nbval) at its peak of 2253 MiB:\n       700 MiB  pid 7       ray::ServeReplica" in table
    assert "07_known: no cgroup limit, let off the 1.8 GiB gate: Serve replicas" in table


def test_memory_limit_setting(monkeypatch):
    monkeypatch.delenv(harness.CPU_LIMIT_ENV, raising=False)
    monkeypatch.delenv(harness.MEMORY_LIMIT_ENV, raising=False)
    assert harness.limits() == (2 * resources.GiB, None)  # Binder's 2 GiB by default
    monkeypatch.setenv(harness.MEMORY_LIMIT_ENV, "1536M")
    monkeypatch.setenv(harness.CPU_LIMIT_ENV, "1")
    assert harness.limits() == (1536 * resources.MiB, 1.0)
    monkeypatch.setenv(harness.MEMORY_LIMIT_ENV, "off")
    assert harness.limits()[0] is None
    monkeypatch.setenv(harness.MEMORY_LIMIT_ENV, "two gigs")
    with pytest.raises(cgroups.KitError, match="cannot read the memory size 'two gigs'"):
        harness.limits()


def test_over_the_gate_fails_with_the_processes_at_the_peak(tmp_path):
    run = harness.NotebookRun("04_big", "nbval", peak_pss_bytes=1900 * 2**20, peak_processes=[
        {"pid": 11, "pss_bytes": 900 * 2**20, "process": "ray::RayTrainWorker"}])
    log = tmp_path / "log"
    log.write_text("")
    problems = harness._problems(Path("04_big.ipynb"), "nbval", 0, run, log, log, tmp_path, None)
    assert len(problems) == 1 and "04_big.ipynb peaked at 1900 MiB PSS under nbval, over the 1843 MiB" in problems[0]
    assert "900 MiB  pid 11      ray::RayTrainWorker" in problems[0]
    run.known_over = "measured 2.5 GiB, issue 11"
    assert harness._problems(Path("04_big.ipynb"), "nbval", 0, run, log, log, tmp_path, None) == []


CGROUP_REASON = cgroups.unavailable()


@pytest.mark.skipif(CGROUP_REASON is not None, reason=f"no cgroup can be created here: {CGROUP_REASON}")
def test_a_process_in_the_harness_cgroup_sees_2_gib():
    """resources.detect() inside the cgroup reads the process's own 2 GiB, not the hierarchy root's unlimited."""
    group = cgroups.create("kit-test-sees", 2 * resources.GiB)
    try:
        code = "from kit.machine import resources; r = resources.detect(); print(r.memory_bytes, r.memory_source)"
        out = subprocess.run(group.command([sys.executable, "-c", code]), cwd=harness.REPO, capture_output=True,
                             text=True, check=True).stdout
        assert out.split(maxsplit=1) == [str(2 * resources.GiB), "cgroup memory limit\n"]
        assert group.oom_kills() == 0
    finally:
        group.remove()
    assert not group.dirs["memory"].exists()


@pytest.mark.skipif(CGROUP_REASON is not None, reason=f"no cgroup can be created here: {CGROUP_REASON}")
def test_notebook_over_2_gib_is_oom_killed_and_reported(monkeypatch):
    monkeypatch.setenv(harness.MEMORY_LIMIT_ENV, "2G")
    monkeypatch.delenv(harness.CPU_LIMIT_ENV, raising=False)
    with pytest.raises(harness.NotebookFailed) as failed:
        harness.run_notebook(CANARIES / "canary_hog.ipynb", "papermill", record=False)
    message = str(failed.value)
    assert message.startswith("canary_hog.ipynb was OOM-killed in the 2 GiB cgroup (1 process(es) killed")
    assert "python -m ipykernel_launcher" in message  # the breakdown names the kernel that grew
    executed = harness.BUILD / "notebook-runs" / "papermill" / "canary_hog.executed.ipynb"
    assert f"limit seen by the kernel: {2 * resources.GiB}" in executed.read_text()
    assert not group_dirs(f"kit-nb-{os.getpid()}-")  # the run's cgroup is gone (others may run beside)


def group_dirs(prefix: str) -> list[Path]:
    """Cgroups named ``prefix...`` left below this process's memory cgroup."""
    chain = resources.cgroup_chain("memory")
    return [] if chain is None else list(chain[1][0].glob(f"{prefix}*"))


def test_v2_cgroup_is_created_below_the_process_own_with_memory_swap_and_cpu_limits(tmp_path):
    """On a fake cgroup2 tree: controllers enabled for children, memory.max, swap off, cpu.max, removal."""
    fs = tmp_path / "cg"
    (fs / "user.slice").mkdir(parents=True)
    (fs / "cgroup.controllers").write_text("cpu io memory pids\n")
    (fs / "cgroup.subtree_control").write_text("cpu memory\n")
    (fs / "user.slice" / "cgroup.subtree_control").write_text("")
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("0::/user.slice\n")
    (proc / "mountinfo").write_text(f"41 31 0:38 / {fs} rw - cgroup2 cgroup2 rw\n")
    real_mkdir = Path.mkdir

    def mkdir_like_cgroupfs(self, *args, **kwargs):  # the kernel creates a cgroup's interface files
        real_mkdir(self, *args, **kwargs)
        (self / "memory.swap.max").write_text("max\n")
        (self / "cgroup.procs").write_text("")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "mkdir", mkdir_like_cgroupfs)
        group = cgroups.create("kit-nb-9", cgroups.parse_size("2G"), cpus=1.0, proc_self=proc)
    here = fs / "user.slice" / "kit-nb-9"
    assert group.version == 2 and group.dirs == {"memory": here, "cpu": here}
    assert (fs / "user.slice" / "cgroup.subtree_control").read_text() == "+memory +cpu"
    assert (here / "memory.max").read_text() == str(2 * resources.GiB)
    assert (here / "memory.swap.max").read_text() == "0"
    assert (here / "cpu.max").read_text() == "100000 100000"
    assert group.command(["papermill"])[-4:] == ["exec", str(here / "cgroup.procs"), "--", "papermill"]
    (here / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert (group.oom_kills(), group.limit_hits()) == (1, 12)
    assert group.oom_message().startswith("OOM-killed in the 2 GiB cgroup (1 process(es) killed, limit reached 12")


def test_run_is_stopped_soon_after_an_oom_kill_instead_of_waiting_for_its_timeout(monkeypatch):
    class OomedGroup:
        def oom_kills(self) -> int:
            return 1

    monkeypatch.setattr(harness, "OOM_GRACE_SECONDS", 1)
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    run = harness.NotebookRun("04_x", "nbval")
    code = harness._wait(proc, OomedGroup(), run)  # type: ignore[arg-type]
    assert code == -9 and run.problem == "stopped 1 s after the OOM kill"
