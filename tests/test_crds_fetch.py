"""``kit.k8s.validation.crd_fetch`` and ``python -m kit crds``: a fresh clone gets exactly the CRDs CI uses.

Nothing here reaches the internet: the "upstream" is a mirror of the pinned files served on 127.0.0.1
(``$KIT_CRD_BASE_URL`` / ``base_url``), or an opener that answers in-process.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.cli import main
from kit.k8s.validation import crd_fetch, crds
from kit.machine import doctor
from kit.paths import REPO_ROOT
from kit.versions import CRD_SHA256, OPERATORS

# --------------------------------------------------------------------------- a local "GitHub"


class _Handler(http.server.SimpleHTTPRequestHandler):
    requested: list[str]

    def do_GET(self) -> None:
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:
        """Quiet: the test reads ``requested``, not a log on stderr."""


class Mirror:
    """The pinned files under ``<owner>/<repo>/<tag>/<path>`` (raw.githubusercontent.com's layout), served locally."""

    def __init__(self, root: Path):
        self.root = root
        self.requested: list[str] = []
        handler = type("Handler", (_Handler,), {"requested": self.requested})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def path_of(self, name: str) -> Path:
        return self.root / crd_fetch.upstream_paths()[name]


@pytest.fixture
def real_crds() -> Path:
    """The CRD directory this checkout validates with (CI: ../shared/crds), found before any test moves the lookup."""
    return crds.find_crd_dir()


@pytest.fixture
def mirror(tmp_path, real_crds) -> Iterator[Mirror]:
    served = Mirror(tmp_path / "mirror")
    for name in crd_fetch.upstream_paths():
        served.path_of(name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real_crds / name, served.path_of(name))
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    thread.join()


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: what offline looks like, without leaving the machine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def nowhere(tmp_path, monkeypatch, real_crds) -> Path:
    """No $KIT_CRD_DIR, no ../shared/crds, an empty build/crds: the lookup of a fresh clone."""
    monkeypatch.delenv(crds.CRD_DIR_ENV, raising=False)
    monkeypatch.delenv(crd_fetch.BASE_URL_ENV, raising=False)
    monkeypatch.setattr(crds, "SHARED_CRD_DIR", tmp_path / "shared" / "crds")
    monkeypatch.setattr(crds, "FETCHED_CRD_DIR", tmp_path / "clone" / "build" / "crds")
    return tmp_path / "clone" / "build" / "crds"


def _yaml_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.yaml")) if directory.is_dir() else []


def _assert_nothing_landed(directory: Path) -> None:
    assert _yaml_files(directory) == []
    assert not directory.is_dir() or list(directory.iterdir()) == [], "a staging directory was left behind"


# --------------------------------------------------------------------------- a fresh clone, end to end


def _fresh_clone(tmp_path: Path) -> Path:
    """The files a learner's clone has that these commands read, with no ../shared beside it."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO_ROOT / "kit", clone / "kit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "clusters" / "base", clone / "clusters" / "base")
    shutil.copy(REPO_ROOT / "pyproject.toml", clone)
    assert not (tmp_path / "shared").exists()
    return clone


def _kit(clone: Path, *argv: str, base_url: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in (crds.CRD_DIR_ENV, "PYTHONPATH")}
    env[crd_fetch.BASE_URL_ENV] = base_url
    return subprocess.run([sys.executable, "-m", "kit", *argv], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_fresh_clone_downloads_the_pinned_crds_then_validates_and_downloads_nothing_again(tmp_path, mirror):
    clone = _fresh_clone(tmp_path)
    before = _kit(clone, "validate", "clusters/base/raycluster.yaml", base_url=mirror.url)
    assert before.returncode == 2 and "no CRD files" in before.stderr and "make crds" in before.stderr

    done = _kit(clone, "crds", "ensure", base_url=mirror.url)
    assert done.returncode == 0, done.stderr
    fetched = clone / "build" / "crds"
    assert f"downloaded and verified in {fetched}" in done.stdout
    assert _yaml_files(fetched) == sorted(CRD_SHA256)
    assert crd_fetch.lock_problems(fetched) == []
    assert sorted(mirror.requested) == sorted(f"/{path}" for path in crd_fetch.upstream_paths().values())

    valid = _kit(clone, "validate", "clusters/base/raycluster.yaml", "clusters/base/kueue.yaml", base_url=mirror.url)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert valid.stdout.strip().endswith("all valid")

    requests = len(mirror.requested)
    again = _kit(clone, "crds", "ensure", base_url=mirror.url)
    assert again.returncode == 0 and f"found in {fetched}" in again.stdout
    assert len(mirror.requested) == requests


def test_a_fresh_clone_offline_fails_with_what_to_do_and_writes_nothing(tmp_path):
    clone = _fresh_clone(tmp_path)
    done = _kit(clone, "crds", "ensure", base_url=_closed_port_url())
    assert done.returncode == 1
    assert "could not download http://127.0.0.1:" in done.stderr and "offline" in done.stderr
    fix = done.stderr.split("Fix: ", 1)[1]
    assert "python -m kit crds urls" in fix and "../shared/crds" in fix and crds.CRD_DIR_ENV in fix
    assert "Traceback" not in done.stderr
    _assert_nothing_landed(clone / "build" / "crds")


# --------------------------------------------------------------------------- fetch: verified, all or nothing


def test_fetch_lands_every_file_from_the_mirror(mirror, tmp_path):
    written = crd_fetch.fetch(tmp_path / "out", base_url=mirror.url)
    assert sorted(p.name for p in written) == sorted(CRD_SHA256)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(CRD_SHA256)
    assert crd_fetch.lock_problems(tmp_path / "out") == []


def test_a_tampered_file_is_rejected_by_name_with_both_checksums_and_nothing_lands(mirror, tmp_path):
    name = "ray.io_rayjobs.yaml"
    tampered = mirror.path_of(name).read_bytes().replace(b"type: integer", b"type: string", 1)
    mirror.path_of(name).write_bytes(tampered)
    with pytest.raises(crd_fetch.CRDFetchError) as error:
        crd_fetch.fetch(tmp_path / "out", base_url=mirror.url)
    message = str(error.value)
    assert message.startswith(f"{name} from {mirror.url}/")
    assert f"SHA-256 {hashlib.sha256(tampered).hexdigest()}, expected {CRD_SHA256[name]}" in message
    assert "OPERATORS" in error.value.fix
    _assert_nothing_landed(tmp_path / "out")


def test_a_missing_upstream_file_is_an_http_error_naming_the_url(mirror, tmp_path):
    name = "kueue.x-k8s.io_cohorts.yaml"
    mirror.path_of(name).unlink()
    with pytest.raises(crd_fetch.CRDFetchError, match=f"could not download .*/{re.escape(name)}: HTTP 404"):
        crd_fetch.fetch(tmp_path / "out", base_url=mirror.url)
    _assert_nothing_landed(tmp_path / "out")


def test_a_failure_leaves_files_already_there_untouched(mirror, tmp_path):
    out = tmp_path / "out"
    crd_fetch.fetch(out, base_url=mirror.url)
    mirror.path_of("ray.io_rayclusters.yaml").write_text("kind: CustomResourceDefinition\n")
    with pytest.raises(crd_fetch.CRDFetchError):
        crd_fetch.fetch(out, base_url=mirror.url)
    assert crd_fetch.lock_problems(out) == [] and _yaml_files(out) == sorted(CRD_SHA256)
    assert [p.name for p in out.iterdir() if not p.name.endswith(".yaml")] == []


def test_an_empty_download_is_named(tmp_path):
    class Empty:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self) -> bytes:
            return b"\n"

    with pytest.raises(crd_fetch.CRDFetchError, match="downloaded an empty file"):
        crd_fetch.fetch(tmp_path, opener=lambda url, timeout: Empty())
    _assert_nothing_landed(tmp_path)


def test_offline_fails_clearly_and_writes_nothing(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(crd_fetch.CRDFetchError) as error:
        crd_fetch.fetch(tmp_path / "crds", opener=offline)
    assert "could not download https://raw.githubusercontent.com/" in str(error.value)
    assert "offline" in str(error.value) and crds.CRD_DIR_ENV in error.value.fix
    _assert_nothing_landed(tmp_path / "crds")


def test_fetch_crds_option_of_validate_reports_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(crd_fetch.BASE_URL_ENV, _closed_port_url())
    assert main(["validate", "--fetch-crds", str(tmp_path)]) == 1
    assert "fetch failed: could not download http://127.0.0.1:" in capsys.readouterr().err


# --------------------------------------------------------------------------- URLs and the lock


def test_crd_urls_are_built_from_the_version_lock(monkeypatch):
    monkeypatch.delenv(crd_fetch.BASE_URL_ENV, raising=False)
    urls = crd_fetch.crd_urls()
    assert urls["ray.io_rayclusters.yaml"] == (
        f"https://raw.githubusercontent.com/ray-project/kuberay/{OPERATORS['kuberay']}"
        "/ray-operator/config/crd/bases/ray.io_rayclusters.yaml")
    assert urls["kubeflow.org_pytorchjobs.yaml"] == (
        f"https://raw.githubusercontent.com/kubeflow/trainer/{OPERATORS['training-operator']}"
        "/manifests/base/crds/kubeflow.org_pytorchjobs.yaml")
    assert urls["runtime.torch-distributed.yaml"] == (
        f"https://raw.githubusercontent.com/kubeflow/trainer/{OPERATORS['kubeflow-trainer']}"
        "/manifests/base/runtimes/torch_distributed.yaml")
    assert urls["kueue.x-k8s.io_localqueues.yaml"].startswith(
        f"https://raw.githubusercontent.com/kubernetes-sigs/kueue/{OPERATORS['kueue']}/config/components/crd/bases/")
    assert urls["serving.kserve.io_inferenceservices.yaml"].startswith(
        f"https://raw.githubusercontent.com/kserve/kserve/{OPERATORS['kserve']}/config/crd/full/")
    assert urls["serving.kserve.io_llminferenceservices.yaml"] == (
        f"https://raw.githubusercontent.com/kserve/kserve/{OPERATORS['kserve']}"
        "/config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml")
    assert urls["monitoring.coreos.com_servicemonitors.yaml"] == (
        "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/"
        f"{OPERATORS['prometheus-operator']}/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml")
    assert set(urls) == {path.name for path in crds.find_crd_dir().glob("*.yaml")}
    assert crd_fetch.crd_urls("http://mirror.example/")["ray.io_rayclusters.yaml"] == (
        f"http://mirror.example/ray-project/kuberay/{OPERATORS['kuberay']}"
        "/ray-operator/config/crd/bases/ray.io_rayclusters.yaml")


def test_lock_has_a_checksum_for_exactly_the_fetched_files_and_they_match():
    assert set(CRD_SHA256) == set(crd_fetch.crd_urls())
    assert crd_fetch.lock_problems(crds.find_crd_dir()) == []


# --------------------------------------------------------------------------- ensure: what make lab / make test run


def _no_network(url, timeout):
    raise AssertionError(f"ensure() downloaded {url} although the CRDs were there")


def test_ensure_downloads_nothing_when_the_crds_found_match_the_lock():
    """CI's ../shared/crds (or a clone's build/crds after its first `make test`): no download."""
    ensured = crd_fetch.ensure(opener=_no_network)
    assert ensured.directory == crds.find_crd_dir() and not ensured.downloaded


def test_ensure_downloads_into_build_crds_when_none_is_found(nowhere, mirror):
    ensured = crd_fetch.ensure(base_url=mirror.url)
    assert ensured.directory == nowhere and ensured.downloaded
    assert crds.find_crd_dir() == nowhere and crd_fetch.lock_problems(nowhere) == []
    assert not crd_fetch.ensure(opener=_no_network).downloaded


def test_ensure_downloads_again_when_its_own_copy_is_incomplete(nowhere, mirror):
    crd_fetch.fetch(nowhere, base_url=mirror.url)
    (nowhere / "ray.io_rayjobs.yaml").unlink()
    assert crd_fetch.ensure(base_url=mirror.url).downloaded
    assert crd_fetch.lock_problems(nowhere) == []


def test_ensure_never_overwrites_a_shared_copy_that_differs(nowhere, tmp_path, monkeypatch, real_crds):
    shared = tmp_path / "shared" / "crds"
    shutil.copytree(real_crds, shared)
    monkeypatch.setattr(crds, "SHARED_CRD_DIR", shared)
    (shared / "kueue.x-k8s.io_cohorts.yaml").unlink()
    (shared / "ray.io_rayjobs.yaml").write_text("kind: CustomResourceDefinition\n")
    with pytest.raises(crd_fetch.CRDLockError) as error:
        crd_fetch.ensure(opener=_no_network)
    message = str(error.value)
    assert "kueue.x-k8s.io_cohorts.yaml: missing" in message
    assert f"ray.io_rayjobs.yaml: SHA-256 {crd_fetch.sha256_of(shared / 'ray.io_rayjobs.yaml')}, " \
           f"expected {CRD_SHA256['ray.io_rayjobs.yaml']}" in message
    assert str(shared) in message and "crds urls" in error.value.fix


def test_ensure_downloads_into_an_empty_kit_crd_dir(nowhere, tmp_path, monkeypatch, mirror):
    named = tmp_path / "my-crds"
    monkeypatch.setenv(crds.CRD_DIR_ENV, str(named))
    ensured = crd_fetch.ensure(base_url=mirror.url)
    assert ensured.directory == named and ensured.origin == f"${crds.CRD_DIR_ENV}"
    assert _yaml_files(named) == sorted(CRD_SHA256) and _yaml_files(nowhere) == []


# --------------------------------------------------------------------------- the command, the doctor, make


def test_crds_check_and_urls_commands(nowhere, real_crds, capsys):
    assert main(["crds", "check"]) == 1
    assert "no CRD files" in capsys.readouterr().err
    shutil.copytree(real_crds, nowhere)
    assert main(["crds", "check"]) == 0
    assert f"found in {nowhere}" in capsys.readouterr().out
    (nowhere / "ray.io_rayservices.yaml").write_text("changed\n")
    assert main(["crds", "check"]) == 1
    err = capsys.readouterr().err
    assert "ray.io_rayservices.yaml: SHA-256" in err and "python -m kit crds fetch" in err
    assert main(["crds", "urls"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [[name, CRD_SHA256[name]] for name in crd_fetch.crd_urls()]


def test_doctor_checks_the_crds_are_there_and_match_the_lock(nowhere, real_crds):
    missing = doctor.check_crds()
    assert missing.status == doctor.FAIL and "not found" in missing.detail
    assert "python -m kit crds fetch" in missing.fix and "crds urls" in missing.fix and crds.CRD_DIR_ENV in missing.fix
    shutil.copytree(real_crds, nowhere)
    found = doctor.check_crds()
    assert found.status == doctor.OK and f"{len(CRD_SHA256)} files in {nowhere}" in found.detail
    (nowhere / "kueue.x-k8s.io_localqueues.yaml").write_text("changed\n")
    (nowhere / "ray.io_rayjobs.yaml").unlink()
    changed = doctor.check_crds()
    assert changed.status == doctor.FAIL and "2 file(s)" in changed.detail
    assert "kueue.x-k8s.io_localqueues.yaml: SHA-256" in changed.detail
    assert "ray.io_rayjobs.yaml: missing" in changed.detail
    assert changed.fix == "run `python -m kit crds fetch` to download them again"
    assert "CRD schemas" in {check.name for check in doctor.run_checks()}


def _make_n(target: str) -> list[str]:
    done = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_and_lab_ensure_the_crds_first():
    """`make test` stops when the CRDs cannot be had; `make lab` says so and opens JupyterLab anyway."""
    test = _make_n("test")
    ensure = next(i for i, line in enumerate(test) if line.endswith("-m kit crds ensure"))
    assert ensure < next(i for i, line in enumerate(test) if " -m pytest" in line)
    lab = _make_n("lab")
    ensure = next(i for i, line in enumerate(lab) if "-m kit crds ensure ||" in line)
    assert ensure < next(i for i, line in enumerate(lab) if "jupyter lab" in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_in_an_offline_fresh_clone_stops_before_pytest_with_what_to_do(tmp_path):
    clone = _fresh_clone(tmp_path)
    shutil.copy(REPO_ROOT / "Makefile", clone)
    (clone / "lab").mkdir()
    shutil.copy(REPO_ROOT / "lab" / "overrides.json", clone / "lab")
    stamp = tmp_path / "installed"  # stands for .venv/.kit-installed: this interpreter already has the kit's pins
    stamp.touch()
    env = {key: value for key, value in os.environ.items() if key not in (crds.CRD_DIR_ENV, "MAKEFLAGS")}
    env[crd_fetch.BASE_URL_ENV] = _closed_port_url()
    done = subprocess.run(["make", "--no-print-directory", "test", f"VPY={sys.executable}", f"STAMP={stamp}"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "could not download http://127.0.0.1:" in done.stderr and "Fix: " in done.stderr
    assert "python -m kit crds urls" in done.stderr and crds.CRD_DIR_ENV in done.stderr
    assert " -m pytest" not in done.stdout and " -m ruff" not in done.stdout
    _assert_nothing_landed(clone / "build" / "crds")
