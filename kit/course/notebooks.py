"""One source for exercises: ``solutions/`` → ``notebooks/``.

``solutions/`` holds the complete notebooks. In a code cell, a solution region is::

    # BEGIN SOLUTION replace-with: square = ...
    @ray.remote
    def square(x):
        return x * x
    # END SOLUTION

The learner notebook gets ``# YOUR CODE HERE`` and the placeholder instead, with
every output stripped. :func:`generate` writes ``notebooks/``; :func:`stale` says how it
is out of date (the test suite checks it); :func:`record` re-runs a solution in smoke mode
and stores its outputs, which nbval then compares. The command line
(``python -m kit notebooks generate|check|record``) is :mod:`kit.cli.notebooks`.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from pathlib import Path

import nbformat

from kit.errors import KitError
from kit.paths import REPO_ROOT as REPO

log = logging.getLogger(__name__)

SOLUTIONS = REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?: replace-with: (?P<placeholder>.*))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
#: Notebook metadata that only the executing tools add; never part of a learner notebook.
_VOLATILE_METADATA = ("papermill", "execution", "widgets")


class SolutionMarkupError(KitError, ValueError):
    """A solution region is malformed (unbalanced markers)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, fix="pair each `# BEGIN SOLUTION` with one `# END SOLUTION` in that cell of "
                                      "solutions/, without nesting")


def strip_solution(source: str, where: str = "cell") -> str:
    """Replace every solution region in ``source`` with its placeholder."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise SolutionMarkupError(f"{where}, line {number}: BEGIN SOLUTION inside another region")
            inside = True
            indent = begin["indent"]
            out.append(f"{indent}# YOUR CODE HERE")
            if begin["placeholder"]:
                out.append(f"{indent}{begin['placeholder'].strip()}")
        elif END.match(line):
            if not inside:
                raise SolutionMarkupError(f"{where}, line {number}: END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SolutionMarkupError(f"{where}: BEGIN SOLUTION is never closed with END SOLUTION")
    return "\n".join(out)


def has_solution(source: str) -> bool:
    return any(BEGIN.match(line) for line in source.splitlines())


def learner_version(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The learner notebook: solution regions replaced, outputs and run metadata stripped."""
    nb = copy.deepcopy(solution)
    for key in _VOLATILE_METADATA:
        nb.metadata.pop(key, None)
    for index, cell in enumerate(nb.cells):
        for key in _VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        cell.source = strip_solution(cell.source, f"{name}, cell {index}")
        cell.outputs = []
        cell.execution_count = None
    return nb


def solution_paths(directory: Path = SOLUTIONS) -> list[Path]:
    return sorted(directory.glob("[0-9][0-9]_*.ipynb"))


def render(path: Path) -> str:
    """The learner notebook for solution ``path``, as the exact text written to disk."""
    nb = learner_version(nbformat.read(path, as_version=4), path.name)
    return nbformat.writes(nb) + "\n"


def generate(solutions: Path = SOLUTIONS, notebooks: Path = NOTEBOOKS) -> list[Path]:
    """Write every learner notebook; return the paths written."""
    notebooks.mkdir(parents=True, exist_ok=True)
    written = []
    for path in solution_paths(solutions):
        target = notebooks / path.name
        target.write_text(render(path))
        written.append(target)
    return written


def stale(solutions: Path = SOLUTIONS, notebooks: Path = NOTEBOOKS) -> list[str]:
    """Why ``notebooks/`` differs from what ``solutions/`` generates (empty when current)."""
    problems = []
    expected = {p.name for p in solution_paths(solutions)}
    for path in solution_paths(solutions):
        target = notebooks / path.name
        if not target.exists():
            problems.append(f"{target.name}: missing in notebooks/")
        elif target.read_text() != render(path):
            problems.append(f"{target.name}: differs from what solutions/{path.name} generates")
    for extra in solution_paths(notebooks):
        if extra.name not in expected:
            problems.append(f"{extra.name}: in notebooks/ but not in solutions/")
    return problems


def is_empty_display(output: dict) -> bool:
    """A display that shows nothing: Tune displays an empty HTML status table even at ``verbose=0``, which
    a recording would keep as ``<IPython.core.display.HTML object>``."""
    if output.get("output_type") != "display_data":
        return False
    data = output.get("data", {})
    shown = {kind: value for kind, value in data.items() if kind != "text/plain"}
    return bool(shown) and all(isinstance(value, str | list) and not "".join(value).strip()
                               for value in shown.values())  # a widget view (a dict) shows something


def record(path: Path, parameters: dict | None = None) -> None:
    """Execute solution ``path`` in smoke mode and store its outputs in place (for nbval)."""
    import tempfile

    import papermill

    from kit.serve.loadgen import PROGRESS_ENV

    parameters = parameters or {"PROFILE": "local", "SMOKE": True}
    os.environ[PROGRESS_ENV] = "0"  # a saved progress widget shows 0 % forever
    log.info("recording %s ...", path)
    with tempfile.TemporaryDirectory() as tmp:
        executed_path = Path(tmp) / path.name
        papermill.execute_notebook(
            str(path), str(executed_path), parameters=parameters, cwd=str(path.parent), kernel_name="python3"
        )
        executed = nbformat.read(executed_path, as_version=4)
    by_id = {cell.get("id"): cell for cell in executed.cells}
    source = nbformat.read(path, as_version=4)
    for cell in source.cells:
        if cell.cell_type == "code" and cell.get("id") in by_id:
            run = by_id[cell.id]
            cell.outputs = [output for output in run.outputs if not is_empty_display(output)]
            cell.execution_count = run.execution_count
        for key in _VOLATILE_METADATA:
            cell.metadata.pop(key, None)
    for key in _VOLATILE_METADATA:
        source.metadata.pop(key, None)
    path.write_text(nbformat.writes(source) + "\n")
