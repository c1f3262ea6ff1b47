"""The serving artifact: what train_func writes, loading it back, clear errors naming the file, input validation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kit.config.train import TrainConfig
from kit.errors import KitError
from kit.serve import predictor
from kit.train import artifact, data


def test_train_func_writes_what_the_servers_need(model_dir):
    network, metadata = artifact.load_model(model_dir)
    assert metadata.input_shape == (64,) and metadata.classes == tuple(range(10))
    assert metadata.accuracy is not None and metadata.accuracy > 0.85
    assert metadata.preprocessing["scale"] == data.DIGITS_SCALE
    config = TrainConfig.from_dict(metadata.train_config)
    assert (config.model, config.hidden, config.epochs) == ("mlp", 32, 8)
    assert metadata.weights_sha256 == artifact.file_sha256(model_dir / artifact.WEIGHTS)
    assert not network.training


def test_predictions_on_raw_pixels_match_the_recorded_accuracy(model_dir):
    metadata = artifact.load_metadata(model_dir)
    split = data.build_split("digits", seed=metadata.config.seed, test_fraction=metadata.config.test_fraction)
    pixels, labels = data.digit_pixels()
    rows = split.test_index.numpy()
    predicted = predictor.Predictor(model_dir).predict(pixels[rows[:predictor.MAX_BATCH]].tolist())
    accuracy = np.mean(np.array(predicted) == labels[rows[:predictor.MAX_BATCH]])
    assert abs(accuracy - metadata.accuracy) < 0.05  # the same model, the same held-out rows (a subset)


def test_missing_directory_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(artifact.ArtifactError, match=str(tmp_path / "nope")) as caught:
        artifact.load_model(tmp_path / "nope")
    assert isinstance(caught.value, KitError) and "python -m kit train" in caught.value.fix


def test_changed_weights_fail_the_hash_check(model_dir, tmp_path):
    import torch

    altered = tmp_path / "altered"
    shutil.copytree(model_dir, altered)
    state = torch.load(altered / artifact.WEIGHTS, weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1.0  # a loadable file with other weights
    torch.save(state, altered / artifact.WEIGHTS)
    with pytest.raises(artifact.ArtifactError, match="SHA-256") as caught:
        artifact.load_model(altered)
    assert str(altered / artifact.WEIGHTS) in str(caught.value) and caught.value.fix


@pytest.mark.parametrize("damage", ["no-weights", "no-metadata", "bad-weights", "bad-json", "unknown-field",
                                    "bad-config"])
def test_corrupt_artifact_fails_with_a_clear_error(model_dir, tmp_path, damage):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    meta = json.loads((broken / artifact.METADATA).read_text())
    if damage == "no-weights":
        (broken / artifact.WEIGHTS).unlink()
    elif damage == "no-metadata":
        (broken / artifact.METADATA).unlink()
    elif damage == "bad-weights":
        (broken / artifact.WEIGHTS).write_bytes(b"not a torch file")
    elif damage == "bad-json":
        (broken / artifact.METADATA).write_text("{")
    elif damage == "unknown-field":
        (broken / artifact.METADATA).write_text(json.dumps({**meta, "colour": "red"}))
    else:
        meta["train_config"]["hidden"] = -1
        (broken / artifact.METADATA).write_text(json.dumps(meta))
    with pytest.raises(artifact.ArtifactError, match=str(broken)):
        artifact.load_model(broken)


def test_ensure_trained_uses_an_existing_model_without_training(model_dir, capsys):
    assert artifact.ensure_trained(model_dir) == model_dir
    assert capsys.readouterr().out == ""


def test_ensure_trained_trains_a_small_model_when_there_is_none(tmp_path, capsys):
    target = tmp_path / "fresh"
    assert artifact.ensure_trained(target, epochs=1, hidden=8) == target
    assert "training a small one with train_func" in capsys.readouterr().out
    assert artifact.verify(target).config.hidden == 8


@pytest.mark.parametrize(
    ("instances", "status", "message"),
    [
        ([], 422, "empty batch"),
        ([[1.0] * 10], 422, r"shape \(n, 64\)"),
        ([[1.0] * 64, [1.0] * 3], 422, "ragged"),
        ([["a"] * 64], 422, "numbers"),
        ([[True] * 64], 422, "numbers"),
        ([[float("nan")] * 64], 422, "NaN"),
        ([[0.0] * 64] * (predictor.MAX_BATCH + 1), 413, "over the limit"),
        ("pixels", 422, "list of rows"),
        (5, 422, "list of rows"),
    ],
)
def test_validation_says_what_is_wrong(model_dir, instances, status, message):
    with pytest.raises(predictor.InvalidInput, match=message) as caught:
        predictor.Predictor(model_dir).validate(instances)
    assert caught.value.status == status and isinstance(caught.value, KitError)
