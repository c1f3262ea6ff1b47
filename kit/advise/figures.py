"""Every number the advisor decides with, and where it comes from: one place.

Two kinds:

- **measured** figures: read from the benchmark JSON the kit writes (``python -m kit bench serve|train|ray``
  save ``build/bench/<name>.json``, :func:`kit.bench.save`). When a file is absent, the figure falls back to
  the value the README's *Figures* section reports for the same benchmark, and its source says so;
- **documented** facts: an upstream page or a specification, with its link; or a stated *assumption* (prices).

Each is a :class:`Figure` (value and source); :func:`measured` returns the measured ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit import paths, versions


@dataclass(frozen=True)
class Figure:
    """A value and where it comes from: a file the kit wrote, the README's figure, a link or an assumption."""

    value: Any
    source: str

    def __getitem__(self, key: str) -> Any:
        return self.value[key]


_README = "README.md Figures, {section} (2026-12-01, 2 CPUs, no GPU; `build/bench/{name}.json` absent here)"
_SERVE_FALLBACK = {  # README "Serving: python -m kit bench serve", the table and the per-request line
    "ms_per_request": {"baseline": 6.2, "ray-serve one-hop": 9.7, "ray-serve two-hop": 21.1, "handle": 3.9,
                       "kserve v1": round(1e3 / 175, 1)},
    "digits_model_ms": {"1": 0.044, "16": round(0.007 * 16, 3)},
    "batching_gain": {"digits": 0.74, "heavy": 3.17},
}
_TRAIN_FALLBACK = {  # README "Training: python -m kit bench train"
    "startup_s": {"in-process": 2.7, "torchrun": 11.8, "ray-train": 52.0},
    "ratio_ray_over_torchrun": 1.00,
    "speedup_2_over_1": 0.99,
}
_RAY_FALLBACK = {"first notebook: import + start Ray": 14.3, "next notebook: import + attach": 2.1}


def _read(name: str, bench_dir: Path | None) -> dict[str, Any] | None:
    path = (bench_dir or paths.work_dir("bench", create=False)) / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _measured_on(data: dict[str, Any], name: str) -> str:
    m = data.get("machine") or {}
    return (f"build/bench/{name}.json (`python -m kit bench {name}` on {m.get('cpus', '?')} CPUs, "
            f"GPUs: {', '.join(m.get('gpus') or []) or 'none'})")


def _serve(data: dict[str, Any]) -> dict[str, Any]:
    from kit.bench import serve as bench

    rows, hops = data["rows"], data["ms_per_request"]
    kserve_rps = rows[bench.KSERVE_V1]["throughput_rps"]
    return {
        "ms_per_request": {"baseline": hops[bench.BASELINE], "ray-serve one-hop": hops[bench.ONE_HOP],
                           "ray-serve two-hop": hops[bench.TWO_HOP], "handle": hops[bench.HANDLE],
                           "kserve v1": round(1e3 / kserve_rps, 1) if kserve_rps else math.inf},
        "digits_model_ms": {str(k): v for k, v in data["forward_ms"]["digits"].items()},
        "batching_gain": {name: e["measured"] for name, e in data["explanations"].items()},
    }


def measured(bench_dir: Path | None = None) -> dict[str, Figure]:
    """The measured figures: ``serve``, ``train`` and ``ray``, each from its JSON or the README's fallback."""
    found: dict[str, Figure] = {}
    readers = {"serve": (_serve, _SERVE_FALLBACK, "Serving"),
               "train": (lambda d: {k: d[k] for k in _TRAIN_FALLBACK}, _TRAIN_FALLBACK, "Training"),
               "ray": (lambda d: {k: d["rows"][k]["median"] for k in _RAY_FALLBACK}, _RAY_FALLBACK,
                       "Local Ray start-up")}
    for name, (read, fallback, section) in readers.items():
        data = _read(name, bench_dir)
        value = None
        if data is not None:
            try:
                value = read(data)
            except (KeyError, TypeError, ZeroDivisionError):
                value = None  # an older or partial file: the README's figure instead
        if value is None:
            found[name] = Figure(fallback, _README.format(section=section, name=name))
        else:
            found[name] = Figure(value, _measured_on(data or {}, name))
    return found


# --------------------------------------------------------------------------- documented facts and assumptions

_KUEUE = versions.OPERATORS["kueue"]
#: Binder's container: mybinder.org gives each session between 1 and 2 GB of memory (the kit's notebooks are
#: budgeted for 2 GiB, README "Memory: Binder's 2 GiB"); one core is the kit's assumption for its CPU share.
BINDER = Figure({"cpus": 1.0, "memory_gb": 2.0},
                "https://mybinder.readthedocs.io/en/latest/about/about.html (memory); one core: assumption")
