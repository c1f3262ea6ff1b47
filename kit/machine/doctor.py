"""Preflight checks: is this machine ready for the curriculum, and if not, how to fix it.

:func:`run_checks` returns one :class:`Check` per line of the report, :func:`format_report` the
text, :func:`summary` the JSON organisers read (``python -m kit doctor [--json]``, :mod:`kit.cli.doctor`).
A check with status ``fail`` *blocks* the curriculum; warnings explain what will be slower or unavailable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from kit import paths, versions
from kit.errors import KitError
from kit.machine import local_ray as raylocal
from kit.machine import processes, resources

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
_ICONS = {OK: "✅", INFO: "ℹ️ ", WARN: "⚠️ ", FAIL: "❌"}

#: CustomResourceDefinitions each operator installs, and one resource users create.
OPERATOR_CRDS: dict[str, tuple[str, str, str]] = {
    "KubeRay": ("rayclusters.ray.io", "ray.io", "rayclusters"),
    "Kubeflow Trainer": ("trainjobs.trainer.kubeflow.org", "trainer.kubeflow.org", "trainjobs"),
    "Kueue": ("localqueues.kueue.x-k8s.io", "kueue.x-k8s.io", "localqueues"),
    "KServe": ("inferenceservices.serving.kserve.io", "serving.kserve.io", "inferenceservices"),
}

#: Below this much memory the Ray stages will not fit (Ray + 2 workers ≈ 1 GiB).
MIN_MEMORY_BYTES = int(1.5 * resources.GiB)


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: str  # ok | info | warn | fail
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{_ICONS[self.status]} {self.name}: {self.detail}"
        return f"{line}\n      fix: {self.fix}" if self.fix else line


def check_python(version: tuple[int, int] | None = None) -> Check:
    version = version or sys.version_info[:2]
    text = f"Python {version[0]}.{version[1]}"
    if versions.PYTHON_MIN <= version <= versions.PYTHON_MAX:
        return Check("python", OK, text)
    return Check(
        "python",
        FAIL,
        f"{text} is not supported (3.10–3.12 are)",
        "install Python 3.11 and run `make lab PYTHON=python3.11` (the Makefile recreates .venv)",
    )


def check_packages(installed: Callable[[str], str | None] | None = None) -> list[Check]:
    """Each pinned distribution against the installed version: one line per mismatch, one summary line."""
    installed = installed or versions.installed_version
    problems = []
    for name, pinned in versions.PYTHON_PINS.items():
        found = installed(name)
        if found is None:
            problems.append(Check(f"package {name}", FAIL, f"missing (pinned {pinned})", "run `make lab`"))
        elif found.split("+")[0] != pinned:
            problems.append(
                Check(
                    f"package {name}",
                    FAIL,
                    f"{found} installed, the kit is pinned to {pinned}",
                    f"run `.venv/bin/pip install '{versions.requirement(name)}'` (or `make lab`)",
                )
            )
    matched = len(versions.PYTHON_PINS) - len(problems)
    summary = Check(
        "packages", OK if not problems else FAIL, f"{matched}/{len(versions.PYTHON_PINS)} match the pins"
    )
    return [summary, *problems]


def check_llm_extra(installed: Callable[[str], str | None] | None = None) -> Check:
    """Stage 12's optional LLM extra (vLLM on the CPU): absent is information, a wrong version a warning."""
    installed = installed or versions.installed_version
    found = {name: installed(name) for name in versions.LLM_PINS}
    fix = "run `make lab LLM=1` (or `make llm`); `make test` installs it"
    missing = [name for name, version in found.items() if version is None]
    if len(missing) == len(found):
        return Check("llm extra", INFO, "not installed (optional: only stage 12's engine cells need it)", fix)
    wrong = [f"{name} {found[name] or 'missing'} (pinned {pinned})" for name, pinned in versions.LLM_PINS.items()
             if (found[name] or "").split("+")[0] != pinned]
    if wrong:
        return Check("llm extra", WARN, "incomplete or not the pinned versions: " + ", ".join(wrong), fix)
    return Check("llm extra", OK, ", ".join(f"{name} {version}" for name, version in found.items()))


