"""Ray Train on one small machine: a ``TorchTrainer`` that loads torch only where it trains.

``TorchTrainer`` is Ray's ``DataParallelTrainer`` with a ``TorchConfig``: the workers run the training
function, and the ``TorchConfig``'s backend sets up ``torch.distributed`` on them before it starts.
Ray's ``TorchConfig`` lives in a module that imports torch, so the driver (here: the notebook kernel)
and the controller actor load torch too, over 100 MiB each of memory that holds no tensor. On a
2 GiB notebook server that is the difference between fitting and being OOM-killed, so
:class:`LocalTorchTrainer` is the same pair, ``DataParallelTrainer`` + :class:`LocalTorchConfig`, whose
backend runs Ray's own torch set-up functions *on the workers* (:func:`_on_worker`).

It also leaves out three helper actors Ray Train V2 (Ray 2.60) starts for clusters, each a Python
process of its own:

* ``_AutoscalingCoordinatorActor`` (Ray Data's): asks the cluster autoscaler for the workers' resources;
* ``PlacementGroupCleaner``: frees the workers' placement group should the controller die;
* ``DatasetManager``: hands out shards of Ray Datasets (started even when no dataset is passed).

On one machine there is no autoscaler and the placement group dies with the local Ray; with
``datasets`` the Ray Data callback stays, and with one worker no dataset is split (its shard is the whole
dataset), so neither the ``SplitCoordinator`` actor a split starts nor Ray's ``DatasetManager`` actor is
needed: each worker builds its dataset iterator itself. Its classes are pickled to the controller and the
workers by reference, so this module imports Ray Train, never torch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import ray
import ray.exceptions
from ray.train.backend import Backend, BackendConfig
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.execution.scaling_policy import FixedScalingPolicy
from ray.train.v2._internal.util import TrainingFramework
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

log = logging.getLogger(__name__)
#: Ray's torch set-up on a worker (``ray.train.torch.config``, Ray 2.60), called by name on the workers.
TORCH_SETUP_FUNCTIONS = ("_set_torch_distributed_env_vars", "_setup_torch_process_group", "_shutdown_torch")
#: How long the workers may take to leave their process group (Ray's default, same variable).
SHUTDOWN_TIMEOUT_ENV = "TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S"


def _on_worker(name: str, **kwargs: Any) -> Any:
    """Run Ray's torch set-up function ``name`` in this (worker) process: only here is torch imported."""
    from ray.train.torch import config

    return getattr(config, name)(**kwargs)


def _set_master(addr: str, port: int) -> None:
    os.environ["MASTER_ADDR"] = addr
    os.environ["MASTER_PORT"] = str(port)


class _TorchWorkerContext:
    """Ray's ``TorchConfigContextManager`` (selects the worker's CUDA device), imported on the worker."""

    def __enter__(self) -> Any:
        from ray.train.torch.config import TorchConfigContextManager

        self._inner = TorchConfigContextManager()
        return self._inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._inner.__exit__(*exc)


class _LocalTorchBackend(Backend):
    """What Ray's ``_TorchBackend`` does for CPUs and GPUs (not TPUs), from the controller without torch."""

    share_cuda_visible_devices: bool = True

    def on_start(self, worker_group: Any, backend_config: BackendConfig) -> None:
        assert isinstance(backend_config, LocalTorchConfig)
        gpus = worker_group.get_resources_per_worker().get("GPU", 0)
        backend = backend_config.backend or ("nccl" if gpus > 0 else "gloo")
        from ray.train._internal.utils import get_address_and_port

        addr, port = worker_group.execute_single(0, get_address_and_port)
        worker_group.execute(_set_master, addr=addr, port=port)
        worker_group.execute(_on_worker, "_set_torch_distributed_env_vars")
        ray.get([
            worker_group.execute_single_async(
                rank, _on_worker, "_setup_torch_process_group", backend=backend, world_rank=rank,
                world_size=len(worker_group), init_method="env://", timeout_s=backend_config.timeout_s)
            for rank in range(len(worker_group))
        ])

    def on_shutdown(self, worker_group: Any, backend_config: BackendConfig) -> None:
        futures = worker_group.execute_async(_on_worker, "_shutdown_torch",
                                             destroy_process_group=len(worker_group) > 1)
        try:
            ray.get(futures, timeout=float(os.environ.get(SHUTDOWN_TIMEOUT_ENV, "30")))
        except ray.exceptions.GetTimeoutError:  # as Ray's: the worker is killed with its actor anyway
            log.warning("torch process group shutdown timed out")


@dataclass
class LocalTorchConfig(BackendConfig):
    """Ray's ``TorchConfig`` (``backend``: gloo on CPUs, nccl on GPUs; ``timeout_s``), without torch here."""

    backend: str | None = None
    timeout_s: int = 1800

    @property
    def backend_cls(self) -> type[_LocalTorchBackend]:
        return _LocalTorchBackend

    @property
    def train_func_context(self) -> type[_TorchWorkerContext]:
        return _TorchWorkerContext

    @property
    def framework(self) -> TrainingFramework:
        return TrainingFramework.TORCH


