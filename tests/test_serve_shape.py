"""kit.serve.numpy_model (the MLP without torch) and kit.serve.shape (which Serve shape fits the memory)."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

from kit.errors import KitError
from kit.serve import numpy_model, predictor, shape
from kit.train.artifact import METADATA, ArtifactError, verify
from kit.train.models import MLP

GiB = 1024**3


def test_state_dict_reads_as_numpy_views_offsets_and_dtypes_included(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {"plain": torch.randn(3, 5), "transposed": base.T, "offset": base[1:, 2:], "long": torch.arange(4),
             "double": torch.randn(2, dtype=torch.float64)}
    torch.save(state, tmp_path / "w.pt")
    loaded = numpy_model.load_state_dict(tmp_path / "w.pt")
    assert set(loaded) == set(state)
    for key, tensor in state.items():
        np.testing.assert_array_equal(loaded[key], tensor.numpy())
        assert loaded[key].dtype == tensor.numpy().dtype


def test_a_pickle_that_names_another_global_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"x": print}))
    with pytest.raises(ArtifactError, match=r"builtins\.print is not part of a tensor state dict"):
        numpy_model.load_state_dict(path)
    (tmp_path / "not-a-zip.pt").write_bytes(b"plain bytes")
    with pytest.raises(ArtifactError, match="cannot be read"):
        numpy_model.load_state_dict(tmp_path / "not-a-zip.pt")


def test_numpy_mlp_matches_torch(tmp_path):
    torch.manual_seed(0)
    network = MLP(64, 10, hidden=16).eval()
    torch.save(network.state_dict(), tmp_path / "mlp.pt")
    rows = np.random.default_rng(0).random((32, 64), dtype=np.float32)
    with torch.inference_mode():
        expected = network(torch.from_numpy(rows)).numpy()
    got = numpy_model.NumpyMLP(numpy_model.load_state_dict(tmp_path / "mlp.pt")).logits(rows)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_numpy_predictor_answers_like_the_torch_one(model_dir):
    rows = predictor.sample_instances(64)
    fast = predictor.Predictor(model_dir, backend="auto")
    assert fast.backend == "numpy"
    assert fast.predict(rows) == predictor.Predictor(model_dir).predict(rows)
    with pytest.raises(KitError, match="unknown predictor backend"):
        predictor.Predictor(model_dir, backend="onnx")


def test_numpy_backend_refuses_what_is_not_the_mlp(model_dir, tmp_path):
    copy = tmp_path / "digits"
    shutil.copytree(model_dir, copy)
    meta = json.loads((copy / METADATA).read_text())
    meta["train_config"]["model"] = "cnn"
    (copy / METADATA).write_text(json.dumps(meta))
    assert not numpy_model.supports(verify(copy))
    with pytest.raises(KitError, match="runs the kit's MLP only, not 'cnn'"):
        predictor.Predictor(copy, backend="numpy")


def test_shape_follows_the_memory_limit_and_smoke():
    small, big = shape.choose(2 * GiB), shape.choose(16 * GiB)
    assert small.shape == shape.COMPACT and big.shape == shape.FULL
    assert shape.choose(16 * GiB, smoke=True).shape == shape.COMPACT
    assert small.needed_bytes > 2 * GiB > shape.COMPACT.estimate_mib() * shape.MiB / shape.HEADROOM
    assert "runs the full shape" in str(small) and "runs the full shape" not in str(big)
    assert "compact shape" in str(shape.choose(16 * GiB, smoke=True)) and "full shape" in str(big)
    assert shape.COMPACT.model_deployment == "DigitsService" and shape.FULL.model_deployment == "DigitsClassifier"
    config = small.shape.config("/models/digits", max_batch_size=8)
    assert (config.backend, config.num_replicas, config.max_batch_size) == ("auto", 2, 8)


def test_digit_rows_are_the_training_pixels_without_sklearn_or_torch_imported():
    import subprocess
    import sys

    from kit.train.data import digit_pixels

    np.testing.assert_array_equal(predictor.digit_rows(), digit_pixels()[0])
    probe = ("import sys; from kit.serve import predictor; predictor.sample_instances(3); "
             "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"
