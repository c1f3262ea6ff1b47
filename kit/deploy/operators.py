"""The operators a cluster needs, and ``clusters/install-operators.sh``, generated from the version lock.

Each :class:`Operator` is an ordered sequence of phases (:data:`PHASES`): install the CRDs, wait until
they are Established, install the controllers, wait until they rolled out and their admission webhooks
answer, then create the cluster-wide resources that those webhooks validate. Every artifact is a
release asset, a Helm chart or a kustomization at the pinned tag, never a branch, and every image is
pinned: by the release itself, or by ``--set`` values passed explicitly where a chart's default would
float (:attr:`Operator.image_values`). The install script is rendered from this table and
:data:`kit.versions.OPERATORS`, so the script and the kit cannot disagree (``python -m kit manifests
check`` fails when they do).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

from kit import versions

APPLY = "kubectl apply --server-side --force-conflicts"
#: The phases of an install, in order. ``crds`` may also install the controllers when one release
#: manifest carries both and no custom resource (then there is no separate ``controllers`` phase).
PHASES = ("requires", "crds", "established", "controllers", "ready", "resources")
#: The name of the object each admission probe dry-runs (``kubectl create --dry-run=server``).
PROBE_NAME = "kit-webhook-probe"
#: Image tags that move: never acceptable in anything the script installs.
FLOATING_TAGS = ("latest", "nightly", "main", "master", "dev")
#: KServe's vLLM ClusterServingRuntime defaults to ``vllm/vllm-openai:latest``
#: (kserve v0.20.0 charts/kserve-runtime-configs/values.yaml, servingruntime.vllmserver.tag); pin it to
#: the vLLM KServe v0.20.0 itself is built against (python/kserve/pyproject.toml: ``vllm==0.24.0``).
VLLM_IMAGE_TAG = "v0.24.0"


@dataclass(frozen=True)
class Probe:
    """An object whose server-side dry-run create goes through the operator's admission webhooks."""

    crd: str  # the CRD of its kind: it must be Established before the probe can answer
    manifest: dict[str, Any]

    def json(self) -> str:
        return json.dumps(self.manifest, separators=(",", ":"))


@dataclass(frozen=True)
class Operator:
    """One operator: what to install in which phase, and how to tell each phase is done."""

    key: str  # in kit.versions.OPERATORS
    title: str
    artifact: str  # which artifact, and why (script comment, README)
    crd_install: tuple[str, ...]  # commands; ${VERSION_VAR} is expanded by bash
    crds: tuple[str, ...]  # waited Established
    deployments: tuple[str, ...]  # in versions.OPERATOR_NAMESPACES[key], waited rolled out
    controllers: tuple[str, ...] = ()  # empty: crd_install's manifest carries the controllers too
    probe: Probe | None = None  # admission webhooks answer once its dry-run create does
    resources: tuple[str, ...] = ()  # cluster resources, once the webhooks answer
    requires: tuple[str, ...] = ()  # operators that must be ready first (their checks run again)
    #: CRDs of the custom resources the controllers and resources phases create (the test checks each
    #: is Established earlier in the script).
    creates: tuple[str, ...] = ()
    #: Helm release -> the --set values that pin its images (the chart defaults are not trusted).
    image_values: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return versions.OPERATOR_NAMESPACES[self.key]

    @property
    def version_var(self) -> str:
        return self.key.upper().replace("-", "_") + "_VERSION"

    @property
    def function(self) -> str:
        return "install_" + self.key.replace("-", "_")

    @property
    def ready_function(self) -> str:
        return "ready_" + self.key.replace("-", "_")

    def commands(self) -> tuple[str, ...]:
        """Every command that changes the cluster."""
        return (*self.crd_install, *self.controllers, *self.resources)

    @property
    def tools(self) -> tuple[str, ...]:
        """Tools besides kubectl the changing commands run: helm, and git for a remote kustomization."""
        commands = self.commands()
        needs = {"helm": any(c.startswith("helm ") for c in commands),
                 "git": any(" -k " in c for c in commands)}
        return tuple(tool for tool, needed in needs.items() if needed)

    def ready_checks(self) -> list[str]:
        """The checks of the ``established`` and ``ready`` phases (also what ``--check`` runs)."""
        checks = [f"wait_crds {' '.join(self.crds)}",
                  f"wait_rollout {self.namespace} {' '.join(self.deployments)}"]
        if self.probe:
            checks.append(f"wait_admission '{self.probe.json()}'")
        return checks

    def phases(self) -> list[tuple[str, list[str]]]:
        """(phase, bash lines) in install order; empty phases are left out."""
        established, *ready = self.ready_checks()
        crds = "crds" if self.controllers else "crds+controllers"
        phases = [("requires", [by_key()[name].ready_function for name in self.requires]),
                  (crds, [f"change {c}" for c in self.crd_install]),
                  ("established", [established]),
                  ("controllers", [f"change {c}" for c in self.controllers]),
                  ("ready", ready),
                  ("resources", [f"change {c}" for c in self.resources])]
        return [(name, lines) for name, lines in phases if lines]


