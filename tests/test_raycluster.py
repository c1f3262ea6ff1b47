"""The Ray notebooks against a multi-node Ray that is not on the notebook's machine (tests/raycluster/lane.sh).

The lane: a head and two 1-CPU workers, each in its own network, mount and PID namespace on a private
bridge, with a private /tmp and build/, no kit source (Ray Client ships it) and one shared volume. The
notebook kernel stays in this machine's namespaces and runs with PROFILE="cluster" and the lane's
RAY_ADDRESS, KIT_SHARED_STORAGE and token, through the same harness as `make test` (papermill; no
leaked process, port or temp file).

`make test` runs stage 02 here, bringing a lane up and down itself (it needs root and iproute2, and
is skipped without them unless KIT_RAY_LANE_REQUIRED=1). `make test-raycluster` runs all four stages
inside one lane (`lane.sh run -- pytest ...` sets KIT_RAY_LANE=1 and the settings).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import harness
import pytest

from kit.machine.processes import environment

LANE = harness.REPO / "tests" / "raycluster" / "lane.sh"
STATE = harness.BUILD / "ray-lane"
SETTINGS = ("PROFILE", "RAY_ADDRESS", "KIT_SHARED_STORAGE", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")
IN_LANE = os.environ.get("KIT_RAY_LANE") == "1"
LANE_ONLY = pytest.mark.skipif(not IN_LANE, reason="runs inside the lane: make test-raycluster")


def _lane_settings() -> dict[str, str]:
    """The environment `lane.sh run` gives its command (lane.sh is the one source of these values)."""
    shared = STATE / "shared"
    return {"PROFILE": "cluster", "RAY_ADDRESS": "ray://10.231.0.10:10001", "KIT_SHARED_STORAGE": str(shared),
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(STATE / "auth_token")}


def _missing_prerequisite() -> str:
    if os.geteuid() != 0:
        return "the Ray lane needs root (network namespaces)"
    for tool in ("ip", "unshare", "nsenter"):
        if not shutil.which(tool):
            return f"the Ray lane needs `{tool}`"
    return ""


@pytest.fixture(scope="module")
def ray_lane():
    """The lane's settings in this process's environment (the harness passes them to the kernel)."""
    if IN_LANE:
        yield {key: os.environ[key] for key in SETTINGS}
        return
    missing = _missing_prerequisite()
    if missing:
        if os.environ.get("KIT_RAY_LANE_REQUIRED") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    env = dict(os.environ, PY=sys.executable)
    up = subprocess.run([str(LANE), "up"], env=env, capture_output=True, text=True, timeout=900)
    if up.returncode:
        pytest.fail(f"the Ray lane did not come up:\n{up.stderr[-4000:]}")
    try:
        with environment(_lane_settings()):
            yield _lane_settings()
    finally:
        subprocess.run([str(LANE), "down"], env=env, capture_output=True, text=True, timeout=300)


def _run(stage: str, lane: dict[str, str]) -> None:
    notebook = next((harness.REPO / "solutions").glob(f"{stage}_*.ipynb"))
    run = harness.run_notebook(notebook, "papermill", parameters={"PROFILE": lane["PROFILE"], "SMOKE": True})
    run.name = f"{run.name} (ray lane)"
    shared = Path(lane["KIT_SHARED_STORAGE"])
    left = sorted(p.name for p in (shared / "scratch").glob("*")) if (shared / "scratch").exists() else []
    assert not left, f"{notebook.name} left scratch directories on the shared storage: {left}"


@pytest.mark.notebook
def test_stage02_runs_on_a_remote_ray_cluster(ray_lane):
    """Tasks, actors, objects, resources and retries on a 3-node Ray reached over Ray Client."""
    _run("02", ray_lane)


@LANE_ONLY
@pytest.mark.notebook
def test_stage04_ray_train_survives_a_worker_crash_on_the_cluster(ray_lane):
    """Ray Train on two worker nodes; checkpoints and the drill's marker on the shared volume."""
    _run("04", ray_lane)


@LANE_ONLY
@pytest.mark.notebook
def test_stage06_tune_trials_read_shared_data(ray_lane):
    """Tune trials on the workers read the data set from, and store results on, the shared volume."""
    _run("06", ray_lane)


@LANE_ONLY
@pytest.mark.notebook
def test_stage07_serve_answers_on_the_heads_address(ray_lane):
    """Serve loads the model from the shared volume and answers on the head's address, not 127.0.0.1."""
    _run("07", ray_lane)


@LANE_ONLY
def test_a_second_lane_refuses_to_start_and_leaves_the_first_alone(ray_lane):
    """lane.sh refuses when its bridge or namespaces exist, and its refusal tears nothing down."""
    second = subprocess.run([str(LANE), "up"], env=dict(os.environ, PY=sys.executable), capture_output=True,
                            text=True, timeout=60)
    assert second.returncode != 0
    assert "another lane is up" in second.stderr
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert {"kitrl-head", "kitrl-w1", "kitrl-w2"} <= {line.split()[0] for line in namespaces.splitlines() if line}
    assert Path(ray_lane["RAY_AUTH_TOKEN_PATH"]).exists()


