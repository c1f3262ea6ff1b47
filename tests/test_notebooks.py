"""Execute every notebook once: learner notebooks with papermill, solutions with nbval.

Parameters PROFILE="local" and SMOKE=True are injected into the `parameters` cell.
See tests/harness.py for what is measured and what counts as a leftover.
"""

from __future__ import annotations

import harness
import pytest

from kit.course import curriculum, notebooks

LEARNER = sorted(notebooks.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = notebooks.solution_paths()


def test_curriculum_is_present():
    """solutions/ holds the curriculum's stages in order, from 00 with no gap; notebooks/ mirrors it."""
    names = [p.name for p in SOLUTIONS]
    assert names == [stage.notebook for stage in curriculum.STAGES[:len(names)]]
    assert {"00_welcome_and_doctor.ipynb", "09_deploy_on_kubernetes.ipynb"} <= set(names)
    assert [p.name for p in LEARNER] == names


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", LEARNER, ids=[p.stem for p in LEARNER])
def test_learner_notebook_runs_with_exercises_unsolved(notebook):
    harness.run_notebook(notebook, "papermill")


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_notebook_matches_recorded_outputs(notebook):
    harness.run_notebook(notebook, "nbval")
