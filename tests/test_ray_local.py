"""Ray Train on one machine (kit.train.ray_local, local_workers): the worker count the memory allows, and a
TorchTrainer without the cluster-only helper actors. No Ray started here: test_launch runs the trainer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kit.machine import resources
from kit.train import launchers as launch
from kit.train.launchers.ray_train import TWO_WORKER_MEMORY_BYTES


def _machine(memory_gib: float, cpus: float) -> resources.Resources:
    return resources.Resources(cpus, int(memory_gib * resources.GiB), 16, 64 * resources.GiB, 0, (),
                               "cgroup CPU quota", "cgroup memory limit")


def test_one_worker_on_binders_2_gib_and_two_on_a_bigger_machine():
    binder = launch.local_workers(_machine(2, 2))
    assert binder.workers == 1
    assert "2.0 GiB memory (cgroup memory limit)" in str(binder)
    assert "runs 2 workers" in binder.reason  # says what a bigger machine runs instead
    assert launch.local_workers(_machine(4, 2)).workers == 2
    one_cpu = launch.local_workers(_machine(8, 1))
    assert one_cpu.workers == 1
    assert "1 CPU (cgroup CPU quota)" in one_cpu.reason
    just_below = TWO_WORKER_MEMORY_BYTES / resources.GiB - 0.01
    assert launch.local_workers(_machine(just_below, 4)).workers == 1


def test_ray_train_workers_is_the_local_plan_without_a_cluster(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert launch.ray_train_workers() == launch.local_workers()
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    monkeypatch.delitem(sys.modules, "ray", raising=False)  # not connected yet (the suite's local Ray may be)
    plan = launch.ray_train_workers()
    assert plan.workers == 2 and "ray://head:10001" in plan.reason


@pytest.fixture(scope="module")
def ray_train():
    ray_train = pytest.importorskip("ray.train")
    from kit.train import ray_local

    return ray_train, ray_local


def _callback_types(trainer) -> set[str]:
    return {type(callback).__name__ for callback in trainer._create_default_callbacks()}


def test_the_local_trainer_leaves_out_only_the_cluster_helpers(ray_train):
    ray_train, ray_local = ray_train
    from ray.train.torch import TorchTrainer

    scaling = ray_train.ScalingConfig(num_workers=1)
    ray_set = _callback_types(TorchTrainer(lambda config: None, scaling_config=scaling))
    local_set = _callback_types(ray_local.LocalTorchTrainer(lambda config: None, scaling_config=scaling))
    assert ray_set - local_set == {"PlacementGroupCleanerCallback", "DatasetsCallback"}
    assert local_set < ray_set  # everything else (backend set-up, accelerators, metrics) stays
    with_data = ray_local.LocalTorchTrainer(lambda config: None, scaling_config=scaling,
                                            datasets={"train": lambda: None})
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback

    # Ray Data shards still need a datasets callback (one worker, nothing split: the kit's, without DatasetManager)
    assert any(isinstance(c, DatasetsCallback) for c in with_data._create_default_callbacks())


def test_the_local_torch_config_is_rays_without_torch_in_this_process(ray_train):
    """Same backend choice and framework as Ray's TorchConfig; its set-up functions exist in the pinned Ray."""
    ray_train, ray_local = ray_train
    from ray.train.torch import config as ray_torch_config

    cpu = ray_local.LocalTorchTrainer(lambda config: None, scaling_config=ray_train.ScalingConfig(num_workers=2))
    assert cpu.backend_config.backend == "gloo"
    gpu = ray_local.LocalTorchTrainer(lambda config: None,
                                      scaling_config=ray_train.ScalingConfig(num_workers=1, use_gpu=True))
    assert gpu.backend_config.backend == "nccl"
    assert cpu.backend_config.framework == ray_torch_config.TorchConfig().framework
    assert cpu.backend_config.backend_cls.share_cuda_visible_devices
    for name in ray_local.TORCH_SETUP_FUNCTIONS:  # what _on_worker calls by name on the workers
        assert callable(getattr(ray_torch_config, name)), name


def test_ray_local_imports_no_torch():
    """The driver (a notebook kernel) and the controller unpickle kit.train.ray_local: torch must stay out."""
    import subprocess
    import sys

    code = ("import sys, kit.train.launchers, kit.train.ray_local, kit.train.data; "
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.strip() == "[]"


def test_the_local_scaling_policy_asks_no_autoscaler(ray_train):
    ray_train, ray_local = ray_train
    from ray.train.v2._internal.execution.scaling_policy import FixedScalingPolicy, ResizeDecision

    scaling = ray_train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1})
    policy = ray_local.LocalScalingPolicy(scaling)
    policy.after_controller_start(None)  # Ray's would start the AutoscalingCoordinator actor here
    assert policy._coordinator_client is None
    decision = policy.make_decision_for_non_running_worker_group()
    assert decision == ResizeDecision(num_workers=2, resources_per_worker={"CPU": 1})
    with pytest.raises(AssertionError):  # Ray's policy needs the coordinator for the same decision
        FixedScalingPolicy(scaling).make_decision_for_non_running_worker_group()


def test_a_missing_split_is_made_in_a_short_lived_process(tmp_path):
    """prepare() in a notebook kernel: the split file appears, torch and scikit-learn stay out of the kernel."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from kit.train import data; "
            "path = data.materialize_elsewhere('digits', directory=Path(sys.argv[1])); "
            "print(path.exists(), path.parent == Path(sys.argv[1]), 'torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.split() == ["True", "True", "False", "False"]
    from kit.train import data

    split = data.load_split(next(tmp_path.glob("digits-*.pt")))
    assert split.num_features == 64 and len(split.y_test) > 0
