"""The Kubeflow Trainer runtime the kit's TrainJobs use, compliant with Pod Security ``restricted``.

Upstream's default ``torch-distributed`` ClusterTrainingRuntime (Trainer v2.3.0)
sets no securityContext and no resources: a namespace that enforces ``restricted``
refuses its pods, and a ResourceQuota refuses pods without requests. The kit ships
``torch-distributed-restricted``: the same training policy, labels and image, plus

- a non-root user, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault;
- cpu and memory requests and limits (a TrainJob's ``resourcesPerNode`` overrides them);
- ``HOME=/tmp``, because the PyTorch image has no home directory for a non-root user;
- an in-memory emptyDir at ``/dev/shm``: DataLoader workers and NCCL need more shared
  memory than a container's 64 MiB default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kit import versions
from kit.k8s.builders import pods
from kit.k8s.validation import crds

UPSTREAM_NAME = "torch-distributed"
NAME = "torch-distributed-restricted"
UPSTREAM_FILE = "runtime.torch-distributed.yaml"
#: The label by which Trainer finds the trainer node's pods, from upstream's runtime.
ANCESTOR_LABEL = {f"{versions.TRAINER_GROUP}/trainjob-ancestor-step": "trainer"}
_SHM = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}


def upstream_torch_distributed(crd_dir: Path | str | None = None) -> dict[str, Any]:
    """Upstream's ``torch-distributed`` runtime, read from the CRD directory (see :mod:`kit.k8s.validation.crds`)."""
    directory = Path(crd_dir) if crd_dir is not None else crds.find_crd_dir()
    path = directory / UPSTREAM_FILE
    if not path.exists():
        raise crds.CRDDirNotFoundError(f"{path} is missing", fix=crds.fetch_fix())
    runtime: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return runtime


def torch_distributed_restricted(name: str = NAME, *, image: str = versions.IMAGES["pytorch"],
                                 cpu: str = "1", memory: str = "2Gi", num_nodes: int = 1) -> dict[str, Any]:
    """A ClusterTrainingRuntime like upstream's ``torch-distributed`` whose pods pass ``restricted``."""
    node = pods.container("node", image, cpu, memory, env=[{"name": "HOME", "value": "/tmp"}],
                          volume_mounts=[{"name": "dshm", "mountPath": "/dev/shm"}])
    pod_template = pods.pod_template([node], volumes=[dict(_SHM)])
    return {
        "apiVersion": versions.TRAINER_API_VERSION,
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": name, "labels": {f"{versions.TRAINER_GROUP}/framework": "torch"}},
        "spec": {
            "mlPolicy": {"numNodes": num_nodes, "torch": {}},
            "template": {"spec": {"replicatedJobs": [{
                "name": "node",
                "template": {
                    "metadata": {"labels": dict(ANCESTOR_LABEL)},
                    "spec": {"template": pod_template},
                },
            }]}},
        },
    }
