"""Zero to JupyterHub values (chart :data:`CHART_VERSION`) for an :class:`~kit.hackathon.event.Event`.

:func:`values` renders them: the kit's image as the single-user image, a CPU profile (and a GPU profile when the
event gives teams GPUs), a single-user pod that passes Pod Security ``restricted``, guarantees from the event's
``jupyterhub`` settings and limits at the team's share, idle culling, a volume per user, ``KIT_PROFILE=cluster``
in the environment, and each user's server in their team's namespace (KubeSpawner's per-user namespaces, with a
short ``pre_spawn_hook`` that reads the user -> namespace map from the values themselves).

:func:`check` validates them the way Helm does (merged over the chart's ``values.yaml``, then checked against
its ``values.schema.yaml``) and runs the kit's policy on the pods the values imply (:func:`implied_pods`).
The chart files are read from ``../shared/charts/jupyterhub-4.4.0`` (or ``$KIT_CHART_DIR``), not copied into
the kit; when they are missing, :class:`ChartNotFoundError` says how to get them (``helm pull``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from kit.config.profile import ENV_VAR as PROFILE_ENV
from kit.errors import KitError
from kit.hackathon import teams
from kit.hackathon.event import Event
from kit.k8s.builders import core, serving
from kit.k8s.requests import Requests
from kit.paths import REPO_ROOT

CHART_VERSION = "4.4.0"
CHART_DIR_ENV = "KIT_CHART_DIR"
SHARED_CHART_DIR = REPO_ROOT.parent / "shared" / "charts" / f"jupyterhub-{CHART_VERSION}"
UID, GID = 1000, 100  # the kit image's user (Dockerfile: USER 1000, files owned by 1000:100)
HOME = "/home/ray/work"  # the user's volume, inside the image's home (the Ray image's user is `ray`)
HUB_ACCOUNT = "hub"  # the chart's hub ServiceAccount (hub.serviceAccount.name unset: the release's `hub`)
SPAWNER_ROLE = "jupyterhub-spawner"

#: The hub's Python: each user's server goes to their team's namespace, read from the rendered values.
TEAM_NAMESPACES_SNIPPET = '''\
from z2jh import get_config

team_of = get_config("custom.kit.teamNamespaces", {})


def kit_team_namespace(spawner):
    namespace = team_of.get(spawner.user.name)
    if namespace is None:
        raise ValueError(f"{spawner.user.name} is in no team of this event: ask the organisers")
    spawner.namespace = namespace


c.KubeSpawner.pre_spawn_hook = kit_team_namespace
'''


class ChartNotFoundError(KitError, FileNotFoundError):
    """The chart's values.yaml or values.schema.yaml is not where the kit looks."""


