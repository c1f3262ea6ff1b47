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
    saved = {key: os.environ.get(key) for key in SETTINGS}
    os.environ.update(_lane_settings())
    try:
        yield _lane_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
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
