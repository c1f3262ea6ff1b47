"""The kit's container image: Dockerfile, build arguments and the check its last step runs, kept in step with
the version lock; and every manifest that runs kit code runs it in the kit's image."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from kit import versions
from kit.deploy import layout as clusters
from kit.deploy.layout import REPO
from kit.k8s import traverse
from kit.machine import image_check

DOCKERFILE = (REPO / "Dockerfile").read_text()


def _image_args(variant: str) -> subprocess.CompletedProcess:
    # Run as a script with the system's view: the Makefile calls it before any venv exists.
    return subprocess.run([sys.executable, str(REPO / "kit" / "versions.py"), "image-args", variant],
                          capture_output=True, text=True, cwd="/")


def test_dockerfile_takes_every_version_from_the_lock():
    declared = re.findall(r"^ARG (\w+)", DOCKERFILE, flags=re.M)
    assert sorted(declared) == sorted(versions.image_build_args("cpu"))
    assert not re.search(r"^ARG \w+=", DOCKERFILE, flags=re.M), "an ARG default would be a second version source"
    for name, version in versions.PYTHON_PINS.items():
        assert f"{name}=={version}" not in DOCKERFILE
    assert versions.RAY not in DOCKERFILE and versions.TORCH not in DOCKERFILE


def test_dockerfile_checks_the_image_it_built_and_runs_as_ray_user():
    steps = [line for line in DOCKERFILE.splitlines() if line and not line.startswith("#")]
    assert "python -m kit.machine.image_check" in "\n".join(steps[-4:])
    assert steps[-2] == "USER 1000" and "FROM ${BASE_IMAGE}" in DOCKERFILE


def _installed(name: str) -> str:
    version = versions.installed_version(name)
    assert version is not None, name
    return version.split("+")[0]  # torch's local suffix (+cpu) is not part of the pin


@pytest.mark.parametrize(("variant", "tag", "base", "index"), [
    ("cpu", "kit", "ray", "https://download.pytorch.org/whl/cpu"),
    ("gpu", "kit-gpu", "ray-gpu", "https://download.pytorch.org/whl/cu130"),
])
def test_image_args_build_the_image_from_what_this_environment_runs(variant, tag, base, index):
    """Parsed like docker would: the tag, the base image, and every pin equal to the version installed here."""
    done = _image_args(variant)
    assert done.returncode == 0, done.stderr
    words = shlex.split(done.stdout)
    assert words[:2] == ["-t", versions.IMAGES[tag]]
    build_args = dict(word.split("=", 1) for flag, word in zip(words[2::2], words[3::2], strict=True)
                      if flag == "--build-arg")
    assert build_args["BASE_IMAGE"] == versions.IMAGES[base]
    assert build_args["TORCH_INDEX_URL"] == index
    assert build_args["TORCH_REQUIREMENT"] == f"torch=={_installed('torch')}"
    pins = dict(re.sub(r"\[.*\]", "", requirement).split("==") for requirement in build_args["REQUIREMENTS"].split())
    assert set(pins) == set(versions.IMAGE_PINS)
    assert pins == {name: _installed(name) for name in versions.IMAGE_PINS}


def test_image_args_refuse_an_unknown_variant():
    done = _image_args("tpu")
    assert done.returncode != 0 and "image variant 'tpu'" in done.stderr
    with pytest.raises(ValueError, match="use one of cpu, gpu"):
        versions.image_build_args("tpu")


def test_make_image_builds_with_the_lock():
    done = subprocess.run(["make", "-n", "image", "VARIANT=gpu"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "docker build" in done.stdout and "kit/versions.py image-args gpu" in done.stdout


def test_dockerignore_sends_only_what_the_image_needs():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines and {"!pyproject.toml", "!README.md", "!kit/"} <= set(lines)


def test_image_check_passes_in_the_kits_own_environment(capsys):
    assert image_check.main() == 0
    assert f"ray {_installed('ray')}" in capsys.readouterr().out.splitlines()[0]


def test_image_check_names_a_wrong_version_and_a_missing_module(monkeypatch, capsys):
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version", lambda name: "2.9.0" if name == "ray" else real(name))
    monkeypatch.setitem(image_check.ENTRY_POINTS, "kit.not_a_module", "a resource that does not exist")
    assert image_check.main() == 1
    err = capsys.readouterr().err
    assert f"ray 2.9.0 is installed, the lock says {versions.RAY}" in err
    assert "kit.not_a_module (a resource that does not exist) does not import: ModuleNotFoundError" in err


def _runs_kit_code(container: dict, doc: dict) -> bool:
    argv = list(map(str, [*container.get("command", []), *container.get("args", [])]))
    runs_kit_cli = "kit" in argv  # python -m kit <command>
    in_ray_spec = doc["kind"] in ("RayJob", "RayService") and "kit." in str(doc["spec"])
    return runs_kit_cli or "kit." in " ".join(argv) or in_ray_spec


#: Every container of clusters/ that runs kit code: (kind, container), the TrainJob's trainer included.
KIT_CONTAINERS = sorted([
    ("InferenceService", "kserve-container"), ("InferenceService", "wait-for-model"), ("Job", "main"),
    ("RayJob", "ray-head"), ("RayJob", "ray-job-submitter"), ("RayJob", "ray-worker"),
    ("RayService", "ray-head"), ("RayService", "ray-worker"), ("TrainJob", "trainer"),
    # the servers' init containers verify the model with kit.train.artifact: head and worker pods
    ("RayService", "wait-for-model"), ("RayService", "wait-for-model"),
])


@pytest.mark.parametrize("size_name", ["base", *clusters.OVERLAYS])
def test_every_pod_that_runs_kit_code_runs_the_kit_image(size_name):
    size = clusters.BASE_SIZE if size_name == "base" else clusters.OVERLAYS[size_name]
    kit_images = (versions.IMAGES["kit"], versions.IMAGES["kit-gpu"])
    checked = []
    for docs in clusters.build(clusters.BASE, size).values():
        for doc in docs:
            if doc["kind"] == "TrainJob":
                assert doc["spec"]["trainer"]["image"] in kit_images
                checked.append((doc["kind"], "trainer"))
            for _, pod in traverse.pod_specs(doc):
                for _, _, container in traverse.containers(pod):
                    if _runs_kit_code(container, doc):
                        assert container["image"] in kit_images, doc
                        checked.append((doc["kind"], container["name"]))
    assert sorted(checked) == KIT_CONTAINERS  # none missed by the walk, none counted twice


def test_versions_vendored_inside_ray_are_not_the_installed_ones(tmp_path, monkeypatch):
    """Importing Ray puts ray/thirdparty_files (psutil 7.x) first on sys.path; the pin check must look past it."""
    vendored = tmp_path / "ray" / "thirdparty_files" / "psutil-7.2.2.dist-info"
    vendored.mkdir(parents=True)
    (vendored / "METADATA").write_text("Metadata-Version: 2.1\nName: psutil\nVersion: 7.2.2\n")
    monkeypatch.syspath_prepend(str(vendored.parent))
    assert versions.installed_version("psutil") == versions.PYTHON_PINS["psutil"]
    assert versions.installed_version("not-a-distribution") is None


def _python_m_targets(text: str) -> set[str]:
    return set(re.findall(r"(?:python|torchrun)\S*\s+(?:\S+\s+)*?-m\s+([\w.]+)", text))


def test_every_module_a_manifest_runs_with_python_m_is_runnable_and_image_checked():
    """`python -m X` needs X to be a module, or a package with __main__: a regroup once broke the RayJob's."""
    import importlib.util

    text = "\n".join(path.read_text() for path in (REPO / "clusters").rglob("*.yaml"))
    targets = _python_m_targets(text.replace("\n    - ", " ").replace("\n      - ", " "))
    assert {"kit", "kit.train.entry", "kit.train.launchers", "kit.serve.kserve_model"} <= targets, targets
    for module in targets:
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{module} (run by a manifest) does not exist"
        runnable = f"{module}.__main__" if spec.submodule_search_locations is not None else module
        assert importlib.util.find_spec(runnable) is not None, f"`python -m {module}` cannot run: no {runnable}"
        assert module == "kit" or runnable in image_check.ENTRY_POINTS, f"image_check does not import {runnable}"
