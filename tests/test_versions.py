"""One source for versions: pyproject.toml and environment.yml must agree with kit/versions.py."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from kit import versions

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_pyproject_dependencies_are_exactly_the_pins():
    assert sorted(_pyproject()["project"]["dependencies"]) == sorted(versions.requirements())


def test_environment_yml_pins_match():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    expected = {r for r in versions.requirements() if not r.startswith("torch==")}
    assert set(pip) == expected, "environment.yml's pip list drifted from kit/versions.py"
    # Binder takes a CPU build of PyTorch from conda-forge, at the pinned version.
    torch = versions.installed_version("torch")
    assert torch is not None and f"pytorch-cpu={torch.split('+')[0]}" in deps  # the torch the tests run
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    minor = tuple(int(x) for x in python.split("=")[1].split("."))
    assert versions.PYTHON_MIN <= minor <= versions.PYTHON_MAX


def test_python_range_agrees_everywhere():
    """Three sources written separately (pyproject, the Makefile's guard, the lock) name one range."""
    assert (versions.PYTHON_MIN, versions.PYTHON_MAX) == ((3, 10), (3, 12))
    requires = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", _pyproject()["project"]["requires-python"])
    assert requires, _pyproject()["project"]["requires-python"]
    assert (int(requires[1]), int(requires[2]) - 1) == (10, 12)  # "<3.13": 3.12 is the last supported
    guard = re.search(r"\((\d+), (\d+)\) <= v <= \((\d+), (\d+)\)", (REPO / "Makefile").read_text())
    assert guard, "the Makefile's Python version guard is gone"
    assert tuple(int(x) for x in guard.groups()) == (3, 10, 3, 12)
    assert versions.PYTHON_MIN <= sys.version_info[:2] <= versions.PYTHON_MAX  # this test's own Python


def test_torch_pinned_exactly_so_no_cuda_build_is_pulled():
    assert versions.PYTHON_PINS["torch"] == "2.13.0"
    assert "torch==2.13.0" in _pyproject()["project"]["dependencies"]


def _tag(image: str) -> str:
    name, _, tag = image.split("@")[0].rpartition(":")
    assert name and tag and tag != "latest", image
    return tag


def test_images_are_built_on_the_installed_ray_and_never_float():
    """The image tags name the Ray this environment runs (not just the constant they were formatted from)."""
    ray_installed = versions.installed_version("ray")
    for name, variant in (("ray", "cpu"), ("ray-gpu", "gpu")):
        ray_base = re.fullmatch(r"(\d+\.\d+\.\d+)-py3(\d+)-(cpu|gpu)", _tag(versions.IMAGES[name]))
        assert ray_base, versions.IMAGES[name]
        assert ray_base[1] == ray_installed and ray_base[3] == variant
        assert versions.PYTHON_MIN[1] <= int(ray_base[2]) <= versions.PYTHON_MAX[1]
    project_version = _pyproject()["project"]["version"]
    for name, variant in (("kit", "cpu"), ("kit-gpu", "gpu")):
        kit = re.fullmatch(r"(\d+\.\d+\.\d+)-ray(\d+\.\d+\.\d+)-(cpu|gpu)", _tag(versions.IMAGES[name]))
        assert kit, versions.IMAGES[name]
        assert (kit[1], kit[2], kit[3]) == (project_version, ray_installed, variant)
    for image in versions.IMAGES.values():
        _tag(image)  # every image has a tag, and none is :latest


def test_a_floating_or_untagged_image_is_caught():
    for floating in ("rayproject/ray:latest", "rayproject/ray", "kindest/node@sha256:0123"):
        with pytest.raises(AssertionError):
            _tag(floating)


def test_operator_versions_are_tags():
    for name, tag in versions.OPERATORS.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), (name, tag)