#: Training state per parameter with Adam in mixed precision: fp16/bf16 weights and gradients (2+2 bytes) and
#: fp32 master weights, momentum and variance (12 bytes); activations come on top.
TRAIN_BYTES_PER_PARAM = Figure(16, "ZeRO (Rajbhandari et al., 2020), section 3.1: https://arxiv.org/abs/1910.02054")
#: Serving weights: fp32 on CPUs, bf16 on GPUs.
SERVE_BYTES_PER_PARAM = Figure({"cpu": 4, "gpu": 2}, "IEEE 754 float32 / bfloat16 sizes")
ONE_PROCESS_PER_GPU = Figure(1, "PyTorch DDP notes: https://pytorch.org/docs/stable/notes/ddp.html")
#: p95 of the response time of an M/M/1 queue: exponential with rate (mu - lambda), so p95 = ln(20) / (mu - lambda).
MM1_P95_FACTOR = Figure(math.log(20), "M/M/1 response time: https://en.wikipedia.org/wiki/M/M/1_queue#Response_time")
RAY_TRAIN_STORAGE = Figure("shared", "Ray Train persistent storage (a multi-node run needs shared storage): "
                                     "https://docs.ray.io/en/latest/train/user-guides/persistent-storage.html")
KUEUE_COHORT = Figure(_KUEUE, f"Kueue {_KUEUE} cohorts: https://kueue.sigs.k8s.io/docs/concepts/cohort/")
KUEUE_FAIR_SHARING = Figure(_KUEUE, f"Kueue {_KUEUE} fair sharing (enabled in Kueue's Configuration, "
                                    "`fairSharing`): https://kueue.sigs.k8s.io/docs/concepts/fair_sharing/")
KUEUE_PREEMPTION = Figure(_KUEUE, f"Kueue {_KUEUE} preemption: https://kueue.sigs.k8s.io/docs/concepts/preemption/")
TRAINER = Figure(versions.OPERATORS["kubeflow-trainer"],
                 f"Kubeflow Trainer {versions.OPERATORS['kubeflow-trainer']}: "
                 "https://www.kubeflow.org/docs/components/trainer/")
KUBERAY_RAYJOB = Figure(versions.OPERATORS["kuberay"], f"KubeRay {versions.OPERATORS['kuberay']} RayJob: "
                        "https://docs.ray.io/en/latest/cluster/kubernetes/getting-started/rayjob-quick-start.html")
KSERVE = Figure(versions.OPERATORS["kserve"], f"KServe {versions.OPERATORS['kserve']}: "
                "https://kserve.github.io/website/docs/model-serving/predictive-inference/frameworks/overview")
SERVE_BATCHING = Figure(16, "Ray Serve dynamic batching: https://docs.ray.io/en/latest/serve/advanced-guides/"
                            "dyn-req-batch.html; batch 16 is the kit's ServeConfig.max_batch_size")
PSS = Figure("restricted", "https://kubernetes.io/docs/concepts/security/pod-security-standards/")
#: Board power (W) by GPU model, from NVIDIA's data sheets; an unknown model is counted at the H200's 700 W.
GPU_WATTS = Figure({"h200": 700, "h100": 700, "a100": 400, "l40s": 350, "l4": 72},
                   "NVIDIA data sheets (max. TDP, SXM where offered): https://www.nvidia.com/en-us/data-center/")
#: A server CPU's power per core: AMD EPYC 9654, 360 W default TDP over 96 cores.
CPU_WATTS_PER_CORE = Figure(360 / 96, "AMD EPYC 9654 specifications: https://www.amd.com/en/products/processors/"
                                      "server/epyc/4th-generation-9004-and-8004-series/amd-epyc-9654.html")
#: Data-centre overhead (cooling, power conversion): the average power usage effectiveness reported for 2023.
PUE = Figure(1.58, "Uptime Institute Global Data Center Survey 2023: https://uptimeinstitute.com/resources/"
                   "research-and-reports/uptime-institute-global-data-center-survey-results-2023")
#: Prices: stated round assumptions, not quotes; pass your own (--usd-per-gpu-hour, --usd-per-cpu-hour).
PRICES = Figure({"gpu_hour": 3.0, "cpu_hour": 0.05}, "assumption: round on-demand figures, not a quote")
HOURS_PER_MONTH = 730  # 365 * 24 / 12