# --- the settings of kit.machine.ray_cluster, without a cluster ----------------------------------------------


@pytest.fixture
def no_cluster(monkeypatch, tmp_path):
    from kit.machine import ray_cluster

    for key in (ray_cluster.STORAGE_ENV, ray_cluster.SERVE_HOST_ENV, ray_cluster.ADDRESS_ENV):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("KIT_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setattr(ray_cluster, "is_remote", lambda: False)
    return ray_cluster


def test_shared_storage_is_the_work_dir_on_a_local_ray(no_cluster, tmp_path):
    assert no_cluster.shared_dir("ray_results") == tmp_path / "work" / "ray_results"
    assert (tmp_path / "work" / "ray_results").is_dir()


def test_shared_storage_comes_from_the_setting(no_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv(no_cluster.STORAGE_ENV, str(tmp_path / "rwx"))
    assert no_cluster.shared_dir("data") == tmp_path / "rwx" / "data"
    scratch = no_cluster.scratch_dir("kit-stage04-")
    assert scratch.parent == tmp_path / "rwx" / "scratch" and scratch.name.startswith("kit-stage04-")
    assert no_cluster.runtime_env()["env_vars"] == {no_cluster.STORAGE_ENV: str(tmp_path / "rwx")}


def test_a_remote_cluster_without_shared_storage_is_refused(no_cluster, monkeypatch):
    monkeypatch.setattr(no_cluster, "is_remote", lambda: True)
    with pytest.raises(no_cluster.StorageMissing, match="KIT_SHARED_STORAGE is not set") as caught:
        no_cluster.shared_dir("ray_results")
    assert "ReadWriteMany" in caught.value.fix


def test_scratch_is_in_the_temp_dir_on_a_local_ray(no_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert no_cluster.scratch_dir("kit-x-").parent == tmp_path / "tmp"


def test_runtime_env_ships_the_kit_package(no_cluster):
    env = no_cluster.runtime_env()
    assert env["py_modules"] == [str(harness.REPO / "kit")]
    assert (Path(env["py_modules"][0]) / "__init__.py").exists()
    assert env["env_vars"] == {}


def test_serve_endpoint_is_loopback_locally_and_the_heads_host_on_a_cluster(no_cluster, monkeypatch):
    assert no_cluster.serve_host() == ("127.0.0.1", "127.0.0.1")
    monkeypatch.setattr(no_cluster, "is_remote", lambda: True)
    monkeypatch.setenv(no_cluster.ADDRESS_ENV, "ray://kit-raycluster-head-svc.ai.svc:10001")
    assert no_cluster.serve_host() == ("0.0.0.0", "kit-raycluster-head-svc.ai.svc")
    monkeypatch.setenv(no_cluster.SERVE_HOST_ENV, "serve.example.internal")
    assert no_cluster.serve_host()[1] == "serve.example.internal"


def test_the_model_is_copied_to_shared_storage_once_per_content(no_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv(no_cluster.STORAGE_ENV, str(tmp_path / "rwx"))
    model = tmp_path / "notebook-disk" / "digits"
    model.mkdir(parents=True)
    (model / "model.pt").write_bytes(b"weights-1")
    (model / "metadata.json").write_text("{}")
    first = no_cluster.shared_model_dir(model)
    assert first.parent == (tmp_path / "rwx" / "models").resolve() and first.name.startswith("digits-")
    assert (first / "model.pt").read_bytes() == b"weights-1"
    assert no_cluster.shared_model_dir(model) == first
    assert no_cluster.shared_model_dir(first) == first  # already on the shared storage
    (model / "model.pt").write_bytes(b"weights-2")
    second = no_cluster.shared_model_dir(model)
    assert second != first and (second / "model.pt").read_bytes() == b"weights-2"
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, second.name])


def test_connect_refuses_an_address_that_is_not_ray_client(no_cluster):
    with pytest.raises(no_cluster.RayUnreachable, match="not a Ray Client address") as caught:
        no_cluster.connect("10.231.0.10:6379")
    assert "ray://" in caught.value.fix


def test_overlap_is_counted_per_node():
    from kit.course import raydemo

    records = [{"node": "a", "start": 0.0, "end": 1.0}, {"node": "b", "start": 0.5, "end": 1.5},
               {"node": "a", "start": 1.0, "end": 2.0}]
    assert raydemo.max_concurrency(records) == 2
    assert raydemo.max_concurrency_per_node(records) == 1
    assert raydemo.max_concurrency_per_node([*records, {"node": "b", "start": 1.0, "end": 1.2}]) == 2