def _crds(*kinds: str) -> tuple[str, ...]:
    """The CRD names (``plural.group``) of ``kinds``, from :data:`kit.versions.API_RESOURCES`."""
    return tuple(versions.API_RESOURCES[kind].crd_name for kind in kinds)


def _helm(release: str, chart: str, version: str, namespace: str, *flags: str,
          values: dict[str, str] | None = None) -> str:
    """``helm upgrade --install`` (idempotent) of ``chart`` at exactly ``version`` into ``namespace``."""
    sets = [f'--set {key}="{value}"' for key, value in (values or {}).items()]
    return " ".join(["helm upgrade --install", release, chart, f'--version "{version}"',
                     f"--namespace {namespace} --create-namespace", *flags, *sets])


def _probe(crd: str, api_version: str, kind: str, spec: dict[str, Any] | None = None,
           namespace: str | None = None) -> Probe:
    metadata: dict[str, Any] = {"name": PROBE_NAME, **({"namespace": namespace} if namespace else {})}
    return Probe(crd, {"apiVersion": api_version, "kind": kind, "metadata": metadata,
                       **({"spec": spec} if spec is not None else {})})


_CERT_MANAGER_CRDS = ("certificates.cert-manager.io", "issuers.cert-manager.io", "clusterissuers.cert-manager.io")
_KSERVE_NAMESPACE = versions.OPERATOR_NAMESPACES["kserve"]
_KSERVE_CHARTS = versions.OPERATOR_CHARTS["kserve"]
_KSERVE_STORAGE_CRD = f"clusterstoragecontainers.{versions.KSERVE_GROUP}"
_KUBERAY_VALUES = {"image.tag": "${KUBERAY_VERSION}"}
# Every KServe image in these charts is `<image>:{{ .tag | default .Values.kserve.version }}` (kserve
# v0.20.0 charts/kserve-resources/files/kserve/deployment-patch.yaml, files/common/configmap-patch.yaml,
# files/common/storagecontainer-patch.yaml; charts/kserve-runtime-configs/files/runtimes/...): pass the
# version explicitly, and pin the one runtime whose default tag is `latest`.
_KSERVE_VALUES = {"kserve.version": "${KSERVE_VERSION}"}
_RUNTIME_VALUES = {**_KSERVE_VALUES, "kserve.servingruntime.vllmserver.tag": VLLM_IMAGE_TAG}
# Remote kustomizations are fetched with git at the release tag; `&timeout=90s` as KubeRay's chart README
# (v1.7.0) writes it, since kustomize's default git timeout is short for these repositories.
_TRAINER = "github.com/kubeflow/trainer.git/manifests/overlays"

