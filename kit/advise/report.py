"""A :class:`~kit.advise.rules.Plan` as text for a person or JSON for a program."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from kit.advise.rules import Plan
from kit.deploy.sizing import Fit


def cited(plan: Plan) -> dict[str, Any]:
    """The measured figures some recommendation names as its source."""
    return {name: f for name, f in plan.figures.items() if any(f.source in r.source for r in plan.recommendations)}


def as_dict(plan: Plan, written: list[Path] | None = None, fit: Fit | None = None) -> dict[str, Any]:
    """Everything the plan says, JSON-ready."""
    return {
        "workload": plan.workload.as_dict(),
        "recommendations": [r.as_dict() for r in plan.recommendations],
        "sizes": {"launcher": plan.launcher, "workers": plan.workers, "nodes": plan.nodes,
                  "worker_pod": str(plan.worker), "batch_size": plan.batch_size, "server": plan.server,
                  "replicas": plan.replicas, "max_replicas": plan.max_replicas, "server_pod": str(plan.server_pod),
                  "max_batch_size": plan.max_batch_size, "batch_workers": plan.batch_workers,
                  "team_quota": str(plan.team_quota)},
        "estimate": plan.estimate,
        "figures": {name: figure.source for name, figure in cited(plan).items()},
        "manifests": [str(p) for p in written or []],
        "fit": fit.report() if fit else None,
    }


def _wrap(label: str, text: str) -> str:
    return textwrap.fill(text, 116, initial_indent=f"    {label}", subsequent_indent=" " * (4 + len(label)))


def as_text(plan: Plan, written: list[Path] | None = None, fit: Fit | None = None) -> str:
    """The plan: each recommendation with its reason and source, the estimate and its assumptions, the files."""
    w = plan.workload
    lines = [f"kit advise: {w.name} ({w.where})", ""]
    for r in plan.recommendations:
        lines += [f"  [{r.topic}] {r.choice}", _wrap("why: ", r.reason), _wrap("source: ", r.source)]
    e = plan.estimate
    lines += ["", f"  [estimate] {e['label']}: {e['covers']}",
              f"    {e['gpu_hours']} GPU-hours, {e['cpu_core_hours']} core-hours, about {e['energy_kwh']} kWh, "
              f"about USD {e['usd']}", "    assumptions:"]
    lines += [_wrap("- ", a) for a in e["assumptions"]]
    lines += ["", "  measured figures cited:"] + [_wrap(f"{name}: ", f.source) for name, f in cited(plan).items()]
    if written:
        lines += ["", "  manifests (validated strictly, as `python -m kit validate` does):"]
        lines += [f"    {p}" for p in written]
    elif not w.kubernetes:
        lines += ["", f"  no manifests: {w.where} has no Kubernetes (where: kind, cluster or gpu-pool renders them)"]
    if fit:
        lines += ["", "  fit against the nodes (kit/deploy/sizing.py):"]
        lines += [f"    {x}" for x in fit.report().split("\n")]
    return "\n".join(lines)
