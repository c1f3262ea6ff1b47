"""Stage 12's serving artifact: the model and tokenizer in Hugging Face format, plus the kit's metadata.

A directory holds what ``save_pretrained`` writes (``config.json``, ``generation_config.json``,
``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``, ...) — vLLM, ``transformers`` and
KServe's Hugging Face runtime load it as it is — and ``kit_llm.json``: the name, the :class:`LMConfig`,
the corpus, the loss curve, the held-out loss and the SHA-256 of ``model.safetensors``, checked before
every load (the same rule as the digits artifact, :mod:`kit.train.artifact`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kit.paths import work_dir
from kit.train.artifact import ArtifactError, _replace_atomically, file_sha256

log = logging.getLogger(__name__)

NAME = "kit-tiny-llama"
WEIGHTS = "model.safetensors"
METADATA = "kit_llm.json"
FORMAT_VERSION = 1
TRAIN_FIX = ("train it: `python -m kit.llm.train --model-dir DIR` "
             "(or call kit.llm.artifact.ensure_trained(), which stage 12 does)")
QUALITY = ("a tiny model trained for about a minute on generated sentences: it writes grammatical-looking "
           "sentences about clusters, nothing true; it exists to be served and measured")


def standard_model_dir() -> Path:
    """Where stage 12 and ``python -m kit bench llm`` keep the model (``build/models/llm``)."""
    return work_dir("models", "llm", create=False)


def write(model_dir: str | Path, model, tokenizer, config, result: dict[str, Any]) -> dict[str, Any]:
    """Save ``model`` and ``tokenizer`` with ``save_pretrained``, then the metadata (last, atomically)."""
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    metadata = {
        "name": NAME, "format_version": FORMAT_VERSION, "quality": QUALITY,
        "corpus": f"kit.llm.corpus.generate({config.sentences}, seed={config.seed}): generated sentences",
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": config.to_dict(), "history": result["history"], "test_loss": result["test_loss"],
        "test_perplexity": result["test_perplexity"],
        "initial_loss_uniform": result["initial_loss_uniform"], "seconds": result["seconds"],
        "weights_sha256": file_sha256(directory / WEIGHTS),
    }
    _replace_atomically(directory / METADATA, lambda tmp: tmp.write_text(json.dumps(metadata, indent=2)))
    log.info("wrote the language model to %s (held-out loss %s)", directory, result["test_loss"])
    return metadata


def verify(model_dir: str | Path) -> dict[str, Any]:
    """The metadata, after checking the directory is complete and the weights have the recorded hash."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ArtifactError(f"model directory {directory} does not exist", fix=TRAIN_FIX)
    for name in (METADATA, WEIGHTS, "config.json", "tokenizer.json"):
        if not (directory / name).is_file():
            raise ArtifactError(f"{directory / name} is missing: the directory is not a complete kit language model",
                                fix=TRAIN_FIX)
    try:
        metadata = json.loads((directory / METADATA).read_text())
    except ValueError as error:
        raise ArtifactError(f"{directory / METADATA} is not JSON: {error}", fix=TRAIN_FIX) from None
    if not isinstance(metadata, dict) or metadata.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{directory / METADATA}: not format_version {FORMAT_VERSION} metadata", fix=TRAIN_FIX)
    actual = file_sha256(directory / WEIGHTS)
    if actual != metadata.get("weights_sha256"):
        raise ArtifactError(
            f"{directory / WEIGHTS} has SHA-256 {actual[:12]}..., but {METADATA} records "
            f"{str(metadata.get('weights_sha256'))[:12]}...: the weights were changed after training",
            fix="copy the whole model directory again, or " + TRAIN_FIX)
    return metadata


def load(model_dir: str | Path):
    """``(model, tokenizer, metadata)`` with ``transformers`` (eval mode, CPU), hash checked first."""
    metadata = verify(model_dir)
    from transformers import AutoTokenizer, LlamaForCausalLM

    try:
        model = LlamaForCausalLM.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except Exception as error:  # transformers raises many types for a damaged directory
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArtifactError(f"{model_dir} cannot be loaded with transformers: {first}", fix=TRAIN_FIX) from None
    return model.eval(), tokenizer, metadata


def ensure_trained(model_dir: str | Path | None = None, **overrides: Any) -> Path:
    """The model at ``model_dir`` (default :func:`standard_model_dir`); trained there first when missing."""
    from kit.llm.model import LMConfig, train_lm

    directory = Path(model_dir) if model_dir else standard_model_dir()
    try:
        verify(directory)
        return directory
    except ArtifactError as error:
        print(f"No language model to serve ({error.message}); training one into {directory}.", flush=True)
    train_lm(LMConfig(**overrides), directory)
    return directory
