"""One source for versions: pyproject.toml and environment.yml must agree with kit/versions.py."""

from __future__ import annotations

import re
from pathlib import Path

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
    assert f"pytorch-cpu={versions.TORCH}" in deps
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    minor = tuple(int(x) for x in python.split("=")[1].split("."))
    assert versions.PYTHON_MIN <= minor <= versions.PYTHON_MAX


def test_python_range_agrees_everywhere():
    requires = _pyproject()["project"]["requires-python"]
    assert requires == f">={versions.PYTHON_MIN[0]}.{versions.PYTHON_MIN[1]},<3.{versions.PYTHON_MAX[1] + 1}"
    makefile = (REPO / "Makefile").read_text()
    assert f"{versions.PYTHON_MIN} <= v <= {versions.PYTHON_MAX}" in makefile


def test_torch_pinned_exactly_so_no_cuda_build_is_pulled():
    assert versions.PYTHON_PINS["torch"] == "2.13.0"
    assert "torch==2.13.0" in _pyproject()["project"]["dependencies"]


def test_images_match_the_ray_version_and_never_float():
    assert versions.IMAGES["ray"].endswith(f":{versions.RAY}-py311-cpu")
    assert f":{versions.RAY}-" in versions.IMAGES["ray-gpu"]
    for image in versions.IMAGES.values():
        assert ":" in image and not image.endswith(":latest"), image


def test_operator_versions_are_tags():
    for name, tag in versions.OPERATORS.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), (name, tag)