OPERATORS: tuple[Operator, ...] = (
    Operator(
        "cert-manager", "cert-manager (certificates for the KServe webhooks)",
        "The release manifest cert-manager.yaml (cert-manager's documented kubectl install): CRDs and "
        "controllers with images pinned to the release, and no custom resource. Its webhook must answer "
        "before KServe's chart creates an Issuer and a Certificate, so readiness is a server-side dry-run "
        "of an Issuer (what `cmctl check api` does), not only the rollout.",
        (f'{APPLY} -f "https://github.com/cert-manager/cert-manager/releases/download/'
         '${CERT_MANAGER_VERSION}/cert-manager.yaml"',),
        _CERT_MANAGER_CRDS,
        ("cert-manager", "cert-manager-webhook", "cert-manager-cainjector"),
        probe=_probe("issuers.cert-manager.io", "cert-manager.io/v1", "Issuer", {"selfSigned": {}},
                     versions.OPERATOR_NAMESPACES["cert-manager"]),
    ),
    Operator(
        "kuberay", "KubeRay operator (RayCluster, RayJob, RayService)",
        "KubeRay's Helm chart kuberay-operator (the install KubeRay documents), into its own namespace: "
        "the kustomization ray-operator/config/default puts the operator in `default`. The CRDs go first "
        "from config/crd at the tag and the chart with --skip-crds, as helm-chart/kuberay-operator/README.md "
        "(v1.7.0) shows, because Helm never updates CRDs it installed; image.tag is passed explicitly.",
        (f'{APPLY} -k "github.com/ray-project/kuberay/ray-operator/config/crd?ref=${{KUBERAY_VERSION}}&timeout=90s"',),
        _crds("RayCluster", "RayJob", "RayService"),
        ("kuberay-operator",),
        controllers=(_helm("kuberay-operator", "kuberay-operator", "${KUBERAY_VERSION#v}",
                           versions.OPERATOR_NAMESPACES["kuberay"],
                           f"--repo {versions.OPERATOR_CHARTS['kuberay']}", "--skip-crds",
                           values=_KUBERAY_VALUES),),
        image_values={"kuberay-operator": _KUBERAY_VALUES},
    ),
    Operator(
        "kueue", "Kueue (quotas, queueing, gang admission)",
        "The release manifest manifests.yaml (Kueue's documented install): CRDs and controller, its image "
        "set to the release tag by `make artifacts` (Makefile prepare-manifests), no custom resource. The "
        "source kustomization would install the staging image tagged main.",
        (f'{APPLY} -f "https://github.com/kubernetes-sigs/kueue/releases/download/${{KUEUE_VERSION}}/manifests.yaml"',),
        _crds("ResourceFlavor", "ClusterQueue", "LocalQueue", "Workload"),
        ("kueue-controller-manager",),
        probe=_probe(_crds("ResourceFlavor")[0], versions.KUEUE_API_VERSION, "ResourceFlavor"),
    ),
    Operator(
        "kubeflow-trainer", "Kubeflow Trainer v2 (TrainJob, runtimes) with JobSet",
        "The kustomize overlays at the release tag (Trainer's documented kustomize install; the release "
        "has no manifest asset): the release workflow pins every image of overlays/manager and "
        "overlays/runtimes to the tag, and JobSet comes from its own release asset. The manager overlay "
        "holds the CRDs and controllers and no custom resource; the ClusterTrainingRuntimes go in once "
        "the Trainer webhook that validates them answers.",
        (f'{APPLY} -k "{_TRAINER}/manager?ref=${{KUBEFLOW_TRAINER_VERSION}}&timeout=90s"',),
        _crds("TrainJob", "TrainingRuntime", "ClusterTrainingRuntime", "JobSet"),
        ("kubeflow-trainer-controller-manager", "jobset-controller-manager"),
        probe=_probe(_crds("ClusterTrainingRuntime")[0], versions.TRAINER_API_VERSION, "ClusterTrainingRuntime",
                     {"template": {"spec": {"replicatedJobs": [{"name": "node", "template": {"spec": {
                         "template": {"spec": {"containers": [
                             {"name": "node", "image": versions.IMAGES["python"]}]}}}}}]}}}),
        resources=(f'{APPLY} -k "{_TRAINER}/runtimes?ref=${{KUBEFLOW_TRAINER_VERSION}}&timeout=90s"',),
        creates=_crds("ClusterTrainingRuntime"),
    ),
    Operator(
        "kserve", "KServe in Standard mode (plain Deployments, no Knative or Istio)",
        "KServe's Helm charts, in the order of its own installer (hack/setup/infra/manage.kserve-helm.sh, "
        "v0.20.0): kserve-crd, then kserve-resources in Standard mode (the controller, its webhooks, the "
        "default ClusterStorageContainer), then kserve-runtime-configs (the ClusterServingRuntimes) once "
        "the webhook answers. The release manifest kserve.yaml would add the LLM and local-model "
        "controllers and default to Knative mode, and the source kustomization installs images tagged latest.",
        (_helm("kserve-crd", f"{_KSERVE_CHARTS}/kserve-crd", "${KSERVE_VERSION}", _KSERVE_NAMESPACE),),
        (*_crds("InferenceService", "ServingRuntime", "ClusterServingRuntime"), _KSERVE_STORAGE_CRD),
        ("kserve-controller-manager",),
        controllers=(_helm("kserve-resources", f"{_KSERVE_CHARTS}/kserve-resources", "${KSERVE_VERSION}",
                           _KSERVE_NAMESPACE, values={**_KSERVE_VALUES,
                                                      "kserve.controller.deploymentMode": "Standard"}),),
        probe=_probe(_crds("ClusterServingRuntime")[0], "serving.kserve.io/v1alpha1", "ClusterServingRuntime",
                     {"containers": [{"name": "kserve-container",
                                      "image": f"kserve/sklearnserver:{versions.OPERATORS['kserve']}"}],
                      "supportedModelFormats": [{"name": "sklearn"}]}),
        resources=(_helm("kserve-runtime-configs", f"{_KSERVE_CHARTS}/kserve-runtime-configs", "${KSERVE_VERSION}",
                         _KSERVE_NAMESPACE, values={**_RUNTIME_VALUES, "kserve.servingruntime.enabled": "true"}),),
        requires=("cert-manager",),
        creates=(_KSERVE_STORAGE_CRD, "issuers.cert-manager.io", "certificates.cert-manager.io",
                 *_crds("ClusterServingRuntime")),
        image_values={"kserve-resources": _KSERVE_VALUES, "kserve-runtime-configs": _RUNTIME_VALUES},
    ),
)


