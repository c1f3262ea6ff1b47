"""One source for exercises: ``solutions/`` → ``notebooks/``.

``solutions/`` holds the complete notebooks. In a code cell, a solution region is::

    # BEGIN SOLUTION replace-with: square = ...
    @ray.remote
    def square(x):
        return x * x
    # END SOLUTION

The learner notebook gets ``# YOUR CODE HERE`` and the placeholder instead, with
every output stripped. ``python -m kit notebooks generate`` writes ``notebooks/``;
``check`` fails when it is out of date (the test suite runs it); ``record`` re-runs
a solution in smoke mode and stores its outputs, which nbval then compares.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import nbformat

from kit.paths import REPO_ROOT as REPO

SOLUTIONS = REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?: replace-with: (?P<placeholder>.*))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
#: Notebook metadata that only the executing tools add; never part of a learner notebook.
_VOLATILE_METADATA = ("papermill", "execution", "widgets")


class SolutionMarkupError(ValueError):
    """A solution region is malformed (unbalanced markers)."""


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


def record(path: Path, parameters: dict | None = None) -> None:
    """Execute solution ``path`` in smoke mode and store its outputs in place (for nbval)."""
    import tempfile

    import papermill

    parameters = parameters or {"PROFILE": "local", "SMOKE": True}
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
            cell.outputs = run.outputs
            cell.execution_count = run.execution_count
        for key in _VOLATILE_METADATA:
            cell.metadata.pop(key, None)
    for key in _VOLATILE_METADATA:
        source.metadata.pop(key, None)
    path.write_text(nbformat.writes(source) + "\n")


def cli(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kit notebooks", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("generate", help="write notebooks/ from solutions/")
    sub.add_parser("check", help="exit 1 when notebooks/ is out of date")
    rec = sub.add_parser("record", help="re-run solutions in smoke mode and store their outputs")
    rec.add_argument("paths", nargs="*", type=Path, help="solution notebooks (default: all)")
    args = parser.parse_args(argv)
    try:
        if args.action == "generate":
            for path in generate():
                print(f"wrote {path.relative_to(REPO)}")
            return 0
        if args.action == "check":
            problems = stale()
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print("run `python -m kit notebooks generate`", file=sys.stderr)
            return 1 if problems else 0
        for path in args.paths or solution_paths():
            print(f"recording {path} ...", flush=True)
            record(path)
        return 0
    except SolutionMarkupError as error:
        print(f"solution markup error: {error}", file=sys.stderr)
        return 1
