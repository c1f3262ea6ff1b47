"""The capstone challenge data: corrupted digits, made here from a seed, no download.

The digits (scikit-learn's 8x8 images, pixels 0..16) are split once, stratified and seeded:

- the **team's data** (:func:`write_team_data`): the training rows, each kept clean or corrupted
  with one of :data:`TRAIN_CORRUPTIONS` (noise, a shift, an occlusion), plus a public validation
  split. Written as ``train.npz`` (raw pixels, what a server receives) and, for the kit's launchers,
  ``split.pt`` (``TrainConfig(data_path=...)``: :func:`kit.train.data.load_split` reads it);
- the **hidden test set** (:func:`write_hidden`): the held-out rows, once corrupted like the training
  data and once with :data:`SHIFTED_CORRUPTION` (a blur no training row has), so a model that learned
  robust features scores on the shifted slice and one that memorised the training corruptions does not.
  Its labels go only to a directory the organiser controls, never to a team's.

Same seed, same bytes: scores are reproducible.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from kit.errors import KitError

SEED = 2026
#: Corruptions the training data contains (each training row: clean or one of these).
TRAIN_CORRUPTIONS = ("noise", "shift", "occlusion")
#: The corruption only the hidden test set has: the shifted slice.
SHIFTED_CORRUPTION = "blur"
HIDDEN_FILE = "hidden.npz"
TEAM_FILE = "train.npz"
SPLIT_FILE = "split.pt"
MANIFEST = "challenge.json"
PIXEL_MAX = 16.0
HELD_OUT = 0.2
VALIDATION = 0.15


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digit images as raw pixels (float32, 0..16) and their labels."""
    from kit.train.data import digit_pixels

    return digit_pixels()


def box_blur(grid: np.ndarray) -> np.ndarray:
    """Each pixel of ``grid`` (n, 8, 8) replaced by the mean of its 3x3 neighbourhood (edges repeated)."""
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)), mode="edge")
    return np.mean([padded[:, dy:dy + 8, dx:dx + 8] for dy in range(3) for dx in range(3)], axis=0)


