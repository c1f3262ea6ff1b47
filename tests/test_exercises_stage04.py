"""Stage 04 exercises reject wrong answers with specific messages and accept right ones.

04.2's check is tested in parts without Ray (the trainer's configuration, the rules for what the workers
did, the wrapper that notes it) and once for real: the reference through the fault drill on the local Ray.
"""

from __future__ import annotations

import json

import pytest

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage04, stage04_drill


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


@pytest.mark.parametrize(("answer", "message"), [
    (3, "epoch 2 was only half done .* load the checkpoint of epoch 1 and train epoch 2 again"),
    (1, "epoch 1 finished and its checkpoint was saved before the crash"),
    (0, "restarts from scratch only when no checkpoint exists"),
    (7, r"trains epochs 1..3; 7 is not one of them"),
    (2.0, "must be a whole number"),
])
def test_resume_epoch_rejects_wrong_answers(answer, message):
    _wrong("04.resume_epoch", answer, message)


def test_resume_epoch_accepts_the_crashed_epoch(capsys):
    assert exercises.check("04.resume_epoch", 2) == 2
    assert exercises.check("04.resume_epoch", ...) == 2
    assert "not solved yet" in capsys.readouterr().out


# --------------------------------------------------------------------------- 04.2: the trainer's configuration


def _loop(config):
    return None


def _trainer(**changes):
    import ray.train

    from kit.train.ray_local import LocalTorchTrainer

    failure = ray.train.FailureConfig(max_failures=changes.pop("max_failures", 1))
    arguments = {
        "train_loop_config": stage04.exercise_config("/tmp/digits.npz"),
        "scaling_config": ray.train.ScalingConfig(num_workers=changes.pop("workers", 1)),
        "run_config": ray.train.RunConfig(name=changes.pop("name", "run"), storage_path="/tmp/storage",
                                          failure_config=failure),
    }
    return LocalTorchTrainer(changes.pop("loop", _loop), **{**arguments, **changes})


def _precheck(trainer) -> None:
    stage04.precheck_trainer(trainer, stage04.exercise_config("/tmp/digits.npz"), "/tmp/storage", "run")


@pytest.mark.parametrize(("changes", "message"), [
    ({"max_failures": 0}, r"max_failures=0 \(the default\) allows no restart"),
    ({"max_failures": -1}, "restarts without limit"),
    ({"max_failures": 100}, "a crash loop would run"),
    ({"workers": 2}, r"ScalingConfig\(num_workers=2\): this exercise runs one worker"),
    ({"datasets": {"train": object()}}, r"datasets=\{'train': ...\}: this exercise's rows are in config\['data'\]"),
    ({"train_loop_config": {"epochs": 3}}, "pass the config make_trainer receives"),
    ({"name": "mine"}, r"RunConfig\(name='mine'.*a run is found again by both"),
    ({"loop": lambda: None}, "must take one argument, config"),
])
def test_precheck_rejects_wrong_trainers(changes, message):
    with pytest.raises(NotYetRight, match=message):
        _precheck(_trainer(**changes))


def test_precheck_rejects_what_is_not_a_trainer_and_accepts_the_reference_configuration():
    with pytest.raises(NotYetRight, match="make_trainer returned a dict: return the TorchTrainer"):
        _precheck({})
    _precheck(_trainer())


def test_the_check_rejects_what_is_not_a_function_before_running_anything():
    with pytest.raises(NotYetRight, match="`make_trainer` is a int; write a function"):
        stage04.check_train_loop(42)


def test_train_loop_is_registered_and_the_giveaway_is_gone():
    assert "04.train_loop" in exercises.all_ids() and "04.max_failures" not in exercises.all_ids()


def test_the_rows_file_holds_the_kits_digits(tmp_path):
    import numpy as np

    from kit.train import ray_data

    rows = np.load(stage04.write_rows(tmp_path / "digits.npz", 8))
    assert rows["x"].shape == (8, 64) and rows["x"].dtype == np.float32
    assert rows["y"].tolist() == [row["y"] for row in ray_data.digits_rows(8)]


def test_one_worker_reads_its_dataset_without_a_split_and_without_ray_data_actors():
    """kit.train.ray_local with a dataset (stage 04's Ray Data path on a bigger machine)."""
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback

    from kit.train import ray_local

    trainer = _trainer(datasets={"train": object()})
    assert trainer.data_config._datasets_to_split == []
    data = [c for c in trainer._create_default_callbacks() if isinstance(c, DatasetsCallback)]
    assert [type(c) for c in data] == [ray_local._LocalDatasetsCallback]
    two = _trainer(workers=2, datasets={"train": object()})
    assert two.data_config._datasets_to_split == "all"
    assert [type(c) for c in two._create_default_callbacks() if isinstance(c, DatasetsCallback)] == [DatasetsCallback]


# --------------------------------------------------------------------------- 04.2: what the workers did


def _report(epoch, checkpoint=True, **metrics):
    return {"metrics": {"epoch": epoch, **metrics}, "checkpoint": checkpoint}


def _notes(epochs, checkpoint=True, asked=True, restored=False, rank=True):
    return {"reports": [_report(e, checkpoint) for e in epochs], "asked_checkpoint": asked,
            "restored": restored, "rank": rank}


RIGHT = [_notes([1, 2]), _notes([2, 3], restored=True)]


