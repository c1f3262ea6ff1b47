"""``python -m kit train`` and ``python -m kit serve``: exit codes, message and fix, and a served model."""

from __future__ import annotations

import httpx
import pytest
from serving_cases import TINY_TRAINING

from kit import cli
from kit.machine.processes import free_port
from kit.serve import predictor
from kit.serve.process import ServerProcess
from kit.train import artifact


def test_train_in_process_writes_the_artifact_and_reports_it(tmp_path, capsys):
    import json

    config = json.dumps({**TINY_TRAINING, "hidden": 8})
    code = cli.main(["train", "--launcher", "in-process", "--epochs", "1", "--model-dir", str(tmp_path / "m"),
                     "--config", config, "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["artifact"] == str((tmp_path / "m").resolve()) and len(report["history"]) == 1
    assert artifact.verify(tmp_path / "m").config.hidden == 8


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--config", '{"epochs": 0}'], "TrainConfig.epochs: must be an integer > 0, got 0"),
    (["train", "--config", '{"epoch": 2}'], "unknown field"),
    (["train", "--config", "[1]"], "must be a JSON object"),
    (["train", "--launcher", "in-process", "--workers", "2"],
     "trains in one process but the config asks for workers=2"),
])
def test_train_usage_errors_exit_2_without_a_traceback(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_serve_without_a_model_exits_1_with_the_fix(tmp_path, capsys):
    assert cli.main(["serve", "--server", "baseline", "--model-dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "none") in err and "Fix: train one: `python -m kit train" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("server", "ready"), [("baseline", "/healthz"), ("kserve", "/v2/health/ready")])
def test_serve_command_serves_the_trained_model(model_dir, server, ready):
    rows = predictor.sample_instances(5, seed=7)
    port = free_port()
    process = ServerProcess("kit", ["serve", "--server", server, "--model-dir", str(model_dir), "--port", str(port)],
                            port=port, ready_path=ready, name=f"kit-serve-{server}")
    with process:
        response = httpx.post(f"{process.url}/v1/models/digits:predict", json={"instances": rows}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == predictor.Predictor(model_dir).predict(rows)
