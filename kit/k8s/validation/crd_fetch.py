"""Getting the pinned CRD files onto a fresh machine, byte for byte the ones CI validates with.

:func:`ensure` is what ``make lab`` and ``make test`` run (``python -m kit crds ensure``): nothing
happens when the CRD directory :func:`kit.k8s.validation.crds.find_crd_dir` picks holds every file
of the lock (:data:`kit.versions.CRD_SHA256`) unchanged — CI's ``../shared/crds`` — and when no
directory is found, :func:`fetch` downloads the files from GitHub at the pinned tags
(:data:`kit.versions.OPERATORS`) into ``build/crds``. Each download is checked against its SHA-256
and staged in a temporary directory: the files land (each by an atomic rename) only when every one
of them downloaded completely and matched.

``$KIT_CRD_BASE_URL`` replaces ``https://raw.githubusercontent.com`` in every URL: a mirror with the
same layout (``<owner>/<repo>/<tag>/<path>``). The tests serve one on 127.0.0.1; the checksums still apply.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.k8s.validation import crds
from kit.versions import CRD_SHA256, OPERATORS

GITHUB_RAW = "https://raw.githubusercontent.com"
BASE_URL_ENV = "KIT_CRD_BASE_URL"

#: (GitHub repo, operator in kit.versions.OPERATORS, upstream folder, files): where each CRD file comes from.
CRD_SOURCES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("ray-project/kuberay", "kuberay", "ray-operator/config/crd/bases/",
     ("ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml")),
    ("kubeflow/trainer", "kubeflow-trainer", "manifests/base/crds/",
     ("trainer.kubeflow.org_trainjobs.yaml", "trainer.kubeflow.org_trainingruntimes.yaml",
      "trainer.kubeflow.org_clustertrainingruntimes.yaml")),
    ("kubeflow/trainer", "training-operator", "manifests/base/crds/", ("kubeflow.org_pytorchjobs.yaml",)),
    ("kubernetes-sigs/kueue", "kueue", "config/components/crd/bases/",
     ("kueue.x-k8s.io_localqueues.yaml", "kueue.x-k8s.io_clusterqueues.yaml",
      "kueue.x-k8s.io_resourceflavors.yaml", "kueue.x-k8s.io_cohorts.yaml",
      "kueue.x-k8s.io_workloadpriorityclasses.yaml")),
    ("kserve/kserve", "kserve", "config/crd/full/",
     ("serving.kserve.io_inferenceservices.yaml", "serving.kserve.io_servingruntimes.yaml",
      "serving.kserve.io_clusterservingruntimes.yaml")),
    ("kserve/kserve", "kserve", "config/crd/full/llmisvc/", ("serving.kserve.io_llminferenceservices.yaml",)),
    ("prometheus-operator/prometheus-operator", "prometheus-operator", "example/prometheus-operator-crd/",
     ("monitoring.coreos.com_prometheusrules.yaml", "monitoring.coreos.com_servicemonitors.yaml",
      "monitoring.coreos.com_podmonitors.yaml")),
)
#: Files that are not CRDs but are fetched with them: local name -> (repo, operator, upstream path).
EXTRA_FILES: dict[str, tuple[str, str, str]] = {
    "runtime.torch-distributed.yaml": (
        "kubeflow/trainer", "kubeflow-trainer", "manifests/base/runtimes/torch_distributed.yaml"),
}

Opener = Callable[..., Any]


class CRDFetchError(KitError, RuntimeError):
    """Downloading the pinned CRD files failed (offline, GitHub unreachable, or a file not the pinned one)."""


class CRDLockError(KitError):
    """A CRD directory was found, but some of its files are missing or differ from the lock."""


def upstream_paths() -> dict[str, str]:
    """Local file name -> ``<owner>/<repo>/<tag>/<path>`` of the pinned upstream file."""
    paths = {}
    for repo, operator, folder, names in CRD_SOURCES:
        for name in names:
            paths[name] = f"{repo}/{OPERATORS[operator]}/{folder}{name}"
    for name, (repo, operator, upstream_path) in EXTRA_FILES.items():
        paths[name] = f"{repo}/{OPERATORS[operator]}/{upstream_path}"
    return paths


def crd_urls(base_url: str | None = None) -> dict[str, str]:
    """Local file name -> URL: ``base_url``, else ``$KIT_CRD_BASE_URL``, else raw GitHub, then the upstream path."""
    base = (base_url or os.environ.get(BASE_URL_ENV) or GITHUB_RAW).rstrip("/")
    return {name: f"{base}/{path}" for name, path in upstream_paths().items()}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_problems(directory: Path) -> list[str]:
    """One line per file of the lock that ``directory`` lacks or holds with another SHA-256 (empty: all match)."""
    problems = []
    for name, expected in sorted(CRD_SHA256.items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif (got := sha256_of(path)) != expected:
            problems.append(f"{name}: SHA-256 {got}, expected {expected}")
    return problems


def lock_error(directory: Path, problems: list[str]) -> CRDLockError:
    """The error for a CRD directory whose files differ from the lock, with the way to repair that directory."""
    if directory == crds.fetched_dir():
        fix = "run `python -m kit crds fetch` to download them again"
    else:
        fix = (f"replace those files with the pinned ones (`python -m kit crds urls`), or unset "
               f"{crds.CRD_DIR_ENV} / move {directory} away so that `python -m kit crds ensure` downloads them")
    return CRDLockError(f"{directory} ({crds.origin_of(directory)}) does not hold the pinned CRD files:\n  "
                        + "\n  ".join(problems), fix=fix)


def offline_fix() -> str:
    """What to do when a download failed: try again online, or copy the files by hand."""
    return (f"when online, run `make crds` (or `python -m kit crds fetch`) again; offline, {crds.copy_fix()}, "
            "then run `python -m kit crds check`")


def _download(url: str, opener: Opener, timeout: float) -> bytes:
    try:
        with opener(url, timeout=timeout) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as error:
        raise CRDFetchError(f"could not download {url}: HTTP {error.code} {error.reason}",
                            fix="check the pinned tag in kit.versions.OPERATORS; " + offline_fix()) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CRDFetchError(
            f"could not download {url}: {reason}\nAre you offline, or is that host unreachable?",
            fix=offline_fix()) from error
    return body


def _check(name: str, url: str, body: bytes) -> None:
    if not body.strip():
        raise CRDFetchError(f"{name}: downloaded an empty file from {url}; nothing was written",
                            fix="try again; check your proxy")
    got = hashlib.sha256(body).hexdigest()
    if got != CRD_SHA256[name]:
        raise CRDFetchError(
            f"{name} from {url} is not the file the kit was tested with: SHA-256 {got}, "
            f"expected {CRD_SHA256[name]} (kit.versions.CRD_SHA256). Nothing was written.",
            fix="check the pinned tag in kit.versions.OPERATORS, or report it if upstream rewrote the tag")


def fetch(dest: Path | str | None = None, *, opener: Opener | None = None, timeout: float = 30.0,
          base_url: str | None = None) -> list[Path]:
    """Download the pinned CRD files into ``dest`` (default: :func:`crds.download_dir`); return their paths.

    Every file is downloaded and checked against the lock before any lands: a failure
    (offline, HTTP error, a SHA-256 mismatch) raises :class:`CRDFetchError` and leaves ``dest`` as it was.
    """
    target = Path(dest) if dest is not None else crds.download_dir()
    target.mkdir(parents=True, exist_ok=True)
    opener = opener or urllib.request.urlopen
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target) as staging:
        staged = []
        for name, url in crd_urls(base_url).items():
            body = _download(url, opener, timeout)
            _check(name, url, body)
            (Path(staging) / name).write_bytes(body)
            staged.append(name)
        for name in staged:
            os.replace(Path(staging) / name, target / name)
    return [target / name for name in staged]


@dataclass(frozen=True)
class Ensured:
    """What :func:`ensure` found or did."""

    directory: Path
    origin: str
    downloaded: bool

    def __str__(self) -> str:
        done = "downloaded and verified" if self.downloaded else "found"
        return (f"CRDs: {len(CRD_SHA256)} files {done} in {self.directory} ({self.origin}); "
                "each matches kit.versions.CRD_SHA256")


def ensure(*, opener: Opener | None = None, timeout: float = 30.0, base_url: str | None = None) -> Ensured:
    """The CRD directory validation will use, downloaded first when none is found.

    - a directory found whose files all match the lock: nothing is downloaded (CI's ``../shared/crds``);
    - none found: :func:`fetch` into :func:`crds.download_dir` (``$KIT_CRD_DIR`` when set, else ``build/crds``);
    - the download directory ``build/crds`` incomplete or changed: downloaded again;
    - ``$KIT_CRD_DIR`` or ``../shared/crds`` with files that are missing or changed: :class:`CRDLockError` naming
      each one (the kit never overwrites, nor silently bypasses, files you put there).
    """
    try:
        directory: Path | None = crds.find_crd_dir()
    except crds.CRDDirNotFoundError:
        directory = None
    if directory is None:
        target = crds.download_dir()
    else:
        problems = lock_problems(directory)
        if not problems:
            return Ensured(directory, crds.origin_of(directory), downloaded=False)
        if directory != crds.fetched_dir():
            raise lock_error(directory, problems)
        target = directory
    fetch(target, opener=opener, timeout=timeout, base_url=base_url)
    return Ensured(target, crds.origin_of(target), downloaded=True)