@pytest.mark.parametrize(("attempts", "message"), [
    ([_notes([])], r"never called ray.train.report\(...\)"),
    ([{**_notes([]), "reports": [{"metrics": {"loss": 1.0}, "checkpoint": True}]}], "have no 'epoch'"),
    ([_notes([1, 2], checkpoint=False)], r"epoch\(s\) \[1, 2\] were reported without a checkpoint"),
    ([_notes([0, 1, 2])], r"reported epochs \[0, 1, 2\] before its worker crashed in epoch 2, expected \[1, 2\]"),
    ([_notes([1, 2], rank=False), RIGHT[1]], r"never asked ray.train.get_context\(\) for its rank"),
    ([_notes([1, 2])], r"did not restart it: FailureConfig\(max_failures=...\)"),
    ([RIGHT[0], _notes([1, 2, 3], asked=False)], "trains from epoch 1 again because the loop never calls "
                                                 r"ray.train.get_checkpoint\(\)"),
    ([RIGHT[0], _notes([1, 2, 3], restored=False)], "found no checkpoint after the restart"),
    ([RIGHT[0], _notes([1, 2, 3], restored=True)], r"loaded epoch 1's checkpoint but reported epochs \[1, 2, 3\], "
                                                   r"expected \[2, 3\]"),
])
def test_judge_names_what_the_loop_got_wrong(attempts, message):
    with pytest.raises(NotYetRight, match=message):
        stage04_drill.judge(attempts, total=3, crash_at=2)


def test_judge_accepts_a_resumed_drill():
    stage04_drill.judge(RIGHT, total=3, crash_at=2)


def test_observed_notes_each_call_to_ray_train_and_restores_it(tmp_path, monkeypatch):
    import ray.train

    calls = []
    monkeypatch.setattr(ray.train, "report", lambda metrics, checkpoint=None: calls.append(metrics))
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: None)
    monkeypatch.setattr(ray.train, "get_context", lambda: "the context")
    originals = (ray.train.report, ray.train.get_checkpoint, ray.train.get_context)

    def loop(config):
        import ray.train

        assert ray.train.get_checkpoint() is None
        assert ray.train.get_context() == "the context"
        for epoch in range(1, config["epochs"] + 1):
            ray.train.report({"epoch": epoch}, checkpoint="a checkpoint" if epoch > 1 else None)

    stage04_drill.Observed(loop, str(tmp_path), crash_at=99)({"epochs": 2})
    assert calls == [{"epoch": 1}, {"epoch": 2}]
    assert (ray.train.report, ray.train.get_checkpoint, ray.train.get_context) == originals
    notes = json.loads((tmp_path / "attempt-1.json").read_text())
    assert notes == {"reports": [_report(1, False), _report(2, True)], "asked_checkpoint": True, "restored": False,
                     "rank": True}
    assert stage04_drill.read_attempts(tmp_path) == [notes]


def test_the_digits_rows_are_the_kits_digits():
    import numpy as np

    from kit.train import data, ray_data

    rows = ray_data.digits_rows(5)
    pixels, labels = data.digit_pixels()
    assert np.allclose([row["x"] for row in rows], pixels[:5] * data.DIGITS_SCALE)
    assert [row["y"] for row in rows] == labels[:5].tolist()


# --------------------------------------------------------------------------- 04.2 for real


def test_the_reference_survives_the_drill_on_the_local_ray(local_ray, capsys):
    make_trainer = exercises.skip_ahead("04.train_loop")
    stage04.check_train_loop(make_trainer)
    drill = stage04.drill(make_trainer)  # the check's run, not a second one
    assert [stage04_drill.epochs(a) for a in drill["attempts"]] == [[1, 2], [2, 3]]
    assert [a["restored"] for a in drill["attempts"]] == [False, True]
    assert drill["metrics"]["epoch"] == 3
    assert "attempt 2 loaded epoch 1's checkpoint and reported epochs [2, 3]" in capsys.readouterr().out


# --------------------------------------------------------------------------- 04.3, stretch


def _rayjob(**changes):
    from kit.k8s.builders import training

    arguments = {"namespace": "kit", "max_failures": 1, "queue": "kit-queue", **changes}
    return training.rayjob({"epochs": 3, "workers": changes.pop("workers", 2)},
                           **{k: v for k, v in arguments.items() if k != "workers"})


@pytest.mark.parametrize(("answer", "message"), [
    ({"kind": "RayCluster"}, "expected kind RayJob"),
    (_rayjob(queue=None), "no kueue.x-k8s.io/queue-name=kit-queue label: without it Kueue never sees the job"),
    (_rayjob(namespace="default"), "namespace 'default': the team's queue lives in 'kit'"),
    (_rayjob(workers=1), r"runs 1 Ray Train worker\(s\) on 1 worker pod\(s\)"),
    (_rayjob(max_failures=0), "max_failures=0 .* allows no restart"),
    (_rayjob(max_failures=-1), "restarts without limit"),
])
def test_rayjob_rejects_wrong_answers(answer, message):
    _wrong("04.rayjob", answer, message)


def test_rayjob_accepts_the_reference_and_a_validator_problem_is_named():
    assert exercises.check("04.rayjob", _rayjob())["kind"] == "RayJob"
    broken = _rayjob()
    del broken["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["securityContext"]
    _wrong("04.rayjob", broken, r"problem\(s\) from the validator")
