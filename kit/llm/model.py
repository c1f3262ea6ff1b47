"""Stage 12's language model, made here: a BPE tokenizer, a tiny Llama-style model, brief training.

- the tokenizer: byte-level BPE trained with ``tokenizers`` on :mod:`kit.llm.corpus` (512 tokens: the
  256 bytes, three special tokens and ~250 merges, enough to keep most corpus words whole);
- the model: ``transformers``' ``LlamaForCausalLM`` with hidden size 128, two heads of size 64 (vLLM's
  CPU attention kernel rejects head size 16; 64 works), two layers, tied embeddings (~0.4 M parameters);
- training: :func:`train_lm` packs the corpus into fixed-length blocks and runs AdamW for a few hundred
  steps, joining the job through the kit's training runtime (:func:`kit.train.loop.start_runtime`: one
  process, or DDP under torchrun) and printing the same ``KIT_METRICS`` lines as every kit training run.
  The loss falls from ~6.3 (uniform over 512 tokens) to ~1 in a minute: the model learns the grammar,
  not facts, and says so in its metadata.

Rank 0 writes the serving artifact (:mod:`kit.llm.artifact`): Hugging Face format that vLLM and
``transformers`` load as they are.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kit.llm import corpus

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")
#: A plain-text chat format: vLLM's /v1/chat/completions renders messages with the tokenizer's template.
CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


@dataclass(frozen=True)
class LMConfig:
    """The model's shape and its training run; every field is recorded in the artifact's metadata."""

    vocab_size: int = 512
    hidden_size: int = 128
    head_dim: int = 64
    layers: int = 2
    intermediate_size: int = 256
    context: int = 256  # max_position_embeddings: the longest prompt + completion the model accepts
    block: int = 64  # training sequence length
    sentences: int = 4000
    steps: int = 200
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    device: str = "cpu"
    log_every: int = 25
    #: torch intra-op threads (0: torch's default); on a small shared CPU one thread is often faster
    threads: int = 0

    def __post_init__(self) -> None:
        if self.hidden_size % self.head_dim:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of head_dim {self.head_dim}")
        if self.head_dim < 32:
            raise ValueError(f"head_dim {self.head_dim}: vLLM's CPU attention kernel rejects small heads; use 64")
        if self.block > self.context:
            raise ValueError(f"block {self.block} is longer than the context {self.context}")
        for name in ("steps", "batch_size", "sentences", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def heads(self) -> int:
        return self.hidden_size // self.head_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_tokenizer(lines: list[str], vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``lines`` (with a chat template)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(lines, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(config: LMConfig, tokenizer):
    """A freshly initialised ``LlamaForCausalLM`` of ``config``'s shape for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    hf_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers, num_attention_heads=config.heads, num_key_value_heads=config.heads,
        head_dim=config.head_dim, max_position_embeddings=config.context, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(hf_config)


def pack(lines: list[str], tokenizer, block: int):
    """The token ids of ``<s> line </s> <s> line </s> ...`` cut into rows of ``block`` (a LongTensor)."""
    import torch

    ids: list[int] = []
    for line in lines:
        ids += [tokenizer.bos_token_id, *tokenizer.encode(line), tokenizer.eos_token_id]
    rows = len(ids) // block
    if rows < 2:
        raise ValueError(f"{len(lines)} sentences make {len(ids)} tokens: fewer than two blocks of {block}")
    return torch.tensor(ids[: rows * block]).view(rows, block)


def _mean_loss(model, rows, batch_size: int, device) -> float:
    import torch

    losses = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size].to(device)
            losses.append(float(model(input_ids=batch, labels=batch).loss))
    return sum(losses) / len(losses)


def train_lm(config: LMConfig | None = None, model_dir: str | Path | None = None, *, quiet: bool = False
             ) -> dict[str, Any]:
    """Train the tokenizer and the model (one process, or DDP under torchrun); rank 0 writes the artifact
    to ``model_dir`` when given. Returns the loss history (one entry per ``log_every`` steps), the
    held-out loss and, on rank 0, the artifact's metadata."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from kit.config.train import TrainConfig
    from kit.train.loop import METRICS_PREFIX, start_runtime, stop_runtime

    config = config or LMConfig()
    if config.threads:
        torch.set_num_threads(config.threads)
    runtime = start_runtime(TrainConfig(device=config.device))
    try:
        lines = corpus.generate(config.sentences, config.seed)
        held_out = max(1, len(lines) // 10)
        tokenizer = train_tokenizer(lines, config.vocab_size)
        train_rows = pack(lines[held_out:], tokenizer, config.block)
        test_rows = pack(lines[:held_out], tokenizer, config.block)
        model = build_model(config, tokenizer).to(runtime.device)
        net = DistributedDataParallel(model) if runtime.world_size > 1 else model
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps)
        generator = torch.Generator().manual_seed(config.seed + runtime.rank)
        history: list[dict[str, Any]] = []
        started, window = time.perf_counter(), []
        for step in range(1, config.steps + 1):
            net.train()
            index = torch.randint(len(train_rows), (config.batch_size,), generator=generator)
            batch = train_rows[index].to(runtime.device)
            loss = net(input_ids=batch, labels=batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            window.append(float(loss.detach()))
            if step % config.log_every == 0 or step == config.steps:
                entry = {"step": step, "train_loss": round(sum(window) / len(window), 4),
                         "seconds": round(time.perf_counter() - started, 2)}
                window = []
                history.append(entry)
                if runtime.is_chief and not quiet:
                    print(METRICS_PREFIX + json.dumps(entry), flush=True)
        model.eval()
        test_loss = _mean_loss(model, test_rows, config.batch_size, runtime.device)
        result: dict[str, Any] = {
            "history": history, "test_loss": round(test_loss, 4), "test_perplexity": round(math.exp(test_loss), 2),
            "initial_loss_uniform": round(math.log(len(tokenizer)), 4), "world_size": runtime.world_size,
            "seconds": round(time.perf_counter() - started, 2),
        }
        if runtime.is_chief and model_dir is not None:
            from kit.llm import artifact

            result["metadata"] = artifact.write(model_dir, model.cpu(), tokenizer, config, result)
        return result
    finally:
        stop_runtime(runtime)
