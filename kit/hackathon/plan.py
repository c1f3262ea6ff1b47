"""``python -m kit hackathon plan``: an event's manifests and JupyterHub values, validated, checked and written.

:func:`build` renders everything (:mod:`kit.hackathon.teams`, the hub's RBAC from :mod:`kit.hackathon.jupyterhub`);
:func:`check` runs the validator ``python -m kit validate`` runs (CRD schemas, admission rules, policy), the
isolation check (:mod:`kit.hackathon.isolation`) and the chart's schema on the values; :func:`write` writes
``manifests/shared.yaml``, one ``manifests/<team>.yaml`` per team and ``jupyterhub-values.yaml`` (beside
``manifests/``, so ``python -m kit validate <out>/manifests`` reads only manifests). ``apply`` applies ``shared.yaml``
first (namespaces of the scorer, the Cohort, the flavors and priorities), then the teams; ``delete`` goes in the
opposite order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.hackathon import isolation, jupyterhub, teams
from kit.hackathon.event import Event
from kit.k8s.builders import to_yaml

HEADER = "# Written by `python -m kit hackathon plan` (kit/hackathon/) from the event file {source}.\n"
VALUES_FILE = "jupyterhub-values.yaml"
MANIFESTS = "manifests"
SHARED_FILE = "shared.yaml"


@dataclass(frozen=True)
class Checked:
    """What :func:`check` found: validation problems, broken isolation, JupyterHub value problems."""

    problems: list[str]
    isolation: list[str]
    values: list[str]

    @property
    def ok(self) -> bool:
        return not (self.problems or self.isolation or self.values)

    def explain(self) -> str:
        parts = [("validation", self.problems), ("isolation", self.isolation), ("JupyterHub values", self.values)]
        return "\n".join(f"{title}:\n  " + "\n  ".join(found) for title, found in parts if found)


def build(event: Event) -> teams.TeamPlan:
    """The event's documents: shared and per team, with the RBAC the hub needs in each team's namespace."""
    plan = teams.render(event)
    cluster_wide, per_team = jupyterhub.hub_access(event)
    plan.shared += cluster_wide
    for name, docs in per_team.items():
        plan.teams[name] += docs
    return plan


def check(plan: teams.TeamPlan, crd_dir: Path | str | None = None, chart_dir: Path | None = None) -> Checked:
    """Strict validation of every document, the isolation check, and the JupyterHub values against the chart."""
    from kit.k8s.validation.validate import validate_documents

    docs = plan.documents()
    problems = [str(p) for p in validate_documents(docs, "kit hackathon plan", crd_dir=crd_dir)]
    return Checked(problems, isolation.violations(docs, plan.event),
                   jupyterhub.check(jupyterhub.values(plan.event), chart_dir))


def write(plan: teams.TeamPlan, out: Path, source: str = "") -> list[Path]:
    """Write each file under ``out`` (after :func:`check` passed); return the paths in apply order."""
    (out / MANIFESTS).mkdir(parents=True, exist_ok=True)
    written = []
    for name, docs in plan.files().items():
        path = out / MANIFESTS / name
        path.write_text(HEADER.format(source=source or "(in memory)") + to_yaml(docs))
        written.append(path)
    written.append(jupyterhub.write(plan.event, out / VALUES_FILE))
    return written


def summary(plan: teams.TeamPlan) -> str:
    """One line per team: members, quota, queue; then the shared resources."""
    event, share = plan.event, plan.event.resources
    lines = [f"event {event.name}: {len(event.teams)} teams, {event.start} -> {event.end}",
             f"each team: {share.cpu} cpu, {share.memory} memory, {share.gpu} gpu in ClusterQueue <team> "
             f"(cohort {event.name}: may borrow as much again, lends at most half)",
             f"{'team':<20} {'members':>7}  {'quota requests.cpu':>18}  {'requests.memory':>15}"]
    for team in event.teams:
        hard = _quota(plan.teams[team.name])
        cpu, memory = hard["requests.cpu"], hard["requests.memory"]
        lines.append(f"{team.name:<20} {len(team.members):>7}  {cpu:>18}  {memory:>15}")
    lines.append(f"scorer: namespace {event.scorer_namespace}, priority {teams.SCORING_PRIORITY} "
                 f"({teams.PRIORITIES[teams.SCORING_PRIORITY]}) over {teams.TEAM_PRIORITY} "
                 f"({teams.PRIORITIES[teams.TEAM_PRIORITY]})")
    return "\n".join(lines)


def _quota(docs: list[dict[str, Any]]) -> dict[str, str]:
    return next(d["spec"]["hard"] for d in docs if d["kind"] == "ResourceQuota")


def plan_files(out: Path) -> list[Path]:
    """A written plan's manifest files in apply order (shared first), or a :class:`KitError`."""
    shared = out / MANIFESTS / SHARED_FILE
    if not shared.is_file():
        raise KitError(f"no plan in {out} ({MANIFESTS}/{SHARED_FILE} is missing)",
                       fix="write it first: `python -m kit hackathon plan --event EVENT.yaml --out "
                           f"{out}`")
    return [shared, *sorted(p for p in (out / MANIFESTS).glob("*.yaml") if p.name != SHARED_FILE)]