class LocalScalingPolicy(FixedScalingPolicy):
    """Ray's fixed-size policy without its requests to the cluster autoscaler (there is none locally),
    so no ``_AutoscalingCoordinatorActor`` starts and the controller does not wait for one."""

    def after_controller_start(self, train_run_context: Any) -> None:
        return None

    def _maybe_send_resource_request(self) -> None:
        return None

    def _send_resource_request(self) -> None:
        return None


#: Callbacks Ray Train V2 adds for a cluster: the placement-group cleaner always, the Ray Data one
#: (which starts a DatasetManager actor) even without datasets.
CLUSTER_ONLY_CALLBACKS = (PlacementGroupCleanerCallback, DatasetsCallback)


class _UnsplitShards:
    """Ray's ``RayDatasetShardProvider`` for datasets that no worker splits, without its ``DatasetManager``
    actor: each worker builds its iterator itself, as that actor would (``DataConfig.configure``)."""

    def __init__(self, datasets: dict[str, Any], data_config: Any, world_size: int, node_ids: list) -> None:
        self.datasets, self.data_config, self.world_size, self.node_ids = datasets, data_config, world_size, node_ids

    def get_dataset_shard(self, dataset_info: Any) -> Any:
        name = dataset_info.dataset_name
        if name not in self.datasets:
            raise KeyError(f"Dataset shard for {name!r} not found: pass it in the trainer's datasets")
        iterators = self.data_config.configure(datasets={name: self.datasets[name]}, world_size=self.world_size,
                                               worker_handles=None, worker_node_ids=self.node_ids)
        return iterators[dataset_info.world_rank][name]

    def shutdown_data_executors(self) -> None:
        return None  # unsplit datasets run their executors in the workers, which end with them


class _LocalDatasetsCallback(DatasetsCallback):
    """Ray Data's callback for datasets that no worker splits: shards served by :class:`_UnsplitShards`."""

    def before_init_train_context(self, workers: list) -> dict[str, list]:
        datasets = {k: v() if callable(v) else v for k, v in self._datasets.items()}
        provider = _UnsplitShards(datasets, self._data_config, len(workers),
                                  [worker.metadata.node_id for worker in workers])
        self._dataset_shard_provider = provider  # type: ignore[assignment]  # the same two methods
        return {"dataset_shard_provider": [provider] * len(workers)}


class LocalTorchTrainer(DataParallelTrainer):
    """``TorchTrainer(train_loop, train_loop_config=..., scaling_config=..., run_config=...)`` for one machine:
    torch only in the workers, and none of the cluster-only helper actors (module docstring)."""

    def __init__(self, train_loop_per_worker: Any, *, torch_config: LocalTorchConfig | None = None,
                 **kwargs: Any) -> None:
        config = torch_config or LocalTorchConfig()
        scaling = kwargs.get("scaling_config")
        if not config.backend:
            config.backend = "nccl" if scaling is not None and scaling.use_gpu else "gloo"
        if kwargs.get("datasets") and kwargs.get("dataset_config") is None and getattr(scaling, "num_workers", 0) == 1:
            from ray.train import DataConfig  # one worker's shard is the whole dataset: no SplitCoordinator actor

            kwargs["dataset_config"] = DataConfig(datasets_to_split=[])
        super().__init__(train_loop_per_worker, backend_config=config, **kwargs)

    def _create_default_callbacks(self) -> list:
        drop = CLUSTER_ONLY_CALLBACKS if not self.datasets else (PlacementGroupCleanerCallback,)
        callbacks = [callback for callback in super()._create_default_callbacks() if not isinstance(callback, drop)]
        if self.datasets and self.data_config._datasets_to_split == []:  # nothing to split: no DatasetManager
            datasets: Any = self.datasets  # as Ray passes them to its own DatasetsCallback
            callbacks = [_LocalDatasetsCallback(self.train_run_context, datasets)
                         if isinstance(callback, DatasetsCallback) else callback for callback in callbacks]
        return callbacks

    def _initialize_and_run_controller(self, **controller_init_kwargs: Any) -> Any:
        scaling: Any = self.scaling_config  # Ray Train V2's ScalingConfig (typed as V1's in Ray's stubs)
        if not scaling.elasticity_enabled:  # an elastic run keeps Ray's policy
            controller_init_kwargs["scaling_policy"] = LocalScalingPolicy(scaling)
        return super()._initialize_and_run_controller(**controller_init_kwargs)


def torch_trainer_class() -> type:
    """The ``TorchTrainer`` to use from this process: :class:`LocalTorchTrainer` on the local Ray, Ray's own
    (``ray.train.torch.TorchTrainer``, the same constructor) when Ray is a cluster's."""
    from kit.machine import ray_cluster

    if "RAY_ADDRESS" in os.environ or ray_cluster.is_remote():
        from ray.train.torch import TorchTrainer

        return TorchTrainer
    return LocalTorchTrainer
