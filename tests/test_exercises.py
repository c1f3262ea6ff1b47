"""Exercise checks reject wrong answers with specific messages, accept right ones, and skip ahead."""

from __future__ import annotations

import os

import pytest
import ray

from kit.course import exercises
from kit.course.exercises import NotYetRight
from kit.machine import resources


def test_placeholder_skips_ahead_with_hint(capsys):
    answer = exercises.check("00.cpu_slots", ...)
    out = capsys.readouterr().out
    assert "not solved yet" in out and "Hint:" in out and "skip-ahead" in out
    assert answer == resources.detect().cpu_slots


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"known exercises: .*00\.cpu_slots"):
        exercises.get("99.nope")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("2", "expected a whole number of CPUs, got str"),
        (True, "expected a whole number of CPUs"),
        (10_000, "10000 is not what this container may use"),
    ],
)
def test_cpu_slots_rejects_wrong_answers(answer, message):
    with pytest.raises(NotYetRight, match=message) as wrong:
        exercises.check("00.cpu_slots", answer)
    assert "Hint:" in str(wrong.value)


def test_cpu_slots_explains_host_versus_container(monkeypatch):
    fake = resources.Resources(1.0, resources.GiB, 8, 8 * resources.GiB, 0, (), "cgroup CPU quota", "x")
    monkeypatch.setattr(resources, "detect", lambda: fake)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    with pytest.raises(NotYetRight, match="8 is what the host has; your container may only use 1"):
        exercises.check("00.cpu_slots", 8)
    assert exercises.check("00.cpu_slots", 1) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [("local", "runs everything on this machine"), ("kind", "throw-away kind cluster"),
     ("prod", "is not a profile"), (3, "a profile is a string")],
)
def test_cluster_profile_rejects_wrong_answers(answer, message):
    with pytest.raises(NotYetRight, match=message):
        exercises.check("00.cluster_profile", answer)
    assert exercises.check("00.cluster_profile", "Cluster") == "Cluster"


def test_every_exercise_has_a_hint_and_a_title():
    for id in exercises.all_ids():
        ex = exercises.get(id)
        assert ex.title and len(ex.hint) > 20, id


# --- stage 02: the checks run the learner's answer on a real local Ray ------------------


def test_remote_square_rejects_a_plain_function(local_ray):
    with pytest.raises(NotYetRight, match="plain Python function, not a Ray remote function"):
        exercises.check("02.remote_square", lambda x: x * x)


def test_remote_square_rejects_a_wrong_result(local_ray):
    @ray.remote
    def doubled(x):
        return x + x

    with pytest.raises(NotYetRight, match=r"gave \[0, 2, 4"):
        exercises.check("02.remote_square", doubled)
    reference = exercises.skip_ahead("02.remote_square")
    assert exercises.check("02.remote_square", reference) is reference


def test_counter_rejects_a_stateless_actor(local_ray):
    @ray.remote
    class Forgetful:
        def increment(self):
            count = 0
            count += 1
            return count

    with pytest.raises(NotYetRight, match=r"\[1, 1, 1\]: keep the count on self"):
        exercises.check("02.counter_actor", Forgetful)
    with pytest.raises(NotYetRight, match="not a Ray actor class"):
        exercises.check("02.counter_actor", dict)
    exercises.check("02.counter_actor", exercises.skip_ahead("02.counter_actor"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_cpus": 1000}, "infeasible and wait forever"),
        ({"num_cpus": 0.5}, "tasks fit in"),
        ({"num_cpus": -1}, "positive number"),
        ({"num_gpus": 1}, "only num_cpus is needed"),
        ([1], "expected a dict"),
    ],
)
def test_one_at_a_time_rejects_wrong_requests(local_ray, options, message):
    with pytest.raises(NotYetRight, match=message):
        exercises.check("02.one_at_a_time", options)


def test_one_at_a_time_accepts_the_whole_machine(local_ray):
    cpus = ray.cluster_resources()["CPU"]
    assert exercises.check("02.one_at_a_time", {"num_cpus": cpus}) == {"num_cpus": cpus}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": 5}, "without retry_exceptions=True"),
        ({"max_retries": 1, "retry_exceptions": True}, "gives up before the third attempt"),
        ({"max_retries": -1, "retry_exceptions": True}, "retries forever"),
        ({"max_retry": 2, "retry_exceptions": True}, "unknown option"),
        ({"max_retries": "2", "retry_exceptions": True}, "must be an int"),
    ],
)
def test_retry_options_reject_wrong_answers(local_ray, options, message):
    with pytest.raises(NotYetRight, match=message):
        exercises.check("02.retry_options", options)


def test_retry_options_reference_really_recovers(local_ray):
    from kit.course import raydemo

    options = exercises.skip_ahead("02.retry_options")
    assert raydemo.run_flaky(options) == (0.25, 3)
    exercises.check("02.retry_options", {"max_retries": 3, "retry_exceptions": True})


def test_one_at_a_time_explains_why_memory_is_not_the_answer(local_ray):
    with pytest.raises(NotYetRight, match="this task is CPU-hungry"):
        exercises.check("02.one_at_a_time", {"memory": 2**30})


def test_completion_order_rejects_ray_get_and_refs(local_ray):
    with pytest.raises(NotYetRight, match="in the order the tasks were submitted"):
        exercises.check("02.completion_order", lambda refs: ray.get(refs))
    with pytest.raises(NotYetRight, match="returned ObjectRefs"):
        exercises.check("02.completion_order", lambda refs: ray.wait(refs, num_returns=len(refs))[0])
    with pytest.raises(NotYetRight, match="write a function"):
        exercises.check("02.completion_order", [1, 2, 0])
    with pytest.raises(NotYetRight, match="raised ZeroDivisionError"):
        exercises.check("02.completion_order", lambda refs: 1 / 0)
    reference = exercises.skip_ahead("02.completion_order")
    assert exercises.check("02.completion_order", reference) is reference


def test_speedup_sentence_follows_the_measurement():
    from kit.course import raydemo

    records = [{"pid": p, "start": 0, "end": 1} for p in (1, 2)] * 4
    assert "Close to the ceiling" in raydemo.explain_speedup(raydemo.Timeline(records, 2.0, 1.05), 2)
    assert "Below the ceiling" in raydemo.explain_speedup(raydemo.Timeline(records, 2.0, 1.5), 2)
    assert "No real speed-up" in raydemo.explain_speedup(raydemo.Timeline(records, 2.0, 2.0), 2)
    assert "With one CPU" in raydemo.explain_speedup(raydemo.Timeline(records, 2.0, 2.0), 1)
    assert "×1.33 (the ceiling here is ×2)" in raydemo.explain_speedup(raydemo.Timeline(records, 2.0, 1.5), 2)


def test_checks_that_run_on_the_local_ray_say_so_against_a_remote_one(monkeypatch, capsys):
    """PROFILE='cluster' (the multi-node lane): 06.2, 06.3 and 07.3 judge what they can and say they did not run."""
    from kit.machine import ray_cluster

    monkeypatch.setattr(ray_cluster, "is_remote", lambda: False)
    assert not exercises.runs_only_locally("07.deployment") and capsys.readouterr().out == ""
    monkeypatch.setattr(ray_cluster, "is_remote", lambda: True)
    assert exercises.runs_only_locally("07.deployment")
    assert "07.deployment: this check runs your answer on the local Ray" in capsys.readouterr().out