class _ValuesDumper(yaml.SafeDumper):
    """YAML an organiser can read: no anchors, multi-line strings (the hub's Python) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_ValuesDumper.add_representer(str, _string)


def _memory(amount: Requests) -> str:
    """Memory as KubeSpawner reads it (its ``M`` is MiB)."""
    return f"{amount.memory_bytes // 2**20}M"


def _image(reference: str) -> dict[str, str]:
    name, _, tag = reference.rpartition(":")
    return {"name": name, "tag": tag} if name and "/" not in tag else {"name": reference, "tag": "latest"}


def values(event: Event) -> dict[str, Any]:
    """The chart values for ``event``."""
    hub, share = event.jupyterhub, event.resources.requests
    guarantee = Requests.parse(hub.cpu_guarantee, hub.memory_guarantee)
    models_volume, models_mount = serving.models_volume()
    cpu_profile: dict[str, Any] = {"display_name": "CPU", "slug": "cpu", "default": True,
                                   "description": f"up to {share.cpu} cpu and {share.memory} memory",
                                   "kubespawner_override": {"image": hub.image}}
    profiles = [cpu_profile]
    if share.gpus:
        scheduling = core.gpu_scheduling(1)
        profiles.append({"display_name": "GPU", "slug": "gpu", "description": "one GPU, from your team's quota",
                         "kubespawner_override": {"image": hub.gpu_image,
                                                  "extra_resource_limits": {core.GPU_RESOURCE: "1"},
                                                  "node_selector": scheduling["nodeSelector"],
                                                  "tolerations": scheduling["tolerations"]}})
    seccomp = {"type": "RuntimeDefault"}
    return {
        "hub": {
            "networkPolicy": {"interNamespaceAccessLabels": "accept"},  # servers in team namespaces call the hub
            "config": {"KubeSpawner": {
                "enable_user_namespaces": True,
                "container_security_context": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                               "capabilities": {"drop": ["ALL"]}, "seccompProfile": seccomp},
                "pod_security_context": {"runAsNonRoot": True, "runAsUser": UID, "fsGroup": GID,
                                         "seccompProfile": seccomp},
            }},
            "extraConfig": {"kit-team-namespaces": TEAM_NAMESPACES_SNIPPET},
        },
        "custom": {"kit": {"event": event.name,
                           "teamNamespaces": {m: t.name for t in event.teams for m in t.members}}},
        "singleuser": {
            "image": _image(hub.image),
            "uid": UID,
            "fsGid": GID,
            "allowPrivilegeEscalation": False,
            "cloudMetadata": {"blockWithIptables": False, "ip": "169.254.169.254"},  # its init container is root
            "serviceAccountName": teams.TEAM_ACCOUNT,
            "cpu": {"guarantee": guarantee.cpu_millis / 1000, "limit": share.cpu_millis / 1000},
            "memory": {"guarantee": _memory(guarantee), "limit": _memory(share)},
            # plus the team's models volume (kit.hackathon.teams.models_claim), where stage 11 publishes
            "storage": {"type": "dynamic", "capacity": hub.storage, "homeMountPath": HOME,
                        "extraVolumes": [models_volume], "extraVolumeMounts": [models_mount]},
            "extraEnv": {PROFILE_ENV: "cluster"},  # the notebooks' default PROFILE
            "extraLabels": {"hub.jupyter.org/network-access-hub": "true", **teams.notebook_labels()},
            "profileList": profiles,
        },
        "cull": {"enabled": True, "timeout": hub.cull_idle_seconds,
                 "every": max(60, min(600, hub.cull_idle_seconds // 2))},
    }


def hub_access(event: Event) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """RBAC the hub needs to spawn into team namespaces: (cluster-wide documents, per-team documents).

    KubeSpawner with per-user namespaces watches pods and events in every namespace and asks to create the
    namespace (it exists: a 409 is fine, but the request must be allowed); in each team's namespace it creates
    and deletes the server's pod and volume claim. These are the hub's grants, not a team's."""
    sa = {"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": event.jupyterhub.namespace}
    api = "rbac.authorization.k8s.io/v1"
    name = f"{event.name}-{SPAWNER_ROLE}"
    cluster = [
        {"apiVersion": api, "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}]},
        {"apiVersion": api, "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}, "subjects": [sa]},
    ]
    verbs = ["get", "list", "watch", "create", "delete"]
    per_team = {t.name: [
        {"apiVersion": api, "kind": "Role", "metadata": {"name": SPAWNER_ROLE, "namespace": t.name},
         "rules": [{"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims"], "verbs": verbs}]},
        {"apiVersion": api, "kind": "RoleBinding", "metadata": {"name": SPAWNER_ROLE, "namespace": t.name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SPAWNER_ROLE},
         "subjects": [sa]}] for t in event.teams}
    return cluster, per_team


# --------------------------------------------------------------------------- checking, as Helm does


def chart_dir() -> Path:
    """The chart's directory: ``$KIT_CHART_DIR`` when set, else ``../shared/charts/jupyterhub-4.4.0``."""
    named = os.environ.get(CHART_DIR_ENV)
    directory = Path(named).expanduser() if named else SHARED_CHART_DIR
    missing = [name for name in ("values.yaml", "values.schema.yaml") if not (directory / name).is_file()]
    if missing:
        raise ChartNotFoundError(
            f"no {' or '.join(missing)} of the jupyterhub chart {CHART_VERSION} in {directory}",
            fix=f"`helm pull jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version {CHART_VERSION} "
                f"--untar --untardir /tmp/z2jh` and set {CHART_DIR_ENV}=/tmp/z2jh/jupyterhub (or give the kit "
                "its ../shared/charts)")
    return directory


def merge(base: Any, override: Any) -> Any:
    """Helm's merge of a values file over the chart's: mappings merge key by key, anything else is replaced;
    ``null`` removes a key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(merged.get(key), value) if key in merged else copy.deepcopy(value)
    return merged


def schema_problems(user_values: dict[str, Any], directory: Path | None = None) -> list[str]:
    """What the chart's schema rejects in ``user_values`` merged over its defaults (empty: valid)."""
    import jsonschema

    directory = directory or chart_dir()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the schema is large: libyaml reads it 8x faster
    defaults = yaml.load((directory / "values.yaml").read_text(), Loader=loader)
    schema = yaml.load((directory / "values.schema.yaml").read_text(), Loader=loader)
    validator = jsonschema.Draft7Validator(schema)
    merged = merge(defaults, user_values)
    return sorted(f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
                  for error in validator.iter_errors(merged))


def implied_pods(user_values: dict[str, Any], namespace: str = "team") -> list[dict[str, Any]]:
    """The single-user pods (one per profile) KubeSpawner would make from ``user_values`` (without the chart's
    defaults: what the values set is what the pod gets), enough for the kit's Pod Security policy."""
    single, spawner = user_values.get("singleuser", {}), user_values.get("hub", {}).get("config", {}).get(
        "KubeSpawner", {})
    pod_context = {**({"fsGroup": single["fsGid"]} if single.get("fsGid") is not None else {}),
                   **single.get("extraPodConfig", {}).get("securityContext", {}),
                   **spawner.get("pod_security_context", {})}
    container_context = {"runAsUser": single.get("uid"),
                         "allowPrivilegeEscalation": single.get("allowPrivilegeEscalation"),
                         **spawner.get("container_security_context", {})}
    init = []
    if single.get("cloudMetadata", {}).get("blockWithIptables", True):  # the chart's default: a root init container
        init.append({"name": "block-cloud-metadata", "image": "quay.io/jupyterhub/k8s-network-tools",
                     "securityContext": {"runAsUser": 0, "privileged": False,
                                         "capabilities": {"add": ["NET_ADMIN"]}}})
    pods = []
    for profile in single.get("profileList") or [{"slug": "default", "kubespawner_override": {}}]:
        override = profile.get("kubespawner_override", {})
        image = _image(override["image"]) if "image" in override else single.get("image", {})
        cpu, memory = single.get("cpu", {}), single.get("memory", {})
        limits = {"cpu": str(cpu.get("limit")), "memory": str(memory.get("limit")).replace("M", "Mi"),
                  **override.get("extra_resource_limits", {})}
        requests = {"cpu": str(cpu.get("guarantee")), "memory": str(memory.get("guarantee")).replace("M", "Mi")}
        container = {"name": "notebook", "image": f"{image.get('name')}:{image.get('tag')}",
                     "securityContext": {k: v for k, v in container_context.items() if v is not None},
                     "resources": {"requests": requests, "limits": limits}}
        spec: dict[str, Any] = {"securityContext": pod_context, "containers": [container],
                                "serviceAccountName": single.get("serviceAccountName") or "default"}
        if init:
            spec["initContainers"] = init
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"jupyter-{profile.get('slug', 'default')}", "namespace": namespace,
                                  "labels": dict(single.get("extraLabels", {}))}, "spec": spec})
    return pods


