"""Stage 12's plots: the training loss, tokens/s and latency against concurrent streams, the engine's gauges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def plot_loss(metadata: dict[str, Any]):
    """Training loss per logged step, and the held-out loss and a uniform guess's for scale."""
    import matplotlib.pyplot as plt

    history = metadata["history"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([h["step"] for h in history], [h["train_loss"] for h in history], marker="o", label="training loss")
    ax.axhline(metadata["test_loss"], color="tab:green", linestyle="--", label="held-out loss (end)")
    ax.axhline(metadata["initial_loss_uniform"], color="grey", linestyle=":", label="a uniform guess")
    ax.set(xlabel="step", ylabel="cross-entropy (nats per token)", title="Training the tiny language model")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_sweep(rows: Sequence[dict[str, Any]], title: str):
    """Tokens/s (left) and median TTFT/TPOT (right) against the number of concurrent streams."""
    import matplotlib.pyplot as plt

    streams = [r["concurrency"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.plot(streams, [r["tokens_per_s"] for r in rows], marker="o")
    left.set(xlabel="concurrent streams", ylabel="tokens/s (all streams)", xscale="log", title="Throughput")
    right.plot(streams, [r["ttft_median"] * 1000 for r in rows], marker="o", label="TTFT (median)")
    right.plot(streams, [(r["tpot_median"] or 0) * 1000 for r in rows], marker="s", label="TPOT (median)")
    right.set(xlabel="concurrent streams", ylabel="ms", xscale="log", yscale="log", title="Latency")
    for ax in (left, right):
        ax.set_xticks(streams, [str(s) for s in streams])
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_engine_samples(samples: Sequence[dict[str, Any]], max_num_seqs: int):
    """Requests running and waiting, and the KV cache's usage, over a load (from :class:`MetricsSampler`)."""
    import matplotlib.pyplot as plt

    t = [s["t"] for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), sharex=True)
    top.step(t, [s["running"] for s in samples], where="post", label="running")
    top.step(t, [s["waiting"] for s in samples], where="post", label="waiting")
    top.axhline(max_num_seqs, color="grey", linestyle=":", label="max_num_seqs")
    top.set(ylabel="requests")
    top.legend(loc="upper right")
    bottom.plot(t, [100 * s["kv_usage"] for s in samples], color="tab:red")
    bottom.set(xlabel="seconds", ylabel="KV cache used (%)", ylim=(0, 105))
    fig.suptitle("What the engine reported during the load (/metrics)")
    fig.tight_layout()
    return fig
