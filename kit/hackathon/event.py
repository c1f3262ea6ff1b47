"""The event file of a hackathon: who competes, with how much of the cluster, when, and how they are scored.

``python -m kit hackathon init`` writes one (YAML); every other organiser command reads it with
:meth:`Event.load`, which checks each field and names the field and the fix when one is wrong::

    name: kit-hackathon            # a DNS label: the Kueue Cohort and the prefix of nothing else
    start: 2026-12-10T09:00:00+00:00
    end: 2026-12-10T17:00:00+00:00
    teams:                         # each team gets a namespace of its own name
      - {name: team-01, members: [alice@example.org, bob@example.org]}
    resources: {cpu: 450m, memory: 1536Mi, gpu: 0}   # per team: its Kueue quota and notebook limit
    scoring: {accuracy: 0.6, latency: 0.25, cost: 0.15}
    jupyterhub: {image: ..., gpu_image: ..., storage: 1Gi, cull_idle_seconds: 3600,
                 cpu_guarantee: 100m, memory_guarantee: 512Mi}
    scorer_namespace: hackathon-scorer
    api_server_cidr: 0.0.0.0/0     # where notebooks and Ray heads may open 443/6443: narrow it to the API server

:func:`team_share` divides what the cluster leaves once the operators run (:mod:`kit.deploy.sizing`)
between the teams: ``init``'s defaults for kind, a cloud cluster or a GPU pool.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from kit import versions
from kit.errors import KitError
from kit.k8s.requests import QuantityError, Requests

#: A namespace name: a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SCORING_KEYS = ("accuracy", "latency", "cost")
DEFAULT_WEIGHTS = {"accuracy": 0.6, "latency": 0.25, "cost": 0.15}
DEFAULT_SCORER_NAMESPACE = "hackathon-scorer"
#: Namespaces a team may not take: the system's, the operators', the kit's own.
RESERVED = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", versions.NAMESPACE,
                      *versions.OPERATOR_NAMESPACES.values()})


class EventError(KitError, ValueError):
    """An event file that cannot be used; the message names the field, ``fix`` what to write instead."""


@dataclass(frozen=True)
class Team:
    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resources:
    """One team's share: what its ClusterQueue holds, and the most one of its notebooks may use."""

    cpu: str = "500m"
    memory: str = "1Gi"
    gpu: int = 0

    @property
    def requests(self) -> Requests:
        return Requests.parse(self.cpu, self.memory, self.gpu)


@dataclass(frozen=True)
class JupyterHub:
    """The single-user servers: images, per-user storage, idle culling and what each server is guaranteed."""

    image: str = versions.IMAGES["kit"]
    gpu_image: str = versions.IMAGES["kit-gpu"]
    storage: str = "1Gi"
    cull_idle_seconds: int = 3600
    cpu_guarantee: str = "100m"
    memory_guarantee: str = "512Mi"
    #: Where the chart is installed (`helm install ... --namespace`): the hub and proxy pods run there.
    namespace: str = "jupyterhub"
    #: Each team's models volume (ReadWriteMany: every member's server writes, the team's servers read).
    models_storage: str = "2Gi"
    #: A StorageClass that offers ReadWriteMany (README "Shared storage"); empty: the cluster's default.
    storage_class: str = ""


