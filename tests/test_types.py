"""The kit type-checks: mypy (configured in pyproject.toml) runs in-process, in `make test`."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "pyproject.toml"
#: Ignored by git (build/); a warm cache makes the check take a second or two instead of ~40.
CACHE = REPO / "build" / "mypy_cache"


def _mypy(*args: str) -> tuple[str, int]:
    stdout, stderr, status = mypy_api.run(["--config-file", str(CONFIG), "--cache-dir", str(CACHE), *args])
    return stdout + stderr, status


def test_the_kit_type_checks():
    report, status = _mypy(str(REPO / "kit"))
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert status == 0 and not errors, f"mypy found {len(errors)} error(s):\n" + "\n".join(errors or [report])


def test_mypy_configuration_reports_a_type_error():
    """The configuration must not silence everything: a plain type error is still reported."""
    report, status = _mypy("-c", "count: int = 'three'")
    assert status == 1
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in report


def test_strict_modules_reject_an_untyped_function():
    """kit.config, kit.k8s, kit.versions and kit.errors are checked strictly (no untyped definitions)."""
    from mypy.config_parser import parse_config_file
    from mypy.options import Options

    options = Options()
    parse_config_file(options, lambda: None, str(CONFIG), stdout=None, stderr=None)
    for module in ("kit.config.train", "kit.k8s.builders.training", "kit.versions", "kit.errors", "kit.deploy.plan"):
        per_module = options.clone_for_module(module)
        strict = module != "kit.deploy.plan"
        assert per_module.disallow_untyped_defs is strict, module
        assert per_module.disallow_any_generics is strict, module
