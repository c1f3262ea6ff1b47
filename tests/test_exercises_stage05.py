"""Stage 05 exercises reject wrong answers with specific messages and accept right ones.

05.1's real job (a venv and pip install torch, about a minute) runs in the notebook test; here the
check's client is a fake that records the trainer and answers with canned logs.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from kubeflow.trainer import CustomTrainer

from kit import versions
from kit.course import exercises
from kit.course.exercises import NotYetRight, stage05
from kit.k8s.builders import runtime, training
from kit.train import launchers


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


class FakeClient:
    """Stands in for TrainerClient: ``train`` records the trainer; the job ends ``status`` with ``logs``."""

    def __init__(self, logs: list[str], status: str = "Complete") -> None:
        self.logs, self.status = logs, status
        self.trainers: list = []
        self.deleted: list[str] = []

    def get_runtime(self, name):
        return SimpleNamespace(name=name)

    def train(self, runtime=None, trainer=None):
        self.trainers.append(trainer)
        return f"job{len(self.trainers)}"

    def wait_for_job_status(self, name, status, timeout, polling_interval):
        return SimpleNamespace(name=name, status=self.status)

    def get_job(self, name):
        return SimpleNamespace(name=name, status=self.status)

    def get_job_logs(self, name):
        return iter(self.logs)

    def delete_job(self, name):
        self.deleted.append(name)


@pytest.fixture
def fake(monkeypatch):
    client = FakeClient(["rank 0 of 2", "rank 1 of 2"])
    monkeypatch.setattr(stage05, "make_client", lambda: client)
    return client


def report_rank():
    import os

    print(f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}")


def uses_notebook_import():
    print(f"rank {os.environ['RANK']}")  # `os` comes from this module, not from inside the function


def _submit(func=report_rank, packages=("torch==0",), env=None, returns=None, trains=True):
    env = launchers.child_env(2, PET_NPROC_PER_NODE="2") if env is None else env

    def submit(client, runtime):
        if not trains:
            return "nothing"
        name = client.train(runtime=runtime, trainer=CustomTrainer(func=func, packages_to_install=list(packages),
                                                                   env=env))
        return returns or name

    return submit


@pytest.mark.parametrize(("answer", "message"), [
    ("job", "`submit` is a str; write a function submit"),
    (_submit(trains=False), "submitted no job: call client.train"),
    (_submit(returns="my-job"), "submit returned 'my-job', not the job's name"),
    (_submit(func=uses_notebook_import), "uses os from the notebook: the SDK copies only the function's source"),
    (_submit(packages=()), "packages_to_install is empty"),
    (_submit(env={"PET_NPROC_PER_NODE": "2"}), "the job's environment is exactly `env`"),
    (_submit(env=launchers.child_env(1)), "PET_NPROC_PER_NODE is None"),
    (lambda client, runtime: client.train(runtime=runtime, trainer="python train.py"), "got a str"),
    (lambda client, runtime: 1 / 0, "raised ZeroDivisionError"),
])
def test_first_job_rejects_wrong_submissions(fake, answer, message):
    _wrong("05.first_job", answer, message)


@pytest.mark.parametrize(("logs", "status", "message"), [
    (["rank 0 of 1"], "Complete", r"world size \[1\], expected 2"),
    (["rank 0 of 2", "rank 0 of 2"], "Complete", r"only rank\(s\) \[0\] printed"),
    (["hello"], "Complete", "printed no 'rank R of W' line"),
    (["Traceback", "NameError: name 'x' is not defined"], "Failed", "(?s)the job ended Failed.*NameError"),
])
def test_first_job_reads_the_logs(fake, logs, status, message):
    fake.logs, fake.status = logs, status
    _wrong("05.first_job", _submit(), message)
    assert fake.deleted == ["job1"], "the check deletes the job it ran, also when the answer is wrong"


def test_first_job_reads_two_ranks_printing_on_one_line(fake):
    fake.logs = ["rank 0 of 2rank 1 of 2", ""]
    exercises.check("05.first_job", _submit())
    assert stage05.rank_lines() == ["rank 0 of 2", "rank 1 of 2"], "what the notebook shows, one report each"


def test_first_job_accepts_the_reference_and_ships_a_self_contained_function(fake):
    reference = exercises.skip_ahead("05.first_job")
    assert exercises.check("05.first_job", reference) is reference
    (trainer,) = fake.trainers
    assert stage05.notebook_globals(trainer.func) == []
    assert trainer.env["PET_NPROC_PER_NODE"] == "2" and trainer.packages_to_install == [versions.requirement("torch")]
    assert stage05.last_logs == ["rank 0 of 2", "rank 1 of 2"] and fake.deleted == ["job1"]
    assert trainer.env["TMPDIR"] and not Path(trainer.env["TMPDIR"]).exists(), "the job's private TMPDIR is removed"


def _job(**kwargs) -> dict:
    args = {"name": "two-nodes", "namespace": versions.NAMESPACE, "runtime": runtime.NAME, "num_nodes": 2,
            "queue": versions.LOCAL_QUEUE, **kwargs}
    return training.trainjob({"epochs": 2, "workers": 2}, **args)


@pytest.mark.parametrize(("answer", "message"), [
    ({"kind": "PyTorchJob"}, "expected kind TrainJob"),
    (_job(num_nodes=1), "numNodes is 1"),
    (_job(runtime=runtime.UPSTREAM_NAME), "runtimeRef names 'torch-distributed'"),
    (_job(queue=None), "no kueue.x-k8s.io/queue-name=kit-queue label"),
    (_job(queue="team-b"), "no kueue.x-k8s.io/queue-name=kit-queue label"),
])
def test_two_node_trainjob_rejects_wrong_answers(answer, message):
    _wrong("05.two_node_trainjob", answer, message)


def test_two_node_trainjob_accepts_the_reference():
    exercises.check("05.two_node_trainjob", exercises.skip_ahead("05.two_node_trainjob"))


def test_job_times_split_the_wall_time_and_name_the_largest_part():
    from kit.course import kfdemo

    result = {"train_started_unix": 170.0, "history": [{"epoch_s": 2.5}, {"epoch_s": 2.5}]}
    times = kfdemo.job_times(100.0, 150.0, result, 180.0, 200.0)
    assert (times.install_s, times.startup_s, times.epochs_s, times.after_s, times.steps_s) == (50, 20, 10, 20, 5)
    assert times.total_s == 100.0
    assert "The largest part: venv + pip install torch, 50% of the job" in kfdemo.describe_times(times)
    # marks the callback missed fall back to the next one
    assert kfdemo.job_times(100.0, None, result, None, 200.0).after_s == 0.0


@pytest.mark.parametrize(("job_rate", "kernel", "expected"), [
    (500.0, {1: 13000.0, 2: 400.0}, "The thread count explains it: 2 threads"),
    (12000.0, {1: 13000.0, 2: 12500.0}, "about as fast as this kernel"),
    (500.0, {1: 13000.0, 2: 12500.0}, "slower than this kernel with the same threads"),
])
def test_rate_explanation_follows_the_measurements(job_rate, kernel, expected):
    from kit.course import kfdemo

    assert expected in kfdemo.explain_rate(job_rate, 2, kernel)
    assert f"{job_rate:,.0f} samples/s with 2 thread(s)" in kfdemo.explain_rate(job_rate, 2, kernel)
