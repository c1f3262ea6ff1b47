"""One source for exercises, and the conventions every stage notebook follows."""

from __future__ import annotations

import re

import nbformat
import pytest

from kit.course import curriculum, exercises, notebooks

SOLUTIONS = notebooks.solution_paths()
CHECK_CALL = re.compile(r'kit\.course\.exercises\.check\("(?P<id>[\w.]+)"')


def test_learner_notebooks_are_generated_from_solutions():
    problems = notebooks.stale()
    assert not problems, "notebooks/ is out of date: run `python -m kit notebooks generate`\n" + "\n".join(
        problems
    )


def test_strip_solution_keeps_indentation_and_placeholder():
    source = "x = 1\n    # BEGIN SOLUTION replace-with: y = ...\n    y = 2\n    # END SOLUTION\nz = 3"
    assert notebooks.strip_solution(source) == "x = 1\n    # YOUR CODE HERE\n    y = ...\nz = 3"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "END SOLUTION without BEGIN"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "inside another region"),
    ],
)
def test_unbalanced_markers_are_errors(source, message):
    with pytest.raises(notebooks.SolutionMarkupError, match=message):
        notebooks.strip_solution(source, "02_x.ipynb, cell 4")


def test_stale_detects_edits_and_strays(tmp_path):
    learner = tmp_path / "notebooks"
    notebooks.generate(notebooks.SOLUTIONS, learner)
    assert notebooks.stale(notebooks.SOLUTIONS, learner) == []
    first = sorted(learner.glob("*.ipynb"))[0]
    first.write_text(first.read_text().replace("Stage", "Stadium", 1))
    (learner / "99_stray.ipynb").write_text("{}")
    problems = notebooks.stale(notebooks.SOLUTIONS, learner)
    assert any("differs" in p for p in problems) and any("99_stray" in p for p in problems)


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_learner_version_has_no_solution_and_no_outputs(path):
    learner = nbformat.reads(notebooks.render(path), as_version=4)
    for cell in learner.cells:
        assert "BEGIN SOLUTION" not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_stage_follows_the_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for section in ("**Objectives**", "**Estimated time:**", "**Prerequisites:**", "**What runs where:**",
                    "## Recap", "## On a real cluster", "**Next:**"):
        assert section in text, f"{path.name} lacks {section}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), "first code cell must be tagged `parameters`"
    assert 'PROFILE = os.environ.get("KIT_PROFILE", "local")' in first.source and "SMOKE = False" in first.source
    checked = [c for c in code if "NBVAL_CHECK_OUTPUT" in c.source]
    assert checked and all(c.outputs for c in checked), "checked cells need recorded outputs for nbval"
    if "kit.machine.local_ray" in "\n".join(c.source for c in code):
        assert "kit.machine.local_ray.stop()" in code[-1].source, "a stage that starts Ray stops it in its last cell"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_exercises_are_registered_solved_and_checked(path):
    nb = nbformat.read(path, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    ids = [m["id"] for s in sources for m in CHECK_CALL.finditer(s)]
    stage = path.name[:2]
    registered = {id for id in exercises.all_ids() if id.startswith(f"{stage}.")}
    assert registered, f"{path.name}: every stage has checked exercises"
    assert set(ids) == registered, f"{path.name} checks {sorted(set(ids))}, the registry has {sorted(registered)}"
    assert sum(notebooks.has_solution(s) for s in sources) == len(set(ids)), "one solution region per exercise"


def test_every_registered_exercise_is_used_by_a_stage():
    used = {m["id"] for p in SOLUTIONS for c in nbformat.read(p, as_version=4).cells
            for m in CHECK_CALL.finditer(c.source)}
    assert set(exercises.all_ids()) == used


def test_stage_map_lists_every_notebook():
    names = {s.notebook for s in curriculum.STAGES}
    assert {p.name for p in SOLUTIONS} <= names
    table = curriculum.markdown_table()
    assert "| 02 | Ray fundamentals | 45 min |" in table
    for stage in curriculum.STAGES:  # a stage without its notebook is marked, one with it is not
        assert (f"| {stage.title} *(coming soon)* |" in table) == (not stage.available), stage.number