def by_key() -> dict[str, Operator]:
    return {operator.key: operator for operator in OPERATORS}


_PRELUDE = r'''#!/usr/bin/env bash
# Install the operators the Cloud-Native AI Kit uses, at the versions pinned in kit/versions.py.
#
# Generated by `python -m kit manifests write` (kit/deploy/operators.py). Do not edit: change the kit
# and regenerate; `python -m kit manifests check` fails when this file is out of date.
#
#   clusters/install-operators.sh              install (or update) everything, then check readiness
#   clusters/install-operators.sh --dry-run    print every phase and command, run nothing (no cluster needed)
#   clusters/install-operators.sh --check      only check that CRDs, controllers and webhooks are ready
#   clusters/install-operators.sh --only kueue,kuberay
#
# Each operator goes in phases: CRDs, wait Established, controllers, wait rolled out and admission
# webhooks answering, cluster resources. Re-running is safe (server-side apply, helm upgrade --install).
# Needs kubectl, helm @HELM_MIN@+ (for @HELM@) and git (kustomize fetches @GIT@ at their tags).
set -euo pipefail

@VERSIONS@
TIMEOUT="${KIT_INSTALL_TIMEOUT:-300s}"
POLL="${KIT_INSTALL_POLL:-5}"  # seconds between admission probes
DRY_RUN=0
CHECK_ONLY=0
ONLY="@ALL@"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  echo "operators: @ALL@"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --check) CHECK_ONLY=1 ;;
    --only) ONLY="${2:?--only needs a comma-separated list}"; shift ;;
    --timeout) TIMEOUT="${2:?--timeout needs a duration such as 300s}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ ! "$TIMEOUT" =~ ^[0-9]+[smh]?$ ]]; then
  echo "--timeout $TIMEOUT: use seconds, minutes or hours, e.g. 300s or 5m" >&2
  exit 2
fi
for name in ${ONLY//,/ }; do
  case ",@ALL@," in
    *",$name,"*) ;;
    *) echo "unknown operator '$name'; known: @ALL@" >&2; exit 2 ;;
  esac
done

# Print a command (quoted so it can be pasted into a shell), then run it unless --dry-run.
run() {
  local shown="+" arg
  for arg in "$@"; do
    if [[ "$arg" =~ [^A-Za-z0-9_./:=,@%+-] ]]; then shown+=" '${arg//\'/\'\\\'\'}'"; else shown+=" $arg"; fi
  done
  echo "$shown"
  if [[ "$DRY_RUN" == 0 ]]; then "$@"; fi
}

# A step that changes the cluster: skipped by --check.
change() {
  if [[ "$CHECK_ONLY" == 0 ]]; then run "$@"; fi
}

phase() {
  echo "-- $1: $2"
}

wait_crds() {
  for crd in "$@"; do
    run kubectl wait --for=condition=Established "crd/$crd" --timeout="$TIMEOUT"
  done
}

wait_rollout() {
  local namespace="$1"; shift
  for deployment in "$@"; do
    run kubectl rollout status "deployment/$deployment" -n "$namespace" --timeout="$TIMEOUT"
  done
}

seconds() {
  case "$1" in
    *h) echo $(( ${1%h} * 3600 )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *) echo "${1%s}" ;;
  esac
}

# Wait until the operator's admission webhooks answer: a rolled-out webhook pod may not serve yet
# (certificate not injected, endpoints not ready). A server-side dry-run create of the probe object
# passes through every webhook of its kind; it answered when the create succeeds or a webhook denies
# it. "failed calling webhook" (connection refused, no endpoints, unknown authority) is retried.
wait_admission() {
  local manifest="$1" out deadline
  echo "+ kubectl create --dry-run=server -o name -f - <<< '$manifest'"
  if [[ "$DRY_RUN" == 1 ]]; then return 0; fi
  deadline=$(( SECONDS + $(seconds "$TIMEOUT") ))
  until out="$(kubectl create --dry-run=server -o name -f - <<<"$manifest" 2>&1)" \
      || [[ "$out" == *"denied the request"* ]]; do
    if (( SECONDS >= deadline )); then
      echo "admission webhooks did not answer within $TIMEOUT: $out" >&2
      return 1
    fi
    sleep "$POLL"
  done
}

selected() {
  [[ ",$ONLY," == *",$1,"* ]]
}

# needs_tool TOOL OPERATORS HINT: exit naming TOOL when a selected operator is installed with it.
needs_tool() {
  local name
  for name in ${ONLY//,/ }; do
    if [[ ",$2," == *",$name,"* ]] && ! command -v "$1" >/dev/null; then
      echo "$1 not found: $name is installed with it. $3" >&2
      exit 1
    fi
  done
}

if [[ "$DRY_RUN" == 0 ]]; then
  command -v kubectl >/dev/null || { echo "kubectl not found: https://kubernetes.io/docs/tasks/tools/" >&2; exit 1; }
  if [[ "$CHECK_ONLY" == 0 ]]; then
    needs_tool helm "@HELM@" "Install Helm @HELM_MIN@ or newer: https://helm.sh/docs/intro/install/"
    needs_tool git "@GIT@" "kubectl apply -k fetches its kustomization at the release tag with git: install git."
  fi
  kubectl version --request-timeout=10s >/dev/null || {
    context="$(kubectl config current-context 2>/dev/null || echo none)"
    echo "no cluster reachable with the current kube context ($context)" >&2
    exit 1
  }
fi
'''


