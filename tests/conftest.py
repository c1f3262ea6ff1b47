"""Shared test setup: the notebook time/memory table printed at the end of `make test`."""

from __future__ import annotations

import tempfile

import harness
import pytest
from serving_cases import TINY_TRAINING

from kit.machine.processes import environment


def pytest_terminal_summary(terminalreporter) -> None:
    if not harness.RUNS:
        return
    path = harness.write_report(harness.RUNS)
    terminalreporter.section("notebook time and memory (whole process tree, PSS)")
    terminalreporter.write_line(harness.report_table(harness.RUNS))
    terminalreporter.write_line(f"written to {path}")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A small digits model trained once with ``train_func`` for every serving test (tests copy it
    before damaging it): the same artifact every launcher writes."""
    from kit.train.loop import train_func

    path = tmp_path_factory.mktemp("model") / "digits"
    train_func({**TINY_TRAINING, "epochs": 8, "model_dir": str(path)})
    return path


@pytest.fixture(scope="session")
def local_ray(tmp_path_factory):
    """One local Ray for the unit tests that need it (starting Ray costs 10-15 s on 2 cores).

    Uses its own token file and session directory, and proves on teardown that
    ``kit.machine.local_ray.stop()`` leaves no Ray process and no session files behind.
    """
    from kit.machine import local_ray as raylocal

    with environment({raylocal.TOKEN_ENV: str(tmp_path_factory.mktemp("ray-auth") / "auth_token"),
                      raylocal.TEMP_ENV: tempfile.mkdtemp(prefix="kt-")}):  # short: Ray's sockets live there
        info = raylocal.start()
        yield info
        raylocal.stop()
        leftover = raylocal.ray_processes(info.temp_dir)
        assert not leftover, f"Ray processes outlived kit.machine.local_ray.stop(): {leftover}"
        assert not info.temp_dir.exists(), f"{info.temp_dir} outlived kit.machine.local_ray.stop()"


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """Stage 12's language model, trained briefly once for the LLM tests: (model directory, training result)."""
    from kit.llm.server import missing_packages

    missing = missing_packages(("tokenizers", "transformers"))
    assert not missing, f"the LLM extra is missing {missing}: `make test` installs it (requirements-llm.txt)"
    from kit.llm.model import LMConfig, train_lm

    path = tmp_path_factory.mktemp("llm") / "model"
    result = train_lm(LMConfig(sentences=600, steps=60, batch_size=16, log_every=20, threads=1), path, quiet=True)
    return path, result