def check(user_values: dict[str, Any], directory: Path | None = None) -> list[str]:
    """Every problem of ``user_values``: the chart's schema (merged, as Helm does), then the pods they imply
    through the kit's validator (Pod schema, admission rules, policy). Empty: Helm would install them and the
    team namespaces would admit the servers."""
    from kit.k8s.validation.validate import validate_documents

    found = schema_problems(user_values, directory)
    found += [str(problem) for problem in validate_documents(implied_pods(user_values), "jupyterhub single-user pod")]
    return found


def write(event: Event, path: Path) -> Path:
    """Write the values file (after :func:`check`: a problem is a :class:`KitError`)."""
    rendered = values(event)
    problems = check(rendered)
    if problems:
        raise KitError("the JupyterHub values do not validate:\n  " + "\n  ".join(problems),
                       fix="this is a bug in kit/hackathon/jupyterhub.py: report it with the event file")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# Zero to JupyterHub {CHART_VERSION} values for event {event.name!r}, written by "
              "`python -m kit hackathon plan`:\n# helm upgrade --install jupyterhub jupyterhub "
              f"--repo https://hub.jupyter.org/helm-chart/ --version {CHART_VERSION} "
              f"--namespace {event.jupyterhub.namespace} --create-namespace --values {path.name}\n")
    path.write_text(header + yaml.dump(rendered, Dumper=_ValuesDumper, sort_keys=False))
    return path
