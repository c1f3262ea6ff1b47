"""Local Ray: token auth on with a private token, sized from the container, idempotent start."""

from __future__ import annotations

import os
import stat

import ray

from kit.machine import local_ray as raylocal
from kit.machine import resources


def test_token_file_is_created_private_and_fixed_when_readable(tmp_path):
    path = raylocal.ensure_token(tmp_path / "dir" / "auth_token")
    assert len(path.read_text()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    before = path.read_text()
    raylocal.ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == before
    assert raylocal.token_is_private(path)


def test_object_store_is_capped_for_small_and_large_machines():
    assert raylocal.object_store_bytes(2 * resources.GiB) == 128 * resources.MiB
    assert raylocal.object_store_bytes(64 * resources.GiB) == raylocal.OBJECT_STORE_BYTES
    assert raylocal.object_store_bytes(512 * resources.MiB) == 80 * resources.MiB  # Ray's floor
    assert raylocal.ray_memory_bytes(2 * resources.GiB, 128 * resources.MiB) == 1920 * resources.MiB


def test_start_sizes_ray_from_the_container_with_token_auth(local_ray):
    from ray._raylet import AuthenticationMode, get_authentication_mode

    assert local_ray.cpus == resources.detect().cpu_slots
    assert local_ray.object_store_bytes <= raylocal.OBJECT_STORE_BYTES
    assert local_ray.dashboard_url is None
    assert get_authentication_mode() == AuthenticationMode.TOKEN
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert raylocal.token_is_private(local_ray.token_path)
    assert raylocal.ray_processes(local_ray.temp_dir), "Ray should run under the kit's session directory"
    limits = resources.detect()
    store = raylocal.object_store_bytes(limits.memory_bytes)
    assert ray.cluster_resources()["memory"] == raylocal.ray_memory_bytes(limits.memory_bytes, store)


def test_start_again_reuses_the_running_ray(local_ray):
    again = raylocal.start()
    assert again.reused and again.address == local_ray.address
    assert "reused" in str(again)


def test_ray_rejects_a_client_without_the_token(local_ray, tmp_path):
    """Token auth is really on: a driver with a wrong token cannot connect."""
    import subprocess
    import sys

    wrong = tmp_path / "wrong"
    wrong.write_text("0" * 64)
    code = (
        "import ray, sys\n"
        f"ray.init(address={local_ray.address!r})\n"
    )
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(wrong))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Authentication" in out.stderr or "InvalidAuthToken" in out.stderr


def test_remote_work_runs(local_ray):
    @ray.remote
    def double(x):
        return 2 * x

    assert ray.get([double.remote(i) for i in range(4)]) == [0, 2, 4, 6]
