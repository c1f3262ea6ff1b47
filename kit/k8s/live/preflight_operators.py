"""Preflight, operators: each one installed at the pinned version, its CRDs Established, its webhook answering.

**Version.** A controller Deployment's ``app.kubernetes.io/version`` label when the release sets one,
else the tag of the operator's own image in it. What each pinned release sets (read at the tags):

- cert-manager v1.17.0 labels every object ``app.kubernetes.io/version: v1.17.0``
  (``deploy/charts/cert-manager/templates/_helpers.tpl``, ``define "labels"``: ``.Chart.AppVersion``);
- KubeRay v1.7.0: ``quay.io/kuberay/operator:v1.7.0`` (``ray-operator/config/default/kustomization.yaml``,
  ``images``); no version label;
- Kueue v0.19.2: ``<registry>/kueue/kueue:v0.19.2`` (``Makefile``, ``prepare-manifests`` sets
  ``controller=$(IMAGE_TAG)``, ``IMAGE_TAG := $(IMAGE_REPO):$(GIT_TAG)``); no version label;
- Kubeflow Trainer v2.3.0: ``ghcr.io/kubeflow/trainer/trainer-controller-manager:v2.3.0``
  (``manifests/overlays/manager/kustomization.yaml``, ``images.newTag``); no version label;
- KServe v0.20.0: ``kserve/kserve-controller:v0.20.0`` in the release assets
  (``hack/release/generate-install.sh`` rewrites ``:latest`` to the tag); the source kustomize
  (``config/default/manager_image_patch.yaml``) leaves ``:latest``, which this check reports.

The JobSet controller Trainer bundles carries JobSet's own version: it is checked for readiness only.

**Webhook.** A server-side dry run (``?dryRun=All``: admission runs, nothing is stored) of a minimal
object the operator's webhook admits. The API server wraps a webhook it could not reach as
``failed calling webhook "<name>": ...`` (kubernetes ``staging/src/k8s.io/apiserver/pkg/admission/plugin/
webhook/errors/errors.go``, ``ErrCallingWebhook``: "a failure to talk to the webhook, not the webhook
rejecting a request"): that is *not answering*. Success, or a denial (``admission webhook "<name>"
denied the request``), is *answering*. Every probe's webhook is ``failurePolicy: Fail`` at the pinned tag
(Kueue ``config/components/webhook/manifests.yaml`` ``mjob.kb.io``; Trainer ``manifests/base/webhook/
manifests.yaml`` ``validator.trainjob.trainer.kubeflow.org``; KServe ``config/webhook/manifests.yaml``
``inferenceservice.kserve-webhook-server.validator``; cert-manager ``templates/webhook-validating-webhook.yaml``
``webhook.cert-manager.io``), so a webhook that is down cannot pass unnoticed. KubeRay's
``config/default`` installs no webhook (``config/default-with-webhooks`` is the optional one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kit import versions
from kit.k8s.live.kinds import condition
from kit.k8s.live.preflight import FAIL, OK, READ_ACCESS, WARN, Answer, Check, ClusterAPI

AREA = "operators"
VERSION_LABEL = "app.kubernetes.io/version"
#: operator key -> the repository suffixes of its own images (whose tag is its version).
IMAGES: dict[str, tuple[str, ...]] = {
    "kuberay": ("kuberay/operator",),
    "kueue": ("kueue/kueue",),
    "kubeflow-trainer": ("trainer/trainer-controller-manager",),
    "kserve": ("kserve/kserve-controller",),
    "cert-manager": ("jetstack/cert-manager-controller", "jetstack/cert-manager-webhook",
                     "jetstack/cert-manager-cainjector"),
}
PROBE_NAME = "kit-preflight-probe"
_NOT_CALLED = re.compile(r"failed calling (admission )?webhook")


class OperatorSpec(Protocol):
    """What preflight needs of an operator (:class:`kit.deploy.operators.Operator` has it)."""

    @property
    def key(self) -> str: ...

    @property
    def crds(self) -> tuple[str, ...]: ...

    @property
    def namespace(self) -> str: ...

    @property
    def deployments(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Probe:
    """A minimal object the operator's webhook admits, created with ``dryRun=All`` in the plan's namespace."""

    api_version: str
    plural: str
    build: Callable[[str], dict[str, Any]]  # namespace -> the object
    webhook: str  # the validating webhook that judges it (a create it never reaches proves nothing)

    def path(self, namespace: str) -> str:
        prefix = "/api" if "/" not in self.api_version else "/apis"
        return f"{prefix}/{self.api_version}/namespaces/{namespace}/{self.plural}?dryRun=All"


def _object(api_version: str, kind: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": PROBE_NAME, "namespace": namespace},
            "spec": spec}


def _queued_job(namespace: str) -> dict[str, Any]:
    from kit.k8s.builders import core

    return core.batch_job(PROBE_NAME, namespace, ["true"], queue=versions.LOCAL_QUEUE)


def _trainjob(namespace: str) -> dict[str, Any]:
    from kit.k8s.builders import runtime

    return _object(versions.TRAINER_API_VERSION, "TrainJob", namespace, {"runtimeRef": {"name": runtime.NAME}})


def _inferenceservice(namespace: str) -> dict[str, Any]:
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://kit-models/digits"}
    return _object(versions.KSERVE_API_VERSION, "InferenceService", namespace, {"predictor": {"model": model}})


def _issuer(namespace: str) -> dict[str, Any]:
    return _object("cert-manager.io/v1", "Issuer", namespace, {"selfSigned": {}})


#: operator key -> its webhook probe (KubeRay's pinned install has no webhook).
PROBES: dict[str, Probe] = {
    "kueue": Probe("batch/v1", "jobs", _queued_job, "vjob.kb.io"),
    "kubeflow-trainer": Probe(versions.TRAINER_API_VERSION, "trainjobs", _trainjob,
                              "validator.trainjob.trainer.kubeflow.org"),
    "kserve": Probe(versions.KSERVE_API_VERSION, "inferenceservices", _inferenceservice,
                    "inferenceservice.kserve-webhook-server.validator"),
    "cert-manager": Probe("cert-manager.io/v1", "issuers", _issuer, "webhook.cert-manager.io"),
}
WEBHOOK_CONFIGURATIONS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def _install(key: str) -> str:
    return f"run `clusters/install-operators.sh --only {key}`"


def _image_version(key: str, deployment: dict[str, Any]) -> tuple[str, str] | None:
    """(version, where it was read) of the operator ``key`` from one of its Deployments, or None."""
    metadata = deployment.get("metadata") or {}
    label = (metadata.get("labels") or {}).get(VERSION_LABEL)
    if label:
        return str(label), f"label {VERSION_LABEL}"
    for container in (deployment.get("spec") or {}).get("template", {}).get("spec", {}).get("containers", []):
        image = str(container.get("image", ""))
        repository, _, tag = image.split("@")[0].rpartition(":")
        if "/" in tag or not repository:  # a registry port, not a tag: no tag at all
            repository, tag = image.split("@")[0], ""
        if repository.endswith(IMAGES.get(key, ())):
            return tag, image  # "" when pinned by digest alone
    return None


def _where(deployment: dict[str, Any]) -> str:
    return f"{deployment['metadata']['namespace']}/{deployment['metadata']['name']}"


def _unavailable(deployment: dict[str, Any]) -> str | None:
    """``"ns/name 0/1 available"`` when fewer replicas are available than wanted (at least one), else None."""
    available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
    wanted = int((deployment.get("spec") or {}).get("replicas", 1))
    return f"{_where(deployment)} {available}/{wanted} available" if available < max(1, wanted) else None


def check_controllers(operator: OperatorSpec, deployments: Answer) -> list[Check]:
    """The controller Deployments exist (in any namespace), run, and carry the pinned version."""
    key, pinned = operator.key, versions.OPERATORS[operator.key]
    by_name = {d["metadata"]["name"]: d for d in deployments.items()}
    found = [by_name[name] for name in operator.deployments if name in by_name]
    missing = [f"{operator.namespace}/{name}" for name in operator.deployments if name not in by_name]
    if missing:
        return [Check(AREA, f"{key} controllers", FAIL, f"not installed: no Deployment {', '.join(missing)}",
                      _install(key))]
    where = ", ".join(map(_where, found))
    down = [(d, text) for d in found if (text := _unavailable(d))]
    if down:
        checks = [Check(AREA, f"{key} controllers", FAIL, f"not running: {'; '.join(text for _, text in down)}",
                        f"`kubectl -n {down[0][0]['metadata']['namespace']} describe deployment "
                        f"{down[0][0]['metadata']['name']}` and its pods' events say why")]
    else:
        checks = [Check(AREA, f"{key} controllers", OK, f"running: {where}")]
    read = [(d["metadata"]["name"], _image_version(key, d)) for d in found]
    seen = [(name, version) for name, version in read if version is not None and version[0]]
    if not seen:
        checks.append(Check(AREA, f"{key} version", WARN, f"no {key} image tag or version label in {where}",
                            f"compare the images of {where} with {pinned} by hand"))
        return checks
    wrong = [f"{name} runs {version} ({source})" for name, (version, source) in seen if version != pinned]
    if wrong:
        checks.append(Check(AREA, f"{key} version", FAIL, f"{'; '.join(wrong)}; the kit pins {pinned}",
                            f"{_install(key)} (it applies the {pinned} release)"))
    else:
        checks.append(Check(AREA, f"{key} version", OK, f"{pinned} ({seen[0][1][1]})"))
    return checks


def _served_version(crd_name: str) -> str | None:
    """The version the kit uses of the kind served by CRD ``crd_name`` (None for CRDs the kit does not use)."""
    for resource in versions.API_RESOURCES.values():
        if resource.crd_name == crd_name:
            return resource.version
    return None


def check_crds(operator: OperatorSpec, crds: Answer) -> Check:
    """Every CRD of the operator exists, is Established, and serves the version the kit uses."""
    key = operator.key
    by_name = {crd["metadata"]["name"]: crd for crd in crds.items()}
    missing = [name for name in operator.crds if name not in by_name]
    pending, old = [], []
    for name in operator.crds:
        if name not in by_name:
            continue
        established = condition(by_name[name], "Established")
        if not established or established.get("status") != "True":
            pending.append(name)
        wanted = _served_version(name)
        served = [v.get("name") for v in (by_name[name].get("spec") or {}).get("versions", []) if v.get("served")]
        if wanted and wanted not in served:
            old.append(f"{name} serves {', '.join(map(str, served)) or 'nothing'}, not {wanted}")
    if missing:
        return Check(AREA, f"{key} CRDs", FAIL, f"missing: {', '.join(missing)}", _install(key))
    if old:
        return Check(AREA, f"{key} CRDs", FAIL, "; ".join(old), f"{_install(key)} (another release is installed)")
    if pending:
        return Check(AREA, f"{key} CRDs", FAIL, f"not Established: {', '.join(pending)}",
                     f"`kubectl describe crd {pending[0]}` says why (a name conflict or a bad schema)")
    return Check(AREA, f"{key} CRDs", OK, f"{len(operator.crds)} Established")


def judge_probe(key: str, kind: str, answer: Answer) -> Check:
    """The verdict on a webhook from the answer to its dry-run create."""
    name = f"{key} webhook"
    if answer.ok:
        return Check(AREA, name, OK, f"answers (admitted a dry-run {kind})")
    if _NOT_CALLED.search(answer.message):
        return Check(AREA, name, FAIL, f"not answering: {answer.message}",
                     f"check the webhook's pods and Service ({key}): `kubectl get pods,endpoints -A | grep {key}`"
                     "; its certificate comes from cert-manager (KServe) or the controller itself")
    if answer.status == 403:
        return Check(AREA, name, WARN, f"cannot probe: you may not create {kind} ({answer.message})",
                     "run the preflight as the organiser, or as a user who may create it")
    if answer.status == 404:
        return Check(AREA, name, WARN, f"cannot probe: {kind} is not served ({answer.message})", _install(key))
    if 400 <= answer.status < 500:
        return Check(AREA, name, OK, f"answers (it judged a dry-run {kind}: {answer.message[:160]})")
    return Check(AREA, name, FAIL, f"dry-run {kind}: HTTP {answer.status}: {answer.message}",
                 "read the API server's message above")


def registered(configurations: Answer) -> set[str] | None:
    """The names of every validating webhook registered (None when the list is not readable)."""
    if not configurations.ok:
        return None
    return {hook.get("name", "") for item in configurations.items() for hook in item.get("webhooks") or []}


def check_webhook(operator: OperatorSpec, api: ClusterAPI, namespace: str, webhooks: set[str] | None) -> Check | None:
    """The operator's validating webhook is registered, and a dry-run create of its probe object gets an answer;
    None when the operator has no webhook to probe. (With the webhook unregistered, the dry run of a built-in
    kind such as Kueue's Job would pass without it: a registration is checked first when it can be read.)"""
    probe = PROBES.get(operator.key)
    if probe is None:
        return None
    if webhooks is not None and probe.webhook not in webhooks:
        return Check(AREA, f"{operator.key} webhook", FAIL, f"no validating webhook {probe.webhook} is registered",
                     _install(operator.key))
    body = probe.build(namespace)
    return judge_probe(operator.key, body["kind"], api.post_json(probe.path(namespace), body))


def probe_namespace(api: ClusterAPI, namespace: str) -> str:
    """Where the webhook probes go: the plan's namespace, or ``default`` while it does not exist yet
    (the API server refuses a create in a missing namespace before any webhook is called)."""
    return "default" if api.get_json(f"/api/v1/namespaces/{namespace}").status == 404 else namespace


def check_operators(api: ClusterAPI, operators: Sequence[OperatorSpec], namespace: str) -> list[Check]:
    """Controllers, versions, CRDs and webhooks of every operator, in install order."""
    namespace = probe_namespace(api, namespace)
    deployments = api.get_json("/apis/apps/v1/deployments")
    crds = api.get_json("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    webhooks = registered(api.get_json(WEBHOOK_CONFIGURATIONS))
    checks = [Check(AREA, what, WARN, f"cannot list {what}: {answer.message}", READ_ACCESS)
              for what, answer in (("Deployments", deployments), ("CRDs", crds)) if not answer.ok]
    for operator in operators:
        if deployments.ok:
            checks += check_controllers(operator, deployments)
        if crds.ok:
            checks.append(check_crds(operator, crds))
        webhook = check_webhook(operator, api, namespace, webhooks)
        if webhook is not None:
            checks.append(webhook)
    return checks
