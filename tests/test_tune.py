"""kit.train.tune: a small ASHA search over train_func on the local Ray, and its input checks."""

from __future__ import annotations

import pytest
from ray import tune

from kit.train import tune as kit_tune


def test_space_with_unknown_fields_is_refused_before_ray_starts():
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['learning_rate'\]"):
        kit_tune.check_space({"learning_rate": tune.loguniform(1e-3, 1e-1)})
    with pytest.raises(ValueError, match="non-empty dict"):
        kit_tune.check_space({})


def test_scheduler_and_search_must_agree_on_the_metric():
    scheduler = kit_tune.asha(metric="test_loss", mode="min")
    with pytest.raises(ValueError, match="the scheduler optimises 'test_loss'"):
        kit_tune.run_search({"lr": tune.choice([0.01])}, scheduler=scheduler)


def test_asha_search_reports_every_epoch_and_ranks_trials(local_ray):
    base = {"dataset": "digits", "hidden": 16, "epochs": 2}
    result = kit_tune.run_search({"lr": tune.grid_search([0.0005, 0.05])}, base=base, num_samples=1,
                                 scheduler=kit_tune.asha(max_t=2, grace_period=1, reduction_factor=2))
    table = result.table
    assert list(table.columns) == ["trial", "lr", "epochs_run", "epochs", "best_test_accuracy",
                                   "last_test_accuracy"]
    assert len(table) == 2 and set(table["epochs"]) == {2}
    assert table["best_test_accuracy"].is_monotonic_decreasing
    assert result.best_config == {"lr": table["lr"].iloc[0]}
    assert result.best_metric == pytest.approx(table["best_test_accuracy"].iloc[0], abs=1e-4)
    for history in result.histories.values():  # one report per epoch run, epochs numbered from 1
        assert list(history["epoch"]) == list(range(1, len(history) + 1))


def test_trials_at_once_follow_the_cpus_and_the_memory_limit():
    gib = 1024**3
    assert kit_tune.trial_slots(2, 16 * gib).count == 2  # CPU-bound
    assert kit_tune.trial_slots(1, 16 * gib).count == 1
    tight = kit_tune.trial_slots(8, 2 * gib)  # memory-bound, never below one
    assert 1 <= tight.count < 8 and tight.count == tight.by_memory
    assert "8 would run at once" in str(tight) and "would run" not in str(kit_tune.trial_slots(2, 16 * gib))
    assert kit_tune.trial_slots(4, 64 * 1024**2).count == 1
