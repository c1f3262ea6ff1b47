"""kit.train.launchers: every launcher runs the same train_func and leaves no process or port behind.

Slow by nature (processes, Ray, a Kubeflow job venv): one Ray start for the module's
Ray tests, small data and two epochs everywhere.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from kit.config.train import ConfigError
from kit.errors import KitError
from kit.machine import resources
from kit.train import launchers as launch
from kit.train.launchers.__main__ import main as entrypoint

SMALL = {"epochs": 2, "hidden": 32, "batch_size": 128}
TWO = dict(SMALL, workers=2)  # the config decides the worker count, for every launcher


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _listening_ports(pids) -> set[int]:
    ports = set()
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            ports.add(conn.laddr.port)
    return ports


@pytest.fixture
def nothing_left_behind():
    """After the test: no new descendant process, and this process listens on no new port."""
    me = os.getpid()
    before, ports_before = _descendants(), _listening_ports({me})
    yield
    deadline = time.monotonic() + 10
    while (new := _descendants() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = [" ".join(psutil.Process(pid).cmdline()[:3]) for pid in new if psutil.pid_exists(pid)]
    assert not new, f"processes left behind: {names}"
    assert _listening_ports({me}) <= ports_before


def test_launchers_reject_bad_configs_before_starting_anything(nothing_left_behind):
    import ray

    ray_was_running = ray.is_initialized()
    with pytest.raises(ConfigError, match=r"TrainConfig\.epochs"):
        launch.run_torchrun({"epochs": 0, "workers": 2})
    too_many = resources.detect().cpu_slots + 1
    with pytest.raises(ConfigError, match=r"TrainConfig\.workers"):
        launch.run_torchrun(dict(SMALL, workers=too_many))
    with pytest.raises(ConfigError, match=r"TrainConfig\.workers"):
        launch.run_ray_train(dict(SMALL, workers=too_many))
    assert ray.is_initialized() == ray_was_running  # failed before Ray was started
    with pytest.raises(ConfigError, match=r"TrainConfig\.crash_at_epoch"):
        launch.run_in_process(launch.fault_drill_config(SMALL, crash_at_epoch=1))


def test_the_worker_count_comes_only_from_the_config():
    """No launcher takes a count of its own, and in-process refuses a config asking for more than one."""
    import inspect

    for launcher in (launch.run_in_process, launch.run_torchrun, launch.run_ray_train, launch.run_kubeflow_local):
        parameters = set(inspect.signature(launcher).parameters)
        assert not parameters & {"nproc", "num_workers", "num_procs", "workers"}, launcher.__name__
    with pytest.raises(ConfigError, match=r"workers=2"):
        launch.run_in_process(TWO)
    command = launch.torchrun_command(launch.prepare(dict(SMALL, workers=2)))
    assert "--nproc-per-node=2" in command
    with pytest.raises(SystemExit):  # the RayJob entrypoint has no --workers either
        entrypoint(["torchrun", "--workers", "2"])


def test_in_process_baseline():
    result = launch.run_in_process(SMALL)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.startup_s is not None and result.startup_s < result.wall_s


def test_torchrun_two_processes_streams_output_and_returns_metrics(nothing_left_behind):
    lines: list[str] = []
    result = launch.run_torchrun(TWO, on_line=lines.append)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.result["world_size"] == 2
    assert sum("KIT_METRICS" in line for line in lines) == 2  # streamed live, rank 0 only
    assert result.final["test_accuracy"] > 0.5  # well above chance (0.1) after 12 steps


def test_torchrun_failure_raises_with_the_last_lines(nothing_left_behind, tmp_path):
    config = launch.fault_drill_config(TWO, crash_at_epoch=1, marker_dir=tmp_path)
    with pytest.raises(launch.LaunchError) as error:
        launch.run_torchrun(config, on_line=None)
    assert "exit code" in str(error.value)
    assert any("[fault drill] rank 1 exits" in line for line in error.value.tail)


def test_kubeflow_local_job_runs_end_to_end(nothing_left_behind):
    """Builds a venv and pip-installs torch==<pin>: PIP_FIND_LINKS may point at a local wheel."""
    lines: list[str] = []
    result = launch.run_kubeflow_local(TWO, on_line=lines.append)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.result["world_size"] == 2  # PET_NPROC_PER_NODE reached torchrun
    assert result.details["venv_and_install_s"] is not None
    assert not list(Path(tempfile.gettempdir()).glob(f"{result.details['job']}*"))  # venv removed
    print(f"Kubeflow local job: start-up {result.startup_s:.1f} s "
          f"(venv + pip install {result.details['venv_and_install_s']:.1f} s), wall {result.wall_s:.1f} s")


# --------------------------------------------------------------------------- Ray Train (one Ray start)


def _train_workers() -> list[psutil.Process]:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _wait_for_no_train_workers(timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _train_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _train_workers(), "Ray Train worker processes left behind"


def test_ray_train_without_retries_raises_a_clear_error(local_ray, tmp_path):
    config = launch.fault_drill_config(TWO, crash_at_epoch=1, marker_dir=tmp_path / "marker")
    with pytest.raises(launch.LaunchError, match="max_failures=0"):
        launch.run_ray_train(config, max_failures=0, storage_path=tmp_path / "results")
    _wait_for_no_train_workers()


def test_ray_train_fault_drill_resumes_without_losing_a_completed_epoch(local_ray, tmp_path):
    config = launch.fault_drill_config(dict(TWO, epochs=3), crash_at_epoch=2, marker_dir=tmp_path / "m")
    result = launch.run_ray_train(config, max_failures=1, storage_path=tmp_path / "results", num_to_keep=2)
    assert (tmp_path / "m" / "crashed").exists()  # the drill did crash a worker
    assert result.result["resumed_from_epoch"] == 1  # from the checkpoint of the last completed epoch
    assert [h["epoch"] for h in result.history] == [1, 2, 3]  # every epoch once: none lost, none twice
    assert result.result["world_size"] == 2
    assert list(result.metrics_dataframe["epoch"]) == [2, 3]  # the kept checkpoints' metrics
    assert Path(result.checkpoint, "checkpoint.pt").exists()
    kept = [p for p in Path(result.details["result_path"]).glob("checkpoint_*") if p.is_dir()]
    assert len(kept) == 2  # num_to_keep
    _wait_for_no_train_workers()
    # Locally (kit.train.ray_local) only the controller, the workers and their sync actor ever ran:
    # none of Ray Train's cluster helpers (autoscaling coordinator, placement-group cleaner, DatasetManager).
    import ray

    classes = {actor["ActorClassName"] for actor in ray._private.state.actors().values()}
    assert {"TrainController", "RayTrainWorker"} <= classes
    assert not classes & {"_AutoscalingCoordinatorActor", "PlacementGroupCleaner", "DatasetManager"}, classes


def test_every_launcher_is_registered_under_the_name_its_result_carries():
    from kit.cli.train import LAUNCHERS as CLI_NAMES

    assert list(launch.LAUNCHERS) == list(CLI_NAMES) == ["in-process", "torchrun", "ray-train", "kubeflow-local"]
    result = launch.launch("in-process", SMALL)
    assert result.launcher == "in-process" and result.artifact
    with pytest.raises(KitError, match="no launcher 'mpirun'") as error:
        launch.launch("mpirun", SMALL)
    assert "in-process" in error.value.fix


def test_job_environment_keeps_pip_from_byte_compiling(tmp_path):
    """A Kubeflow local job's venv lives once: its pip must not spend time writing .pyc files (PIP_COMPILE=0)."""
    import subprocess
    import sys
    import zipfile

    wheel = tmp_path / "kitprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("kitprobe/__init__.py", "VALUE = 1\n")
        archive.writestr("kitprobe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: kitprobe\nVersion: 1.0\n")
        archive.writestr("kitprobe-1.0.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("kitprobe-1.0.dist-info/RECORD", "")
    target = tmp_path / "site"
    env = launch.child_env(1)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target),
                    str(wheel)], env=env, check=True, capture_output=True)
    assert (target / "kitprobe" / "__init__.py").exists()
    assert not list(target.rglob("*.pyc")), "pip byte-compiled the job's packages: PIP_COMPILE=0 did not reach it"