def corrupt(images: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``images`` (n, 64) with one corruption applied to each row, clipped to 0..16."""
    grid = images.reshape(-1, 8, 8).astype(np.float32).copy()
    n = len(grid)
    if kind == "noise":
        grid += rng.normal(0.0, 3.0, size=grid.shape).astype(np.float32)
    elif kind == "shift":
        for i, (dy, dx) in enumerate(rng.integers(-1, 2, size=(n, 2))):
            grid[i] = np.roll(grid[i], (int(dy), int(dx)), axis=(0, 1))
    elif kind == "occlusion":
        for i, (y, x) in enumerate(rng.integers(0, 6, size=(n, 2))):
            grid[i, y:y + 3, x:x + 3] = 0.0
    elif kind == "blur":
        grid = box_blur(grid) * 1.6 - 3.0  # a washed-out, blurred scan: contrast no training row has
    elif kind != "clean":
        raise KitError(f"unknown corruption {kind!r}", fix=f"use one of clean, {', '.join(TRAIN_CORRUPTIONS)}, blur")
    return np.clip(grid, 0.0, PIXEL_MAX).reshape(n, 64).astype(np.float32)


def _split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw pixels and labels, and the (seeded, stratified) indices of the team's rows and the held-out rows."""
    x, y = digits()
    rng = np.random.default_rng(seed)
    team, held = [], []
    for label in range(10):  # stratified: the same share of every class is held out
        rows = rng.permutation(np.flatnonzero(y == label))
        cut = round(len(rows) * HELD_OUT)
        held.append(rows[:cut])
        team.append(rows[cut:])
    return x, y, np.sort(np.concatenate(team)), np.sort(np.concatenate(held))


def _corrupt_each(x: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """Each row corrupted with a kind drawn from ``kinds`` (seeded)."""
    choice = rng.integers(0, len(kinds), size=len(x))
    out = np.empty_like(x)
    for k, kind in enumerate(kinds):
        rows = choice == k
        out[rows] = corrupt(x[rows], kind, rng)
    return out


def team_arrays(seed: int = SEED) -> dict[str, np.ndarray]:
    """The team's training and validation arrays (raw pixels 0..16), corrupted like the hidden test set."""
    x, y, team, _ = _split(seed)
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(team)
    cut = round(len(order) * VALIDATION)
    val, train = np.sort(order[:cut]), np.sort(order[cut:])
    kinds = ("clean", *TRAIN_CORRUPTIONS)
    return {"x_train": _corrupt_each(x[train], kinds, rng), "y_train": y[train],
            "x_val": _corrupt_each(x[val], kinds, rng), "y_val": y[val]}


def hidden_arrays(seed: int = SEED) -> dict[str, np.ndarray]:
    """The hidden test set: held-out rows corrupted as in training, then the same rows blurred (``shifted``)."""
    x, y, _, held = _split(seed)
    rng = np.random.default_rng(seed + 2)
    in_dist = _corrupt_each(x[held], ("clean", *TRAIN_CORRUPTIONS), rng)
    shifted = corrupt(x[held], SHIFTED_CORRUPTION, rng)
    return {"x": np.concatenate([in_dist, shifted]), "y": np.concatenate([y[held], y[held]]),
            "shifted": np.concatenate([np.zeros(len(held), bool), np.ones(len(held), bool)])}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_team_data(directory: str | Path, seed: int = SEED, with_split: bool = True) -> Path:
    """Write the team's ``train.npz`` (and ``split.pt`` for the kit's launchers, which needs torch)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    arrays = team_arrays(seed)
    np.savez(out / TEAM_FILE, **arrays)  # type: ignore[arg-type]
    if with_split:
        write_split(out / SPLIT_FILE, arrays)
    return out


def write_split(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """The team's data as a :class:`kit.train.data.Split` file (scaled like the ``digits`` set the kit serves)."""
    import torch

    from kit.train.data import DIGITS_SCALE

    def tensor(a, dtype):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    split = {"x_train": tensor(arrays["x_train"] * DIGITS_SCALE, torch.float32),
             "y_train": tensor(arrays["y_train"], torch.int64),
             "x_test": tensor(arrays["x_val"] * DIGITS_SCALE, torch.float32),
             "y_test": tensor(arrays["y_val"], torch.int64),
             "train_index": torch.arange(len(arrays["y_train"])), "test_index": torch.arange(len(arrays["y_val"])),
             "name": "digits"}  # the name decides the artifact's preprocessing: pixels / 16, like the kit's digits
    torch.save(split, path)
    return path


def write_hidden(directory: str | Path, seed: int = SEED) -> Path:
    """Write the hidden test set and its manifest (seed, sizes, SHA-256) to the organiser's ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # the organiser's: teams never read the labels
    arrays = hidden_arrays(seed)
    path = out / HIDDEN_FILE
    np.savez(path, **arrays)  # type: ignore[arg-type]
    manifest = {"seed": seed, "rows": len(arrays["y"]), "shifted_rows": int(arrays["shifted"].sum()),
                "train_corruptions": list(TRAIN_CORRUPTIONS), "shifted_corruption": SHIFTED_CORRUPTION,
                "sha256": _sha256(path)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return out


def load_hidden(directory: str | Path) -> dict[str, np.ndarray]:
    """The hidden test set from the organiser's directory, checked against its manifest."""
    out = Path(directory)
    path, manifest_path = out / HIDDEN_FILE, out / MANIFEST
    if not path.is_file() or not manifest_path.is_file():
        raise KitError(f"no hidden test set in {out} (expected {HIDDEN_FILE} and {MANIFEST})",
                       fix=f"write it: `python -m kit.hackathon.challenge hidden {out}`")
    manifest = json.loads(manifest_path.read_text())
    if _sha256(path) != manifest["sha256"]:
        raise KitError(f"{path} does not match the SHA-256 in {manifest_path}: the labels were changed",
                       fix=f"write them again from the seed: `python -m kit.hackathon.challenge hidden {out}`")
    with np.load(path) as data:
        return {key: data[key] for key in ("x", "y", "shifted")}


def train_artifacts(data_dir: str | Path, specs: list[dict]) -> list[str]:
    """Train one serving artifact per spec (``model_dir`` and :class:`~kit.config.train.TrainConfig` fields) on
    the team's data, with the kit's model builder, written by :func:`kit.train.artifact.write_artifact`.

    A plain loop in this process (full passes, Adam), not a launcher: a launcher's setup costs seconds per run,
    which a rehearsal of eight teams cannot afford; the artifact is the same format every launcher writes."""
    import torch

    from kit.config.train import TrainConfig
    from kit.train import models
    from kit.train.artifact import write_artifact
    from kit.train.data import DIGITS_SCALE, preprocessing

    torch.set_num_threads(1)  # tiny matrices: more threads only contend for the cores
    with np.load(Path(data_dir) / TEAM_FILE) as data:
        arrays = {key: data[key] for key in data.files}
    x = torch.as_tensor(arrays["x_train"] * DIGITS_SCALE, dtype=torch.float32)
    y = torch.as_tensor(arrays["y_train"], dtype=torch.int64)
    x_val = torch.as_tensor(arrays["x_val"] * DIGITS_SCALE, dtype=torch.float32)
    y_val = torch.as_tensor(arrays["y_val"], dtype=torch.int64)
    done = []
    for spec in specs:
        fields = {k: v for k, v in spec.items() if k != "model_dir"}
        config = TrainConfig.from_dict({"dataset": "digits", "model": "mlp", "batch_size": 128, "lr": 0.01,
                                        "device": "cpu", **fields})
        torch.manual_seed(config.seed)
        network = models.build_model(config.model, x.shape[1], 10, config.hidden)
        optimiser = torch.optim.Adam(network.parameters(), lr=config.lr)
        for _ in range(config.epochs):
            for batch in torch.randperm(len(x)).split(config.batch_size):
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(network(x[batch]), y[batch]).backward()
                optimiser.step()
        network.eval()
        with torch.inference_mode():
            accuracy = float((network(x_val).argmax(dim=1) == y_val).float().mean())
        write_artifact(spec["model_dir"], network, config, accuracy=accuracy, input_shape=(64,),
                       classes=tuple(range(10)), preprocessing=preprocessing("digits"))
        done.append(spec["model_dir"])
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m kit.hackathon.challenge hidden DIR | team DIR | train DATA_DIR SPECS_JSON``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 2 and args[0] == "hidden":
        print(write_hidden(args[1]))
    elif len(args) >= 2 and args[0] == "team":
        print(write_team_data(args[1]))
    elif len(args) == 3 and args[0] == "train":
        print("\n".join(train_artifacts(args[1], json.loads(args[2]))))
    else:
        print(main.__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
