"""A team's side of the capstone (kit.hackathon.team): its settings checked, augmentation, the training budget,
a practice submission scored by the real scorer, and the cluster submission (a manifest that validates)."""

from __future__ import annotations

import numpy as np
import pytest

from kit.errors import KitError
from kit.hackathon import challenge, team
from kit.hackathon.scoring import ScoringBudget


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return team.Workspace.create("team-a", tmp_path_factory.mktemp("capstone"))


@pytest.fixture(scope="module")
def baseline(workspace):
    return workspace.train("baseline", **team.BASELINE)


def test_only_the_team_settings_with_valid_values():
    assert team.team_config({"hidden": 64})["hidden"] == 64
    with pytest.raises(KitError, match=r"\['workers'\] cannot be set"):
        team.team_config({"workers": 2})
    with pytest.raises(KitError, match="model"):
        team.team_config({"model": "transformer"})
    with pytest.raises(KitError, match="dict of settings"):
        team.team_config([("hidden", 8)])  # type: ignore[arg-type]


def test_augmentation_adds_one_clipped_copy_per_row():
    arrays = challenge.team_arrays()
    out = team.augmented_arrays(arrays, lambda x, rng: x * 3.0, seed=0)
    n = len(arrays["x_train"])
    assert out["x_train"].shape == (2 * n, 64) and out["x_train"].max() <= challenge.PIXEL_MAX
    assert np.array_equal(out["y_train"][n:], arrays["y_train"]) and np.array_equal(out["x_val"], arrays["x_val"])
    with pytest.raises(KitError, match=r"returned shape \(10, 64\)"):
        team.augmented_arrays(arrays, lambda x, rng: x[:10], seed=0)


def test_a_candidate_records_its_training_cost_and_validation(workspace, baseline):
    assert team.current() is workspace
    assert baseline.model_dir.is_dir() and baseline.train_cpu_s > 0 and 0.1 < baseline.val_accuracy < 1
    assert "within the 30 CPU-s budget" in baseline.summary(workspace.budget.max_train_cpu_s)
    assert len(baseline.history) == team.BASELINE["epochs"]


def test_over_the_training_budget_is_refused_with_the_figure(workspace, baseline):
    strict = team.Workspace(workspace.team, workspace.root, budget=ScoringBudget(max_train_cpu_s=0.01))
    with pytest.raises(KitError, match=r"CPU-s to train, over the event's budget of 0.01"):
        strict.submit(baseline)
    with pytest.raises(KitError, match="over the event's budget"):
        strict.cluster_submission(baseline)


def test_a_practice_submission_is_scored_by_the_real_scorer(workspace, baseline):
    outcome = workspace.submit(baseline, smoke=True)
    assert outcome.status == "scored", outcome.reason
    assert 0 < outcome.score < 100 and outcome.figures["cpu_s_per_1k"] > 0
    [row] = workspace.ranking()
    assert row["rank"] == 1 and row["submission"] == "team-a/baseline" and row["score"] == outcome.score


def test_on_a_cluster_the_team_serves_and_the_organiser_scores_the_endpoint(workspace, baseline):
    from kit.k8s.validation.validate import validate_documents

    docs, command = workspace.cluster_submission(baseline)
    assert docs[0]["metadata"]["namespace"] == "team-a"
    assert validate_documents(docs, "capstone") == []
    assert "--team team-a --endpoint http://" in command and ".team-a.svc.cluster.local" in command
    uri = docs[0]["spec"]["predictor"]["containers"][0]["env"]
    assert {"name": "STORAGE_URI", "value": "pvc://kit-models/baseline"} in uri


def test_publishing_copies_the_artifact_to_the_models_volume(workspace, baseline, tmp_path):
    with pytest.raises(KitError, match="models volume is not mounted"):
        workspace.publish(baseline, tmp_path / "nowhere")
    published = workspace.publish(baseline, tmp_path)
    assert published == tmp_path / "baseline"
    assert sorted(p.name for p in published.iterdir()) == sorted(p.name for p in baseline.model_dir.iterdir())