def _ready(operator: Operator) -> str:
    """``ready_<key>``: the established and ready checks, for operators that require this one."""
    lines = [f"{operator.ready_function}() {{"] + [f"  {check}" for check in operator.ready_checks()] + ["}"]
    return "\n".join(lines)


def _function(operator: Operator) -> str:
    version = versions.OPERATORS[operator.key]
    lines = [f"# {operator.title}, {version}"]
    lines += [f"# {line}" for line in textwrap.wrap(operator.artifact, 100)]
    lines += [f"{operator.function}() {{", f'  echo "== {operator.key} ${{{operator.version_var}}}"']
    for name, commands in operator.phases():
        lines.append(f"  phase {operator.key} {name}")
        lines += [f"  {command}" for command in commands]
    lines.append("}")
    return "\n".join(lines)


def _users(tool: str) -> str:
    return ",".join(op.key for op in OPERATORS if tool in op.tools)


def install_script() -> str:
    """The text of ``clusters/install-operators.sh``."""
    names = ",".join(operator.key for operator in OPERATORS)
    assignments = "\n".join(f"{op.version_var}={versions.OPERATORS[op.key]}" for op in OPERATORS)
    prelude = (_PRELUDE.replace("@VERSIONS@", assignments).replace("@ALL@", names)
               .replace("@HELM_MIN@", versions.HELM_MIN).replace("@HELM@", _users("helm"))
               .replace("@GIT@", _users("git")))
    required = {name for op in OPERATORS for name in op.requires}
    readies = [_ready(op) for op in OPERATORS if op.key in required]
    body = "\n\n".join([*readies, *(_function(operator) for operator in OPERATORS)])
    calls = "\n".join(f"if selected {op.key}; then {op.function}; fi" for op in OPERATORS)
    footer = 'echo "operators ready: $ONLY"' + "\n"
    return f"{prelude}\n{body}\n\n{calls}\n{footer}"
