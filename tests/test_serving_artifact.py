"""The model artifact: save/load round trip, clear errors naming the path, input validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kit.serve import artifact


def test_round_trip_predicts_digits_well(model_dir):
    _network, metadata = artifact.load_model(model_dir)
    assert metadata.input_shape == (64,) and metadata.classes == tuple(range(10))
    assert metadata.accuracy is not None and metadata.accuracy > 0.85
    pixels, labels = artifact.digits_data()
    predicted = artifact.Predictor(model_dir).predict(pixels[:200].tolist())
    assert np.mean(np.array(predicted) == labels[:200]) > 0.85
    assert json.loads((model_dir / artifact.METADATA).read_text())["preprocessing"]["scale"] == 1 / 16


def test_missing_directory_names_the_path(tmp_path):
    with pytest.raises(artifact.ArtifactError, match=str(tmp_path / "nope")):
        artifact.load_model(tmp_path / "nope")


@pytest.mark.parametrize("damage", ["no-weights", "no-metadata", "bad-weights", "bad-json", "unknown-field"])
def test_corrupt_artifact_fails_with_a_clear_error(model_dir, tmp_path, damage):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    if damage == "no-weights":
        (broken / artifact.WEIGHTS).unlink()
    elif damage == "no-metadata":
        (broken / artifact.METADATA).unlink()
    elif damage == "bad-weights":
        (broken / artifact.WEIGHTS).write_bytes(b"not a torch file")
    elif damage == "bad-json":
        (broken / artifact.METADATA).write_text("{")
    else:
        meta = json.loads((broken / artifact.METADATA).read_text())
        (broken / artifact.METADATA).write_text(json.dumps({**meta, "colour": "red"}))
    with pytest.raises(artifact.ArtifactError, match=str(broken)):
        artifact.load_model(broken)


@pytest.mark.parametrize(
    ("instances", "status", "message"),
    [
        ([], 422, "empty batch"),
        ([[1.0] * 10], 422, r"shape \(n, 64\)"),
        ([[1.0] * 64, [1.0] * 3], 422, "ragged"),
        ([["a"] * 64], 422, "numbers"),
        ([[True] * 64], 422, "numbers"),
        ([[float("nan")] * 64], 422, "NaN"),
        ([[0.0] * 64] * (artifact.MAX_BATCH + 1), 413, "over the limit"),
        ("pixels", 422, "list of rows"),
        (5, 422, "list of rows"),
    ],
)
def test_validation_says_what_is_wrong(model_dir, instances, status, message):
    with pytest.raises(artifact.InvalidInput, match=message) as caught:
        artifact.Predictor(model_dir).validate(instances)
    assert caught.value.status == status
