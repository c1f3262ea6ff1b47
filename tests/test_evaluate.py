"""kit.evaluate: metrics against hand-computed cases, behavioural checks that can fail, the promotion gate on
real artifacts (promote and hold, with reasons) and ``python -m kit evaluate``."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from serving_cases import TINY_TRAINING

from kit import cli
from kit.errors import KitError
from kit.evaluate import GatePolicy, behaviour, evaluate_model, metrics, promotion_gate

# Four rows, two classes: confidences 0.95 (right), 0.95 (wrong), 0.65 (right), 0.55 (wrong).
PROBS = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.55, 0.45]])
LABELS = np.array([0, 1, 1, 1])


def test_ece_matches_a_hand_computed_case():
    # 10 bins: (0.9, 1] holds two rows, conf 0.95, accuracy 0.5 -> 2/4 * 0.45 = 0.225
    #          (0.6, 0.7] one row, conf 0.65, accuracy 1   -> 1/4 * 0.35 = 0.0875
    #          (0.5, 0.6] one row, conf 0.55, accuracy 0   -> 1/4 * 0.55 = 0.1375
    assert metrics.expected_calibration_error(PROBS, LABELS) == pytest.approx(0.45)
    # one bin: mean confidence 0.775, accuracy 0.5
    assert metrics.expected_calibration_error(PROBS, LABELS, bins=1) == pytest.approx(0.275)
    table = metrics.reliability(PROBS, LABELS)
    assert [b.count for b in table] == [0, 0, 0, 0, 0, 1, 1, 0, 0, 2]
    assert table[9].accuracy == 0.5 and table[9].confidence == pytest.approx(0.95)


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    table = metrics.reliability(np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([0, 1]))
    assert [b.count for b in table] == [0, 0, 0, 0, 1, 0, 0, 1, 0, 0]  # 0.5 in (0.4, 0.5]; 0.8 in (0.7, 0.8]


def test_a_perfectly_calibrated_model_has_zero_ece():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert metrics.expected_calibration_error(probs, np.array([0, 1])) == 0.0


@pytest.mark.parametrize(("probs", "labels", "message"), [
    (np.array([[0.5, 0.6]]), np.array([0]), "sum to 1"),
    (np.array([[0.5, 0.5]]), np.array([0, 1]), "shape"),
    (np.array([0.5, 0.5]), np.array([0]), "shape"),
    (np.array([[np.nan, 1.0]]), np.array([0]), "finite"),
    (np.zeros((0, 2)), np.zeros(0), "rows > 0"),
])
def test_wrong_probabilities_are_refused_with_a_fix(probs, labels, message):
    with pytest.raises(KitError, match=message) as error:
        metrics.expected_calibration_error(probs, labels)
    assert error.value.fix


def test_confusion_rows_are_the_true_class_and_per_class_scores():
    labels, predicted = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])
    assert metrics.confusion(labels, predicted, 3).tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    scores = metrics.per_class(labels, predicted, 3)
    assert (scores[0].precision, scores[0].recall, scores[0].support) == (1.0, 0.5, 2)
    assert (scores[1].precision, scores[1].recall) == (pytest.approx(1 / 3), 1.0)
    assert (scores[2].precision, scores[2].recall, scores[2].f1) == (0.0, 0.0, 0.0)


def _by_brightness(x: np.ndarray) -> np.ndarray:
    """A bad model: the class is the total ink, in two buckets, always 90 % sure."""
    cls = (x.sum(axis=1) > 32).astype(int)
    probs = np.full((len(x), 2), 0.1)
    probs[np.arange(len(x)), cls] = 0.9
    return probs


def test_behavioural_checks_fail_a_model_that_reads_brightness_and_is_always_sure():
    rng = np.random.default_rng(0)
    x = (rng.random((200, 64)) * 0.95 + 0.02).astype(np.float32)  # total ink around 31: near the bucket edge
    checks = behaviour.behavioural_checks(_by_brightness, x, span=1.0, low=0.0, high=1.0)
    failed = [c.name for c in checks if not c.passed]
    assert any("brighter" in name for name in failed)  # brightness flips the class
    assert any("fading" in name for name in failed)  # a constant 0.9 never drops
    assert any("blank" in name for name in failed)  # a blank image is just as sure
    for check in checks:
        assert 0 <= check.failures <= check.rows == 200


def test_noise_robustness_is_seeded_and_starts_from_clean_accuracy():
    rng = np.random.default_rng(1)
    x = rng.random((100, 64)).astype(np.float32)
    y = (x.sum(axis=1) > 32).astype(int)
    a = behaviour.noise_robustness(_by_brightness, x, y, span=1.0, low=0.0, high=1.0, seed=3)
    b = behaviour.noise_robustness(_by_brightness, x, y, span=1.0, low=0.0, high=1.0, seed=3)
    assert a == b and a[0.0] == 1.0 and list(a) == [0.0, *behaviour.NOISE_LEVELS]


@pytest.fixture(scope="module")
def weak_dir(tmp_path_factory):
    """An under-trained model (1 epoch, 8 hidden units): a candidate the gate must hold."""
    from kit.train.loop import train_func

    path = tmp_path_factory.mktemp("weak") / "digits"
    train_func({**TINY_TRAINING, "hidden": 8, "epochs": 1, "model_dir": str(path)})
    return path


@pytest.fixture(scope="module")
def good(model_dir):
    return evaluate_model(model_dir)


@pytest.fixture(scope="module")
def weak(weak_dir):
    return evaluate_model(weak_dir)


def test_an_evaluation_is_consistent_with_itself(good, model_dir):
    confusion = np.array(good.confusion)
    assert confusion.sum() == good.rows == sum(c.support for c in good.classes) == 360  # digits' 20 % test split
    assert np.trace(confusion) / good.rows == pytest.approx(good.accuracy)
    assert sum(b.count for b in good.reliability) == good.rows
    assert good.ece == pytest.approx(sum(b.count / good.rows * b.gap for b in good.reliability))
    assert good.robustness[0.0] == good.accuracy and good.worst_class_recall == min(c.recall for c in good.classes)
    assert [c.batch for c in good.cost] == [1, 64] and all(c.p50_ms > 0 and c.cpu_s_per_1000 > 0 for c in good.cost)
    text = str(good)
    assert str(model_dir) in text and "ECE" in text and "CPU-s per 1,000" in text and len(text.splitlines()) < 20
    json.dumps(good.to_dict())  # serialisable as it is


def test_the_gate_holds_a_worse_candidate_and_says_why(good, weak):
    decision = promotion_gate(weak, good)
    assert not decision.promote
    held = [reason for reason in decision.reasons if reason.startswith("HOLD")]
    assert held and decision.reasons[: len(held)] == held  # failing reasons first
    accuracy = next(reason for reason in held if reason.startswith("HOLD: accuracy candidate"))
    assert f"{weak.accuracy:.4g}" in accuracy and f"{good.accuracy:.4g}" in accuracy
    assert f"threshold {good.accuracy - 0.005:.4g}" in accuracy
    assert any("worst-class recall" in reason for reason in held)


def test_the_gate_promotes_a_better_candidate(good, weak):
    decision = promotion_gate(good, weak)
    assert decision.promote, decision
    assert len(decision.reasons) == 6 and all(reason.startswith("pass: ") for reason in decision.reasons)
    assert "PROMOTE" in str(decision)


def test_the_gate_holds_for_cost_and_for_a_new_behavioural_failure(good):
    costly = dataclasses.replace(good, cost=[dataclasses.replace(c, cpu_s_per_1000=c.cpu_s_per_1000 * 2)
                                             for c in good.cost])
    decision = promotion_gate(costly, good)
    assert not decision.promote and decision.reasons[0].startswith("HOLD: CPU-s per 1,000 predictions")
    assert promotion_gate(costly, good, GatePolicy(max_cost_ratio=2.5)).promote
    broken = behaviour.CheckResult("DIR: invented", "DIR", 10, 5, 0.1)
    flaky = dataclasses.replace(good, checks=[*good.checks, broken])
    decision = promotion_gate(flaky, good)
    assert not decision.promote and "new failures: 1" in decision.reasons[0]
    assert promotion_gate(flaky, flaky).promote  # a failure the serving model shares is not new


def test_the_gate_refuses_evaluations_on_different_rows_and_a_bad_policy(good):
    with pytest.raises(KitError, match="evaluated on 10 rows") as error:
        promotion_gate(dataclasses.replace(good, rows=10), good)
    assert "same held-out split" in error.value.fix
    with pytest.raises(KitError, match="max_cost_ratio"):
        GatePolicy(max_cost_ratio=0)


def test_cli_evaluate_exits_1_on_hold_and_0_on_promote(model_dir, weak_dir, capsys):
    assert cli.main(["evaluate", str(weak_dir), "--against", str(model_dir)]) == 1
    out = capsys.readouterr().out
    assert "HOLD: keep serving" in out and "HOLD: accuracy candidate" in out
    assert cli.main(["evaluate", str(model_dir), "--against", str(weak_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["promote"] is True and len(data["reasons"]) == 6 and data["evaluation"]["rows"] == 360


def test_cli_evaluate_bad_directories_exit_1_with_the_fix(tmp_path, model_dir, capsys):
    assert cli.main(["evaluate", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "Fix: train one" in err and "Traceback" not in err
    damaged = tmp_path / "damaged"
    shutil.copytree(model_dir, damaged)
    (damaged / "model.pt").write_bytes(b"not weights")
    assert cli.main(["evaluate", str(model_dir), "--against", str(damaged)]) == 1
    err = capsys.readouterr().err
    assert "SHA-256" in err and str(damaged) in err and "Traceback" not in err
    assert cli.main(["evaluate"]) == 2


def test_the_plots_draw_what_the_evaluation_holds(good):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kit.evaluate import plot_confusion, plot_reliability

    ax = plot_reliability(good)
    assert len(ax.patches) == sum(1 for b in good.reliability if b.count) and f"{good.ece:.3f}" in ax.get_title()
    ax = plot_confusion(good)
    assert len(ax.texts) == int(np.count_nonzero(good.confusion)) and f"{good.accuracy:.3f}" in ax.get_title()
    plt.close("all")
