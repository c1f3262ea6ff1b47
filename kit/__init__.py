"""Cloud-Native AI Kit: the helpers behind the tutorial's notebooks.

One module per concept: ``versions`` (the version lock), ``resources`` (cgroup-aware
CPUs/memory/GPUs), ``raylocal`` (local Ray), ``doctor`` (preflight checks),
``profile`` (local / kind / cluster), ``exercises`` (checks, hints, skip-ahead),
``notebooks`` (solutions -> learner notebooks), ``manifests`` (Kubernetes resources
as plain dicts), ``clusters`` (the generated clusters/ directory), ``operators`` (the
pinned operator install), ``cluster`` (apply, wait, diagnostics, port-forward on a real
cluster), ``bench`` (benchmarks). Submodules are imported on use.
"""

from __future__ import annotations

import os

from kit import paths
from kit.lazy import submodule_getattr

__version__ = "0.1.0"

# torch creates $TMPDIR/torchinductor_<user> the first time an optimizer loads its compiler stack.
# Keep that cache in the kit's work dir, for this process and every worker it starts (Ray, torchrun,
# servers inherit the environment), so notebooks leave no temp files behind.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(paths.work_dir("torchinductor", create=False)))


__getattr__ = submodule_getattr(__name__)