def check_resources(found: resources.Resources | None = None) -> list[Check]:
    found = found or resources.detect()
    cpu = Check(
        "cpus",
        OK if found.cpus >= 2 else WARN,
        f"{found.cpus:g} usable (from {found.cpu_source}; host has {found.host_cpus})",
        "" if found.cpus >= 2 else "stages run, but 2-worker examples share one CPU and run slower",
    )
    gib = found.memory_bytes / resources.GiB
    mem_ok = found.memory_bytes >= MIN_MEMORY_BYTES
    memory = Check(
        "memory",
        OK if mem_ok else FAIL,
        f"{gib:.1f} GiB usable (from {found.memory_source})",
        "" if mem_ok else "the Ray stages need ≥ 1.5 GiB: ask your hub admin for a larger server",
    )
    gpus = Check(
        "gpus",
        OK if found.gpus else INFO,
        ", ".join(found.gpu_names) if found.gpus else "none (every stage runs on CPU; GPU lessons are optional)",
    )
    return [cpu, memory, gpus]


def port_in_use(port: int) -> bool:
    """True when a server could not bind ``port`` on loopback now (something holds it)."""
    return not processes.port_is_free(port)


def check_ports(in_use: Callable[[int], bool] = port_in_use) -> list[Check]:
    checks = []
    for name, port in versions.PORTS.items():
        if in_use(port):
            checks.append(
                Check(
                    f"port {port} ({name})",
                    WARN,
                    "already in use",
                    f"find the owner with `lsof -i :{port}` (or `ss -ltnp`) and stop it; "
                    "a Ray left over from another notebook: `ray stop`",
                )
            )
        else:
            checks.append(Check(f"port {port} ({name})", OK, "free"))
    return checks


def check_ray_auth() -> Check:
    mode = os.environ.get(raylocal.MODE_ENV)
    path = paths.display(raylocal.token_path())
    if mode == "disabled":
        return Check(
            "ray token auth",
            WARN,
            "RAY_AUTH_MODE=disabled in your environment",
            "unset RAY_AUTH_MODE: the kit turns token auth on for every Ray it starts",
        )
    if raylocal.token_path().exists() and not raylocal.token_is_private():
        return Check(
            "ray token auth",
            WARN,
            f"token file {path} is readable by other users",
            f"chmod 600 {path}  (kit.machine.local_ray.start() also fixes it)",
        )
    where = f"token file {path}" if raylocal.token_path().exists() else f"token will be created at {path} (mode 600)"
    return Check("ray token auth", OK, f"on for every kit-started Ray; {where}")


def check_crds() -> Check:
    """The upstream CRD files stage 01 and `python -m kit validate` read: found, each matching the lock."""
    from kit.k8s.validation import crd_fetch, crds

    name = "CRD schemas"
    try:
        directory = crds.find_crd_dir()
    except crds.CRDDirNotFoundError as error:
        return Check(name, FAIL, "not found, so stage 01 and `python -m kit validate` cannot check custom resources",
                     error.fix)
    problems = crd_fetch.lock_problems(directory)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; {len(problems) - 3} more" if len(problems) > 3 else "")
        where = paths.display(directory)
        return Check(name, FAIL, f"{len(problems)} file(s) in {where} missing or not the pinned ones: {shown}",
                     crd_fetch.lock_error(directory, problems).fix)
    return Check(name, OK, f"{len(versions.CRD_SHA256)} files in {paths.display(directory)} "
                           f"({crds.origin_of(directory)}), each matching the lock")


def kind_node_kubernetes() -> tuple[int, int]:
    """(major, minor) of the Kubernetes in the pinned kind node image (versions.IMAGES["kind-node"])."""
    found = re.search(r":v(\d+)\.(\d+)", versions.IMAGES["kind-node"])
    assert found, versions.IMAGES["kind-node"]
    return int(found[1]), int(found[2])


