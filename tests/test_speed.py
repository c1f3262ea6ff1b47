"""Stage 08's speed levers: quantization without deprecation noise, and words chosen from the numbers."""

from __future__ import annotations

import warnings

import torch

from kit.serve import speed


def _rows(f1: int, q1: int, f32: int, q32: int) -> list[dict]:
    return [{"model": "float32", "batch": 1, "rows_per_s": f1}, {"model": "int8 dynamic", "batch": 1, "rows_per_s": q1},
            {"model": "float32", "batch": 32, "rows_per_s": f32},
            {"model": "int8 dynamic", "batch": 32, "rows_per_s": q32}]


def test_verdict_follows_the_numbers():
    text = speed.verdict(_rows(6531, 5555, 28570, 55497))
    assert "float32 rows/s x4.4" in text and "batch 1: x0.85 (slower)" in text and "batch 32: x1.94 (faster)" in text
    assert text.endswith("the bigger lever on this machine: batching")
    flipped = speed.verdict(_rows(1000, 1000, 1100, 3000))
    assert "batch 1: x1.00 (about the same)" in flipped and flipped.endswith("int8 at the large batch")


def test_quantize_dynamic_is_int8_and_quiet():
    network = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning left would fail here
        quantized = speed.quantize_dynamic(network)
    assert isinstance(quantized[0], torch.ao.nn.quantized.dynamic.Linear)
    assert speed.agreement(network, quantized) > 0.8
