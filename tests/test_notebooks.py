"""Execute every notebook once: learner notebooks with papermill, solutions with nbval.

Parameters PROFILE="local" and SMOKE=True are injected into the `parameters` cell.
See tests/harness.py for what is measured and what counts as a leftover.
"""

from __future__ import annotations

import harness
import pytest

from kit.course import notebooks

LEARNER = sorted(notebooks.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = notebooks.solution_paths()


def test_curriculum_is_present():
    assert len(SOLUTIONS) >= 2, "solutions/ should hold the stage notebooks"
    assert [p.name for p in LEARNER] == [p.name for p in SOLUTIONS]


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", LEARNER, ids=[p.stem for p in LEARNER])
def test_learner_notebook_runs_with_exercises_unsolved(notebook):
    harness.run_notebook(notebook, "papermill")


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_notebook_matches_recorded_outputs(notebook):
    harness.run_notebook(notebook, "nbval")
