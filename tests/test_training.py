"""kit.train.data, kit.train.models, kit.train.loop: validation up front, both call styles, determinism,
sharding, checkpoint resume. All in this process, no launcher: a few seconds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from kit.config.train import ConfigError, TrainConfig, as_config, check_machine
from kit.machine import resources
from kit.train import data, models
from kit.train.loop import parse_output, train_func

SMALL = {"epochs": 2, "hidden": 32, "batch_size": 128}


def _losses(result: dict) -> list[tuple]:
    """The deterministic part of a history (timings vary)."""
    return [(h["epoch"], h["loss"], h["test_loss"], h["test_accuracy"]) for h in result["history"]]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -1}, "epochs"),
        ({"lr": 0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"model": "resnet"}, "model"),
        ({"dataset": "mnist"}, "dataset"),
        ({"device": "tpu"}, "device"),
        ({"epoch": 3}, "epoch"),  # a typo is an unknown field, not a silently ignored one
        ({"crash_at_epoch": 2}, "crash_marker"),
    ],
)
def test_bad_config_fails_naming_the_field(values, field):
    with pytest.raises(ConfigError) as error:
        as_config(values)
    assert error.value.field == field
    assert f"TrainConfig.{field}" in str(error.value)


def test_bad_config_fails_before_training_starts(capsys):
    with pytest.raises(ConfigError, match=r"TrainConfig\.lr"):
        train_func({"lr": -1})
    assert "KIT_METRICS" not in capsys.readouterr().out


def test_a_run_whose_process_count_differs_from_the_config_fails_naming_both():
    """One process (no torchrun) but the config says two: train_func refuses before it trains."""
    with pytest.raises(ConfigError, match=r"1 process\(es\) joined this run but the config says workers=2"):
        train_func(dict(SMALL, workers=2))


def test_a_second_worker_count_never_silently_wins():
    with pytest.raises(ConfigError, match=r"the config says workers=2 but workers=3 was passed as well"):
        as_config({"workers": 2}, workers=3)
    with pytest.raises(ConfigError, match=r"workers=1 but workers=2"):
        as_config(TrainConfig(), workers=2)
    assert as_config({"epochs": 1}, workers=2).workers == 2  # a count given once is taken
    assert as_config(TrainConfig(workers=2), workers=2).workers == 2


def test_more_workers_than_cpus_fails_naming_workers():
    two_cpus = dataclasses.replace(resources.detect(), cpus=2.0, cpu_source="test")
    check_machine(TrainConfig(workers=2), two_cpus)
    with pytest.raises(ConfigError) as error:
        check_machine(TrainConfig(workers=3), two_cpus)
    assert error.value.field == "workers"
    assert "3 workers need 3 CPUs" in str(error.value) and "workers <= 2" in error.value.fix


def test_process_workers_may_share_one_cpu_but_ray_workers_may_not():
    """Binder's one CPU still runs the two-rank DDP lesson (torchrun time-slices); Ray needs a slot per worker."""
    one_cpu = dataclasses.replace(resources.detect(), cpus=1.0, cpu_source="test")
    check_machine(TrainConfig(workers=2), one_cpu, shared_cpus=True)
    with pytest.raises(ConfigError, match="2 workers need 2 CPUs"):
        check_machine(TrainConfig(workers=2), one_cpu)
    with pytest.raises(ConfigError) as error:
        check_machine(TrainConfig(workers=3), one_cpu, shared_cpus=True)
    assert "workers <= 2" in error.value.fix


def test_unknown_model_names_field_and_choices():
    with pytest.raises(ValueError, match=r"model must be one of mlp, cnn, recurrent; got 'vit'"):
        models.build_model("vit")


def test_models_take_flat_8x8_rows():
    x = torch.zeros(5, 64)
    for name in models.MODELS:
        assert models.build_model(name, hidden=16)(x).shape == (5, 10)


def test_dict_and_keyword_calls_agree_and_a_seed_makes_it_deterministic():
    positional = train_func(dict(SMALL))  # Kubeflow local backend: func({...})
    keywords = train_func(**SMALL)  # Kubeflow on Kubernetes: func(**{...})
    assert _losses(positional) == _losses(keywords)
    assert [h["epoch"] for h in positional["history"]] == [1, 2]
    assert positional["final"]["test_accuracy"] > 0.8
    other_seed = train_func(dict(SMALL, seed=1))
    assert _losses(other_seed) != _losses(positional)


def test_test_set_never_overlaps_train_set():
    split = data.build_split("digits", seed=0)
    train, test = set(split.train_index.tolist()), set(split.test_index.tolist())
    assert not train & test
    assert len(train | test) == 1797
    assert len(test) == 360  # ceil(0.2 * 1797), as scikit-learn rounds


def test_shards_are_disjoint_and_cover_the_train_set():
    split = data.build_split("synthetic", samples=1000, seed=0)  # 800 train rows: divides by 2
    shards = []
    for rank in range(2):
        loader = data.train_loader(split, batch_size=64, rank=rank, world_size=2, seed=0)
        loader.sampler.set_epoch(1)
        shards.append([i for i in loader.sampler])
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(len(split.y_train)))


def test_uneven_shards_pad_with_at_most_world_size_minus_one_repeats():
    split = data.build_split("digits", seed=0)  # 1437 train rows
    shards = [list(data.train_loader(split, 64, rank, 2, seed=0).sampler) for rank in range(2)]
    assert len(shards[0]) == len(shards[1])  # DDP needs the same number of steps on every rank
    assert set(shards[0]) | set(shards[1]) == set(range(1437))
    assert len(shards[0]) + len(shards[1]) - 1437 == 1


def test_synthetic_size_follows_config_and_test_is_scaled_with_train_statistics():
    split = data.build_split("synthetic", samples=2000, seed=3)
    assert len(split.y_train) + len(split.y_test) == 2000
    assert split.x_train.mean(0).abs().max() < 1e-4  # standardised on train...
    assert split.x_test.mean(0).abs().max() > 1e-4  # ...not on test (nothing leaks from it)


def test_materialised_split_loads_with_torch_only(tmp_path):
    path = data.materialize("digits", seed=0, directory=tmp_path)
    assert data.materialize("digits", seed=0, directory=tmp_path) == path  # cached
    loaded = data.load_split(path)
    assert torch.equal(loaded.x_test, data.build_split("digits", seed=0).x_test)


def test_checkpoint_resume_continues_at_the_next_epoch(tmp_path):
    straight = train_func(dict(SMALL, epochs=3))
    first = train_func(dict(SMALL, epochs=2, checkpoint_dir=str(tmp_path)))
    assert first["checkpoint"] == str(tmp_path / "checkpoint.pt")
    resumed = train_func(dict(SMALL, epochs=3, checkpoint_dir=str(tmp_path)))
    assert resumed["resumed_from_epoch"] == 2
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert _losses(resumed) == _losses(straight)  # model, optimiser and data order all restored


def test_parse_output_reads_metrics_and_result_lines():
    lines = ['noise', 'KIT_METRICS {"epoch": 1}', '[rank0]: KIT_METRICS {"epoch": 2}', 'KIT_RESULT {"ok": 1}']
    assert parse_output(lines) == ([{"epoch": 1}, {"epoch": 2}], {"ok": 1})


def test_gpucheck_explains_a_missing_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: run python -m kit.machine.gpucheck instead")
    from kit.machine import gpucheck

    assert gpucheck.main() == 1
    assert "sees no CUDA device" in capsys.readouterr().err