def check_kubectl(which: Callable[[str], str | None] = shutil.which,
                  run: Callable[..., Any] = subprocess.run) -> Check:
    """kubectl present, and within one minor version of the kind cluster's Kubernetes (kubectl's skew policy)."""
    kubectl = which("kubectl")
    if not kubectl:
        return Check(
            "kubectl",
            INFO,
            "not installed (only needed for PROFILE='kind' or 'cluster')",
            "see https://kubernetes.io/docs/tasks/tools/ when you move to a cluster",
        )
    try:
        out = run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=10)
        version = json.loads(out.stdout)["clientVersion"]
        client, major = version["gitVersion"], int(version["major"])
        minor = int(re.findall(r"\d+", version["minor"])[0])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError, IndexError):
        return Check("kubectl", OK, f"{kubectl} (unknown version)")
    node_major, node_minor = kind_node_kubernetes()
    if major == node_major and abs(minor - node_minor) > 1:
        wanted = f"v{node_major}.{node_minor - 1}-v{node_major}.{node_minor + 1}"
        return Check("kubectl", WARN,
                     f"{kubectl} ({client}) is more than one minor version from the kind cluster's Kubernetes "
                     f"v{node_major}.{node_minor}; kubectl supports one minor version of skew",
                     f"install kubectl {wanted} for make test-cluster (https://kubernetes.io/docs/tasks/tools/); "
                     "for another cluster, match its server version")
    return Check("kubectl", OK, f"{kubectl} ({client})")


HELM_INSTALL = "https://helm.sh/docs/intro/install/"


