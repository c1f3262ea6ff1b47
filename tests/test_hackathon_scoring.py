"""The challenge data (seeded, the shifted slice unlike training, labels checked) and the scoring rules."""

from __future__ import annotations

import math
import stat

import numpy as np
import pytest

from kit.errors import KitError
from kit.hackathon import challenge, scoring
from kit.hackathon.scoring import Measurement, ScoringBudget, ScoringWeights


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    a, b = challenge.write_hidden(tmp_path / "a"), challenge.write_hidden(tmp_path / "b")
    assert (a / challenge.HIDDEN_FILE).read_bytes() == (b / challenge.HIDDEN_FILE).read_bytes()
    other = challenge.hidden_arrays(seed=7)
    assert not np.array_equal(other["x"], challenge.hidden_arrays()["x"])
    team, again = challenge.team_arrays(), challenge.team_arrays()
    assert all(np.array_equal(team[k], again[k]) for k in team)


def test_hidden_rows_are_never_team_rows_and_the_slice_is_half():
    _x, y, team, held = challenge._split(challenge.SEED)
    assert not set(team) & set(held) and len(team) + len(held) == len(y)
    hidden = challenge.hidden_arrays()
    assert hidden["shifted"].sum() == len(held) == len(hidden["y"]) // 2
    assert set(np.unique(hidden["y"])) == set(range(10))
    assert hidden["x"].min() >= 0 and hidden["x"].max() <= challenge.PIXEL_MAX


def test_the_shifted_corruption_is_not_in_the_training_data():
    assert challenge.SHIFTED_CORRUPTION not in challenge.TRAIN_CORRUPTIONS
    rng = np.random.default_rng(0)
    clean = challenge.digits()[0][:50]
    blurred = challenge.corrupt(clean, "blur", rng)
    for kind in ("clean", *challenge.TRAIN_CORRUPTIONS):
        assert not np.allclose(challenge.corrupt(clean, kind, np.random.default_rng(0)), blurred), kind
    with pytest.raises(KitError, match="unknown corruption"):
        challenge.corrupt(clean, "rotate", rng)


def test_hidden_labels_are_the_organisers_and_checked(tmp_path):
    directory = challenge.write_hidden(tmp_path / "hidden")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert len(challenge.load_hidden(directory)["y"]) == 718
    data = dict(np.load(directory / challenge.HIDDEN_FILE))
    data["y"] = (data["y"] + 1) % 10  # someone changed the labels
    np.savez(directory / challenge.HIDDEN_FILE, **data)
    with pytest.raises(KitError, match="SHA-256"):
        challenge.load_hidden(directory)
    with pytest.raises(KitError, match="no hidden test set"):
        challenge.load_hidden(tmp_path / "nowhere")


def test_weights_from_the_event_mapping():
    assert ScoringWeights.from_mapping({"accuracy": 1, "latency": 0, "cost": 0}).accuracy == 1.0
    assert ScoringWeights.from_mapping(None) == ScoringWeights()
    for bad, words in (({"accuracy": -1}, ">= 0"), ({"speed": 1}, "unknown scoring key"),
                       ({"accuracy": 0, "latency": 0, "cost": 0}, "nothing would count"),
                       ({"accuracy": "high"}, "finite number"), ({"latency": math.inf}, "finite number")):
        with pytest.raises(KitError, match=words):
            ScoringWeights.from_mapping(bad)


def test_score_rewards_accuracy_robustness_speed_and_cheapness():
    weights, budget = ScoringWeights(), ScoringBudget()
    base = Measurement(0.8, 0.6, 50.0, 5.0)
    s = scoring.score(base, weights, budget)
    assert 0 < s < 100
    assert scoring.score(Measurement(0.9, 0.6, 50.0, 5.0), weights, budget) > s
    assert scoring.score(Measurement(0.8, 0.7, 50.0, 5.0), weights, budget) > s
    assert scoring.score(Measurement(0.8, 0.6, 20.0, 5.0), weights, budget) > s
    assert scoring.score(Measurement(0.8, 0.6, 50.0, 1.0), weights, budget) > s
    # at the targets each of latency and cost is worth half: 100 * (0.6 * 0.7 + 0.2 * 0.5 + 0.2 * 0.5)
    assert s == pytest.approx(62.0)
    only_accuracy = ScoringWeights(1, 0, 0)
    assert scoring.score(base, only_accuracy, budget) == pytest.approx(70.0)


def test_an_endpoint_is_scored_without_cost_and_over_budget_fails():
    weights, budget = ScoringWeights(), ScoringBudget()
    no_cost = scoring.score(Measurement(0.8, 0.6, 50.0, None), weights, budget)
    assert no_cost == pytest.approx(100 * (0.6 * 0.7 + 0.2 * 0.5) / 0.8)
    with pytest.raises(scoring.OverBudget, match="p95 latency 2500 ms is over"):
        scoring.score(Measurement(0.8, 0.6, 2500.0, 5.0), weights, budget)
    with pytest.raises(scoring.OverBudget, match="CPU-s per 1,000 requests is over"):
        scoring.score(Measurement(0.8, 0.6, 50.0, 500.0), weights, budget)
    with pytest.raises(scoring.OverBudget, match="cost cannot be measured"):
        scoring.score(Measurement(0.8, 0.6, 50.0, None), ScoringWeights(0, 0, 1), budget)
