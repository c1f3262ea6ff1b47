"""The scorer against real servers on loopback: one that answers well, one per way a team's server misbehaves,
artifacts that do not load, a served artifact, and a scorer killed mid-run (SIGKILL) then restarted."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from kit.hackathon import challenge, endpoints, scorer
from kit.hackathon.store import Store
from kit.paths import REPO_ROOT


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    return challenge.write_hidden(tmp_path_factory.mktemp("organiser") / "hidden")


@pytest.fixture(scope="module")
def centroids():
    team = challenge.team_arrays()
    return endpoints.Centroids(team["x_train"], team["y_train"])


def _config(hidden, **overrides):
    return scorer.ScorerConfig.smoke(str(hidden), **{"request_timeout_s": 1.0, "load_requests": 30, **overrides})


def _score(tmp_path, hidden, kind, target, **overrides):
    with Store(tmp_path / "r.sqlite") as store:
        sid = store.submit("team", kind, target)
        [outcome] = scorer.drain(store, _config(hidden, **overrides), only=sid)
        return outcome, store.get(sid)


BROKEN = [
    ("http500", "HTTP 500 from", "read your server's log"),
    ("schema", "not a v2 inference response", "outputs"),
    ("shape", "63 labels from", "one label per row"),
    ("huge", "is over 256 KiB", "nothing more"),
    ("slow", "no complete answer from", "answer faster"),
    ("trickle", "took over the limit to arrive", "within the request time limit"),
    ("garbage", "is not JSON", "outputs"),
]


@pytest.mark.parametrize(("mode", "reason", "fix"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_misbehaving_endpoint_is_recorded_failed_with_an_actionable_reason(tmp_path, hidden, mode, reason, fix):
    with endpoints.Endpoint(mode, delay_s=5.0) as server:
        began = time.monotonic()
        outcome, row = _score(tmp_path, hidden, "endpoint", server.url)
    assert outcome.status == row.status == "failed"
    assert reason in row.reason and fix in row.reason.partition("Fix: ")[2], row.reason
    assert row.score is None
    assert time.monotonic() - began < 15  # capped: a hanging server cannot hold the scorer


def test_an_unreachable_endpoint_fails_with_what_to_check(tmp_path, hidden):
    _outcome, row = _score(tmp_path, hidden, "endpoint", endpoints.refused_url())
    assert row.status == "failed" and "cannot connect" in row.reason and "reachable" in row.reason


def test_a_good_endpoint_scores_without_cost_and_reproducibly(tmp_path, hidden, centroids):
    with endpoints.Endpoint("good", centroids) as server:
        first, row = _score(tmp_path, hidden, "endpoint", server.url)
        second, _ = _score(tmp_path / "again", hidden, "endpoint", server.url)
    assert first.status == "scored", first.reason
    assert 0.5 < row.accuracy < 0.95 and 0.3 < row.shifted_accuracy < 0.95  # a centroid model: fair, not great
    assert row.cpu_s_per_1k is None and "not measurable" in row.details
    assert (second.figures["accuracy"], second.figures["shifted_accuracy"]) == (row.accuracy, row.shifted_accuracy)
    assert 0 < row.score < 100 and row.p95_ms > 0


def test_a_slow_but_correct_endpoint_is_over_the_latency_budget(tmp_path, hidden, centroids):
    from kit.hackathon.scoring import ScoringBudget

    with endpoints.Endpoint("good", centroids, lag_s=0.05) as server:
        _, row = _score(tmp_path, hidden, "endpoint", server.url, budget=ScoringBudget(max_p95_ms=20.0))
    assert row.status == "failed" and "over the event's limit of 20 ms" in row.reason


def test_artifacts_that_do_not_load_fail_with_the_file_and_the_fix(tmp_path, hidden, model_dir):
    missing = tmp_path / "nothing-here"
    _, row = _score(tmp_path, hidden, "artifact", str(missing))
    assert row.status == "failed" and "does not exist" in row.reason
    tampered = tmp_path / "tampered"
    shutil.copytree(model_dir, tampered)
    with (tampered / "model.pt").open("ab") as weights:
        weights.write(b"x")
    _, row = _score(tmp_path, hidden, "artifact", str(tampered))
    assert row.status == "failed" and "SHA-256" in row.reason and "Fix:" in row.reason


def test_an_artifact_is_served_here_and_its_cost_measured(tmp_path, hidden, model_dir):
    outcome, row = _score(tmp_path, hidden, "artifact", str(model_dir))
    assert outcome.status == "scored", outcome.reason
    assert row.cpu_s_per_1k is not None and row.cpu_s_per_1k > 0
    assert 0.1 < row.accuracy <= 1 and row.p95_ms > 0
    assert scorer.describe(outcome).startswith("team: score ")


def test_a_scorer_killed_mid_run_loses_nothing_and_scores_once(tmp_path, hidden, centroids):
    db = tmp_path / "r.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "kit", "hackathon", "score", "--db", str(db), "--hidden", str(hidden),
               "--smoke"]
    with endpoints.Endpoint("good", centroids, lag_s=0.3) as server:  # slow enough to be killed mid-run
        first = subprocess.Popen([*command, "--team", "t", "--endpoint", server.url], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.requests:
            time.sleep(0.05)
        assert server.requests, "the scorer never reached the endpoint"
        with Store(db) as store:
            assert store.get(1).status == "running"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        with Store(db) as store:
            assert store.get(1).status == "running"  # what a killed scorer leaves
        server.lag_s = 0.0  # the restarted scorer need not wait
        again = subprocess.run([*command, "--drain"], env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        third = subprocess.run([*command, "--drain"], env=env, capture_output=True, text=True, timeout=120)
        assert "nothing queued" in third.stdout
    with Store(db) as store:
        [row] = store.submissions()
    assert (row.status, row.attempts) == ("scored", 2) and row.score is not None


def test_the_pool_is_bounded_by_memory_and_cpus():
    assert scorer.plan_workers(8, memory_budget_mib=scorer.SERVER_MIB * 1.5) == 1
    assert scorer.plan_workers(8, memory_budget_mib=0) == 1
    assert scorer.plan_workers(2, memory_budget_mib=10_000) <= min(2, os.cpu_count() or 1)


def test_a_server_a_killed_scorer_left_is_stopped_on_recovery(tmp_path):
    import psutil

    def orphan(model_dir) -> int:  # started through a shell that exits: re-parented, like a killed scorer's child
        pid_file = tmp_path / f"{model_dir.name}.pid"
        code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
        subprocess.run(["sh", "-c", f'"{sys.executable}" -c "{code}" {scorer.SERVER_MODULE} --model-dir {model_dir} &'],
                       check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not pid_file.exists():
            time.sleep(0.05)
        time.sleep(0.1)
        return int(pid_file.read_text())

    ours, other = orphan(tmp_path / "ours"), orphan(tmp_path / "other")
    try:
        assert scorer.stop_orphaned_servers(str(tmp_path / "ours")) == [ours]
        assert not psutil.pid_exists(ours) or psutil.Process(ours).status() == psutil.STATUS_ZOMBIE
        assert psutil.Process(other).is_running()  # another directory's server is left alone
    finally:
        for pid in (ours, other):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def test_the_command_line_records_and_explains(tmp_path, hidden, capsys):
    from kit.cli import main as cli

    db = str(tmp_path / "r.sqlite")
    base = ["hackathon", "score", "--db", db, "--hidden", str(hidden), "--smoke"]
    assert cli([*base, "--endpoint", "http://127.0.0.1:9"]) == 2  # no --team: a usage error
    assert cli([*base, "--team", "t", "--endpoint", endpoints.refused_url(), "--json"]) == 1
    [outcome] = json.loads(capsys.readouterr().out)  # only JSON on stdout
    assert outcome["status"] == "failed" and "cannot connect" in outcome["reason"]
    assert cli([*base, "--drain"]) == 0 and "nothing queued" in capsys.readouterr().out
    assert cli(["hackathon", "rehearse", "--teams", "0"]) == 1
    assert "--teams 8" in capsys.readouterr().err


def test_the_hidden_set_the_command_writes_is_the_one_the_teams_data_leaves_out(tmp_path, capsys):
    from kit.cli import main as cli

    db = tmp_path / "organiser" / "r.sqlite"
    assert cli(["hackathon", "score", "--db", str(db), "--smoke", "--seed", "5", "--team", "t",
                "--endpoint", endpoints.refused_url()]) == 1
    written = (db.parent / "hidden" / challenge.HIDDEN_FILE).read_bytes()
    assert written == (challenge.write_hidden(tmp_path / "reference") / challenge.HIDDEN_FILE).read_bytes()