def check_helm(which: Callable[[str], str | None] = shutil.which,
               run: Callable[..., Any] = subprocess.run) -> Check:
    """helm, new enough for OCI charts: clusters/install-operators.sh installs KubeRay and KServe with it."""
    users = " and ".join(versions.OPERATOR_CHARTS)  # the operators installed from Helm charts
    helm = which("helm")
    if not helm:
        return Check("helm", INFO, f"not installed (clusters/install-operators.sh needs it for {users})",
                     f"install Helm {versions.HELM_MIN} or newer ({HELM_INSTALL}) before installing operators")
    try:
        out = run([helm, "version", "--short"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    found = re.search(r"v\d+\.\d+\.\d+", out or "")
    if not found:
        return Check("helm", OK, f"{helm} (unknown version)")
    if _version_tuple(found.group()) < _version_tuple(versions.HELM_MIN):
        return Check("helm", WARN, f"{helm} {found.group()} cannot install OCI charts (KServe's)",
                     f"install Helm {versions.HELM_MIN} or newer: {HELM_INSTALL}")
    return Check("helm", OK, f"{helm} {found.group()}")


def check_prometheus(which: Callable[[str], str | None] = shutil.which) -> Check:
    """prometheus and promtool (one package): stage 10's live Prometheus and `promtool test rules` in make test."""
    from kit.observe.prometheus import INSTALL_FIX

    missing = [tool for tool in ("prometheus", "promtool") if not which(tool)]
    if missing:
        return Check("prometheus", WARN, f"{' and '.join(missing)} not found: stage 10 falls back to parsing the "
                     "exporters' text, and `make test` cannot test the alert rules", INSTALL_FIX)
    return Check("prometheus", OK, f"{which('prometheus')} and promtool")


#: Where to get each tool the kind lane needs.
KIND_LANE_TOOLS: dict[str, str] = {
    "docker": "https://docs.docker.com/get-docker/ (or Podman with KIND_EXPERIMENTAL_PROVIDER=podman)",
    "kind": f"https://kind.sigs.k8s.io/docs/user/quick-start/#installation (version {versions.KIND} or newer)",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/",
}


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def check_kind_lane(which: Callable[[str], str | None] = shutil.which,
                    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> Check:
    """What `make test-cluster` (a throw-away kind cluster) needs: Docker running, kind new enough, kubectl."""
    name = "kind lane (make test-cluster)"
    missing = [tool for tool in KIND_LANE_TOOLS if not which(tool)]
    if missing:
        return Check(name, INFO, f"needs {', '.join(missing)} (optional: the local profile needs none of them)",
                     "; ".join(f"{tool}: {KIND_LANE_TOOLS[tool]}" for tool in missing))

    def output(*command: str) -> str | None:
        try:
            result = run(list(command), capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    if output("docker", "info", "--format", "{{.ServerVersion}}") is None:
        return Check(name, WARN, "docker is installed but its daemon does not answer",
                     "start Docker Desktop, or `sudo systemctl start docker`; check `docker info` works as you")
    kind_version = output("kind", "version") or ""
    found = re.search(r"v\d+\.\d+\.\d+", kind_version)
    if not found or _version_tuple(found.group()) < _version_tuple(versions.KIND):
        return Check(name, WARN, f"kind {found.group() if found else 'of unknown version'} is older than "
                                 f"{versions.KIND}, which the pinned node image needs", KIND_LANE_TOOLS["kind"])
    return Check(name, OK, f"docker running, kind {found.group()}, kubectl found: `make test-cluster` can run")


def check_cluster(timeout: float = 5.0) -> list[Check]:
    """Current context, reachability, operator CRDs and RBAC — only when a cluster answers."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            context = "in-cluster service account"
        else:
            from kit.k8s.live.context import load_client_config

            context = load_client_config()  # $KUBECONFIG (a path list) or ~/.kube/config, as kubectl reads it
    except (KitError, ConfigException, OSError, TypeError, KeyError) as error:
        return [
            Check(
                "cluster",
                INFO,
                f"no kubeconfig ({paths.mask(str(error).splitlines()[0])[:80]}): the local profile will be used",
                "",
            )
        ]
    try:
        version = client.VersionApi().get_code(_request_timeout=timeout).git_version
    except Exception as error:  # any transport error means "not reachable"
        return [
            Check(
                "cluster",
                INFO,
                f"context {context!r} is not reachable ({type(error).__name__}): "
                "the local profile will be used",
                "start your cluster (e.g. `kind create cluster`) or switch context to use PROFILE='cluster'",
            )
        ]
    checks = [Check("cluster", OK, f"context {context!r}, Kubernetes {version}")]
    ext = client.ApiextensionsV1Api()
    auth = client.AuthorizationV1Api()
    for operator, (crd, group, plural) in OPERATOR_CRDS.items():
        try:
            ext.read_custom_resource_definition(crd, _request_timeout=timeout)
        except Exception:
            checks.append(
                Check(
                    f"operator {operator}",
                    WARN,
                    f"CRD {crd} is not installed",
                    "run `clusters/install-operators.sh` (see README, 'Run on a cluster')",
                )
            )
            continue
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(verb="create", group=group, resource=plural)
            )
        )
        allowed = auth.create_self_subject_access_review(review, _request_timeout=timeout).status.allowed
        checks.append(
            Check(
                f"operator {operator}",
                OK if allowed else WARN,
                f"CRD installed; you {'may' if allowed else 'may NOT'} create {plural}",
                "" if allowed else f"ask an admin for a Role allowing create on {plural}.{group}",
            )
        )
    return checks


def run_checks() -> list[Check]:
    """Every check, in report order."""
    return [
        check_python(),
        *check_packages(),
        check_llm_extra(),
        *check_resources(),
        *check_ports(),
        check_ray_auth(),
        check_crds(),
        check_kubectl(),
        check_helm(),
        check_prometheus(),
        check_kind_lane(),
        *check_cluster(),
    ]


def blocking(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


def format_report(checks: list[Check]) -> str:
    """The report: one line per check (with its fix), then the verdict."""
    problems = blocking(checks)
    if problems:
        verdict = f"{len(problems)} problem(s) block the curriculum: fix them, then re-run the doctor."
    else:
        verdict = f"Ready: nothing blocks the curriculum ({sum(c.status == WARN for c in checks)} warning(s))."
    return "\n".join([*map(str, checks), "", verdict])


def summary(checks: list[Check]) -> dict[str, Any]:
    """The report as data (``python -m kit doctor --json``)."""
    return {"ready": not blocking(checks), "resources": resources.detect().as_dict(),
            "checks": [asdict(c) for c in checks]}


def report(checks: list[Check] | None = None) -> list[Check]:
    """Show the report in a notebook (stage 00) and return the checks: a display helper, so it prints."""
    checks = checks if checks is not None else run_checks()
    print(format_report(checks))
    return checks
