"""Where the kit writes its files: one work directory, chosen in one place.

Checkpoints, Ray Train results, cached data sets and benchmark output all live
under :func:`work_dir`: ``$KIT_WORK_DIR`` when set, else ``build/`` in the kit's
checkout (git-ignored, removed by ``make clean``), else ``~/.cache/cloud-native-ai-kit``
when the kit is installed somewhere read-only.
"""

from __future__ import annotations

import os
from pathlib import Path

WORK_DIR_ENV = "KIT_WORK_DIR"


#: The directory that holds the ``kit`` package: the checkout's root (pyproject.toml, clusters/, notebooks/).
REPO_ROOT = Path(__file__).resolve().parent.parent


def source_root() -> Path:
    """The directory that holds the ``kit`` package: put it on ``PYTHONPATH`` of child processes."""
    return REPO_ROOT


def work_dir(*parts: str, create: bool = True) -> Path:
    """The kit's work directory (or a sub-directory of it), created on first use."""
    override = os.environ.get(WORK_DIR_ENV)
    if override:
        base = Path(override)
    elif (source_root() / "pyproject.toml").exists() and os.access(source_root(), os.W_OK):
        base = source_root() / "build"
    else:
        base = Path.home() / ".cache" / "cloud-native-ai-kit"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def display(path: Path | str) -> str:
    """``path`` as a learner should read it: relative to the checkout (``../shared/crds``) or to ``~``.

    Recorded notebook outputs and the doctor's report then name no machine-specific directory.
    """
    path = Path(path)
    for base, shown in ((REPO_ROOT, "."), (REPO_ROOT.parent, ".."), (Path.home(), "~")):
        try:
            rest = path.resolve().relative_to(base.resolve())
        except ValueError:
            continue
        return str(Path(shown) / rest) if str(rest) != "." else shown
    return str(path)


def mask(text: str) -> str:
    """``text`` with this machine's checkout and home directories written as :func:`display` writes them."""
    for base, shown in ((REPO_ROOT, "."), (REPO_ROOT.parent, ".."), (Path.home(), "~")):
        text = text.replace(f"{base}{os.sep}", f"{shown}{os.sep}")
    return text
