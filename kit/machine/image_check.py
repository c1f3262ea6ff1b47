"""``python -m kit.machine.image_check``: does this Python hold what the kit's container image promises?

The last step of the Dockerfile runs it, so an image that cannot run the kit's workloads
fails to build instead of failing in a pod. It checks that torch and every pin of
:data:`kit.versions.IMAGE_PINS` are installed at the locked versions (Ray above all: a
client/cluster mismatch is the most common KubeRay failure) and that the modules the
manifests run import: the TrainJob's ``kit.train.entry``, the RayJob's ``kit.train.launchers``,
the RayService's ``kit.serve.rayserve``, the InferenceService's ``kit.serve.kserve_model``
and the model Job's ``kit.cli.train`` (``python -m kit train``). The test suite runs it against the kit's venv.
"""

from __future__ import annotations

import importlib
import sys

from kit import versions

#: Module -> which resource runs it (for the message when it does not import).
ENTRY_POINTS: dict[str, str] = {
    "kit.train.entry": "TrainJob (torchrun -m kit.train.entry)",
    "kit.train.launchers.__main__": "RayJob (python -m kit.train.launchers ray)",
    "kit.serve.rayserve": "RayService (serveConfigV2 import_path)",
    "kit.serve.kserve_model": "InferenceService (python -m kit.serve.kserve_model)",
    "kserve": "InferenceService (the KServe model server)",
    "kit.cli.train": "model Job (python -m kit train --launcher in-process)",
}


def version_problems() -> list[str]:
    """Pins of the image that are missing or at another version."""
    problems = []
    for name in ("torch", *versions.IMAGE_PINS):
        wanted = versions.PYTHON_PINS[name]
        found = versions.installed_version(name)
        if found is None:
            problems.append(f"{name} is not installed (the image needs {name}=={wanted})")
            continue
        if found.split("+")[0] != wanted:  # torch's CPU wheels are 2.13.0+cpu
            problems.append(f"{name} {found} is installed, the lock says {wanted}")
    return problems


def import_problems() -> list[str]:
    """Entry points of the manifests that do not import."""
    problems = []
    for module, used_by in ENTRY_POINTS.items():
        try:
            importlib.import_module(module)
        except Exception as error:  # any import failure means the pod would crash
            problems.append(f"{module} ({used_by}) does not import: {type(error).__name__}: {error}")
    return problems


def main() -> int:
    problems = version_problems() + import_problems()
    for problem in problems:
        print(f"image check: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"image check: torch {versions.TORCH}, ray {versions.RAY} and {len(versions.IMAGE_PINS) - 1} other pins "
          f"installed; {len(ENTRY_POINTS)} entry points import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