@dataclass(frozen=True)
class Event:
    name: str
    start: str
    end: str
    teams: tuple[Team, ...]
    resources: Resources = field(default_factory=Resources)
    scoring: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    jupyterhub: JupyterHub = field(default_factory=JupyterHub)
    scorer_namespace: str = DEFAULT_SCORER_NAMESPACE
    #: The API server's address (``kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes``):
    #: pods that call the API may open ports 443 and 6443 there; the default, any address, also lets them reach
    #: HTTPS sites outside the cluster.
    api_server_cidr: str = "0.0.0.0/0"

    @classmethod
    def load(cls, path: Path | str) -> Event:
        """Read and check an event file; an :class:`EventError` names the field and the fix."""
        path = Path(path)
        if not path.is_file():
            raise EventError(f"no event file at {path}", fix="write one with `python -m kit hackathon init`")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise EventError(f"{path} is not YAML: {error}", fix="fix the line YAML names") from None
        return from_mapping(data, str(path))

    def to_mapping(self) -> dict[str, Any]:
        data = asdict(self)
        data["teams"] = [{"name": t.name, "members": list(t.members)} for t in self.teams]
        return data

    def dump(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = "# A hackathon event file: written by `python -m kit hackathon init`, read by the other subcommands.\n"
        path.write_text(header + yaml.safe_dump(self.to_mapping(), sort_keys=False))
        return path

    def team(self, name: str) -> Team:
        for team in self.teams:
            if team.name == name:
                return team
        raise EventError(f"no team {name!r} in event {self.name!r}", fix="use one of: " + ", ".join(self.team_names))

    @property
    def team_names(self) -> list[str]:
        return [team.name for team in self.teams]


# --------------------------------------------------------------------------- checking a mapping


def _keys(data: Any, allowed: tuple[str, ...], where: str, source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise EventError(f"{source}: {where} must be a mapping, not {type(data).__name__}",
                         fix=f"write {where} as `key: value` lines ({', '.join(allowed)})")
    unknown = sorted(set(map(str, data)) - set(allowed))
    if unknown:
        raise EventError(f"{source}: unknown key(s) {', '.join(unknown)} in {where}",
                         fix=f"use only {', '.join(allowed)} (a typo is the usual cause)")
    return data


def _label(value: Any, where: str, source: str) -> str:
    text = str(value) if value is not None else ""
    if not DNS_LABEL.match(text):
        raise EventError(f"{source}: {where} {text!r} is not a DNS-1123 label",
                         fix="use lower-case letters, digits and '-', starting and ending with a letter or digit, "
                             "at most 63 characters (e.g. team-01)")
    return text


def _time(value: Any, where: str, source: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise EventError(f"{source}: {where} {value!r} is not an ISO date-time",
                             fix="write it like 2026-12-10T09:00:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _resources(data: Any, source: str) -> Resources:
    data = _keys(data or {}, tuple(f.name for f in fields(Resources)), "resources", source)
    merged = {**asdict(Resources()), **data}
    try:
        amounts = Requests.parse(merged["cpu"], merged["memory"], merged["gpu"])
    except (QuantityError, ValueError) as error:
        raise EventError(f"{source}: resources: {error}",
                         fix="write cpu like 500m or 2, memory like 1536Mi or 4Gi, gpu as a whole number") from None
    for name, amount in (("cpu", amounts.cpu_millis), ("memory", amounts.memory_bytes), ("gpu", amounts.gpus)):
        if amount < 0 or (name != "gpu" and amount == 0):
            raise EventError(f"{source}: resources.{name} is {merged[name]!r}: a team needs a positive share",
                             fix="give every team some cpu and memory (gpu may be 0); "
                                 "`python -m kit hackathon init --capacity ...` computes a fair share")
    return Resources(str(merged["cpu"]), str(merged["memory"]), int(merged["gpu"]))


def _scoring(data: Any, source: str) -> dict[str, float]:
    data = _keys(data if data is not None else dict(DEFAULT_WEIGHTS), SCORING_KEYS, "scoring", source)
    weights: dict[str, float] = {}
    for key in SCORING_KEYS:
        try:
            weights[key] = float(data.get(key, 0.0))
        except (TypeError, ValueError):
            raise EventError(f"{source}: scoring.{key} {data.get(key)!r} is not a number",
                             fix="write each weight as a number, e.g. accuracy: 0.6") from None
        if weights[key] < 0:
            raise EventError(f"{source}: scoring.{key} is negative ({weights[key]:g})",
                             fix="weights are 0 or more; lower a criterion's weight instead of making it negative")
    if sum(weights.values()) <= 0:
        raise EventError(f"{source}: the scoring weights sum to 0: no submission could score",
                         fix="give at least one of accuracy, latency, cost a weight above 0")
    return weights


def _jupyterhub(data: Any, source: str) -> JupyterHub:
    data = _keys(data or {}, tuple(f.name for f in fields(JupyterHub)), "jupyterhub", source)
    merged = {**asdict(JupyterHub()), **data}
    try:
        Requests.parse(merged["cpu_guarantee"], merged["memory_guarantee"])
        Requests.parse(0, merged["storage"])
        Requests.parse(0, merged["models_storage"])
    except (QuantityError, ValueError) as error:
        raise EventError(f"{source}: jupyterhub: {error}", fix="write quantities like 100m, 512Mi, 1Gi") from None
    if not isinstance(merged["cull_idle_seconds"], int) or merged["cull_idle_seconds"] <= 0:
        raise EventError(f"{source}: jupyterhub.cull_idle_seconds {merged['cull_idle_seconds']!r} is not a positive "
                         "whole number", fix="write the idle time in seconds, e.g. 3600")
    _label(merged["namespace"], "jupyterhub.namespace", source)
    if merged["storage_class"]:
        _label(merged["storage_class"], "jupyterhub.storage_class", source)
    return JupyterHub(**{key: merged[key] for key in asdict(JupyterHub())})


def _teams(data: Any, source: str) -> tuple[Team, ...]:
    if not isinstance(data, list) or not data:
        raise EventError(f"{source}: teams must be a non-empty list", fix="list the teams as "
                         "`- {name: team-01, members: [alice@example.org]}` (or run `kit hackathon init`)")
    teams: list[Team] = []
    owner: dict[str, str] = {}
    for index, item in enumerate(data):
        item = _keys(item, ("name", "members"), f"teams[{index}]", source)
        name = _label(item.get("name"), f"teams[{index}].name", source)
        if name in RESERVED:
            raise EventError(f"{source}: teams[{index}].name {name!r} is a system or operator namespace",
                             fix="choose another name, e.g. team-01")
        if name in (t.name for t in teams):
            raise EventError(f"{source}: team {name!r} appears twice", fix="give every team its own name")
        members = item.get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, str) and m.strip() for m in members):
            raise EventError(f"{source}: teams[{index}].members must be a list of user names or e-mails",
                             fix="write members: [alice@example.org, bob]")
        for member in members:
            if member in owner:
                raise EventError(f"{source}: {member!r} is in team {owner[member]!r} and team {name!r}",
                                 fix="put each person in one team: their notebook runs in that team's namespace")
            owner[member] = name
        teams.append(Team(name, tuple(members)))
    return tuple(teams)


def from_mapping(data: Any, source: str = "<event>") -> Event:
    """An :class:`Event` from parsed YAML; every problem is an :class:`EventError` naming the field."""
    data = _keys(data, tuple(f.name for f in fields(Event)), "the event file", source)
    missing = [key for key in ("name", "start", "end", "teams") if key not in data]
    if missing:
        raise EventError(f"{source}: missing {', '.join(missing)}",
                         fix="`python -m kit hackathon init` writes them all")
    name = _label(data["name"], "name", source)
    start, end = _time(data["start"], "start", source), _time(data["end"], "end", source)
    if end <= start:
        raise EventError(f"{source}: end ({end.isoformat()}) is not after start ({start.isoformat()})",
                         fix="swap them, or set end to when submissions close")
    teams = _teams(data["teams"], source)
    scorer = _label(data.get("scorer_namespace", DEFAULT_SCORER_NAMESPACE), "scorer_namespace", source)
    if scorer in (t.name for t in teams):
        raise EventError(f"{source}: scorer_namespace {scorer!r} is also a team's name",
                         fix="the scorer holds the hidden labels: give it a namespace no team has")
    hub = _jupyterhub(data.get("jupyterhub"), source)
    if hub.namespace in (scorer, *(t.name for t in teams)):
        raise EventError(f"{source}: jupyterhub.namespace {hub.namespace!r} is also a team's or the scorer's",
                         fix="install JupyterHub in a namespace of its own, e.g. jupyterhub")
    share = _resources(data.get("resources"), source)
    if not Requests.parse(hub.cpu_guarantee, hub.memory_guarantee).fits(share.requests):
        raise EventError(f"{source}: a notebook server's guarantee ({hub.cpu_guarantee} cpu, {hub.memory_guarantee}) "
                         f"is more than the team's share ({share.cpu} cpu, {share.memory}), its limit",
                         fix="lower jupyterhub.cpu_guarantee / memory_guarantee or raise resources")
    cidr = str(data.get("api_server_cidr", "0.0.0.0/0"))
    try:
        ipaddress.ip_network(cidr)
    except ValueError:
        raise EventError(f"{source}: api_server_cidr {cidr!r} is not an address range",
                         fix="write the API server's address as a CIDR, e.g. 172.18.0.2/32 (kubectl get "
                             "endpointslices -n default -l kubernetes.io/service-name=kubernetes)") from None
    return Event(name, start.isoformat(), end.isoformat(), teams, share, _scoring(data.get("scoring"), source), hub,
                 scorer, cidr)


# --------------------------------------------------------------------------- writing a new one


def team_share(teams: int, capacity: Requests, *, kind: bool, members: int = 0,
               notebook: Requests | None = None) -> Resources:
    """An equal share per team of what ``capacity`` leaves once the operators (and kind's own pods) run and each
    of the ``members`` per team has a notebook server guaranteed ``notebook`` (the hub's default), with one share
    more for the scorer; rounded down to 50m cpu and 64Mi memory. GPUs go to the teams only (the scorer runs on
    CPUs), whole (a team gets 0 when there are fewer GPUs than teams)."""
    from kit.deploy import sizing

    if teams < 1 or members < 0:
        raise EventError(f"{teams} teams of {members} members", fix="an event needs at least one team")
    hub = JupyterHub()
    servers = (notebook or Requests.parse(hub.cpu_guarantee, hub.memory_guarantee)) * (teams * members)
    available = sizing.budget(capacity, kind=kind).available
    left, shares = available - servers, teams + 1
    cpu = left.cpu_millis // shares // 50 * 50
    memory = left.memory_bytes // shares // 2**26 * 64
    if cpu <= 0 or memory <= 0:
        raise EventError(f"{capacity} leaves {available} once the operators run; {teams * members} notebook servers "
                         f"take {servers}: nothing for {teams} teams and the scorer",
                         fix="give the cluster more nodes, or plan fewer teams or members")
    return Resources(f"{cpu}m", f"{memory}Mi", left.gpus // teams)


def new_event(name: str, teams: int, *, capacity: Requests, kind: bool, members: int = 0,
              start: datetime | None = None, hours: float = 8.0) -> Event:
    """An event with ``teams`` empty teams (team-01...) of up to ``members`` people sharing ``capacity`` equally
    (:func:`team_share`), starting at ``start`` (default: three weeks from now)."""
    begin = (start or datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=21))
    event = Event(name, begin.isoformat(), (begin + timedelta(hours=hours)).isoformat(),
                  tuple(Team(f"team-{i:02d}") for i in range(1, teams + 1)),
                  team_share(teams, capacity, kind=kind, members=members))
    return from_mapping(event.to_mapping(), "kit hackathon init")  # the same checks as a file gets
