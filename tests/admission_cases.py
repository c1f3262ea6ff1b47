"""The minimal manifests of ``tests/test_admission.py``: each valid fixture with one change that breaks one
operator rule, with the field path and message the validator must report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manifest_fixtures import by_kind

from kit import versions

Doc = dict[str, Any]



def _trainjob(**spec: Any) -> Doc:
    job = by_kind("TrainJob")
    job["spec"].update(spec)
    return job


def _patch(manager: str = versions.RUNTIME_PATCH_MANAGER, job: str = "node", container: Doc | None = None) -> Doc:
    pod = {"containers": [container or {"name": "node"}]}
    return {"manager": manager, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [
        {"name": job, "template": {"spec": {"template": {"spec": pod}}}}]}}}}


def _runtime_job(runtime: Doc) -> Doc:
    return runtime["spec"]["template"]["spec"]["replicatedJobs"][0]


def _unqueued_rayjob(**spec: Any) -> Doc:
    job = by_kind("RayJob")
    del job["metadata"]["labels"]
    job["spec"].update(spec)
    return job


def _worker(doc: Doc) -> Doc:
    cluster = doc["spec"].get("rayClusterSpec") or doc["spec"].get("rayClusterConfig") or doc["spec"]
    return cluster["workerGroupSpecs"][0]


def _head_container(cluster: Doc) -> Doc:
    return cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


def _flavors(doc: Doc) -> list[Doc]:
    return doc["spec"]["resourceGroups"][0]["flavors"]


def _queue(doc: Doc) -> list[Doc]:
    return _flavors(doc)[0]["resources"]


def _with(kind: str, change: Callable[[Doc], Any]) -> Doc:
    doc = by_kind(kind)
    change(doc)
    return doc


def serving_runtime(name: str = "kit-sklearn", **spec: Any) -> Doc:
    """A minimal ServingRuntime (the valid fixtures have none: the kit writes none)."""
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"supportedModelFormats": [{"name": "sklearn", "version": "1", "autoSelect": True, "priority": 1}],
                     "protocolVersions": ["v2"],
                     "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.20.0"}],
                     **spec}}


def formats(*priorities: int) -> list[Doc]:
    return [{"name": "sklearn", "version": "1", "autoSelect": True, "priority": p} for p in priorities]


def env_containers(name: str) -> list[Doc]:
    env = [{"name": name, "value": "2"}]
    return [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.20.0", "env": env}]


def _canary(name: str, traffic: int = 10, **predictor: Any) -> Doc:
    model = {"name": "kserve-container", "modelFormat": {"name": "sklearn"}, "storageUri": f"gs://b/{name}"}
    return {"trafficPercent": traffic, "predictor": {"name": name, "model": model, **predictor}}


GROUPS = "spec.workerGroupSpecs[0]"
QUOTA = "spec.resourceGroups[0].flavors[0].resources[0]"
TRAINER = "spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0]"
PATCH_CONTAINER = f"{TRAINER}.template.spec.template.spec.containers[0]"
ISVC = "serving.kserve.io"

CASES: list[tuple[str, Callable[[], list[Doc]], str, str]] = [
    # Kubeflow Trainer v2.3.0
    ("trainer-manager-not-domain-prefixed", lambda: [_trainjob(runtimePatches=[_patch("cloud-native-ai-kit")])],
     "spec.runtimePatches[0].manager", 'must be a domain-prefixed path (such as "acme.io/foo")'),
    ("trainer-manager-bad-domain", lambda: [_trainjob(runtimePatches=[_patch("Kit_Team/kit")])],
     "spec.runtimePatches[0].manager", "RFC 1123 subdomain"),
    ("trainer-manager-twice", lambda: [_trainjob(runtimePatches=[_patch(), _patch()])],
     "spec.runtimePatches[1].manager", "appears twice"),
    ("trainer-patch-unknown-job",
     lambda: [by_kind("ClusterTrainingRuntime"), _trainjob(runtimePatches=[_patch(job="worker")])],
     f"{TRAINER}.name", "replicated job 'worker' is not in the runtime"),
    ("trainer-patch-unknown-container",
     lambda: [by_kind("ClusterTrainingRuntime"), _trainjob(runtimePatches=[_patch(container={"name": "trainer"})])],
     f"{PATCH_CONTAINER}.name", "container 'trainer' is not in the runtime job node"),
    ("trainer-patch-env-on-node", lambda: [by_kind("ClusterTrainingRuntime"), _trainjob(
        runtimePatches=[_patch(container={"name": "node", "env": [{"name": "A", "value": "1"}]})])],
     f"{PATCH_CONTAINER}.env", "must not set env for the dataset-initializer, model-initializer, node"),
    ("trainer-reserved-torch-env", lambda: [by_kind("ClusterTrainingRuntime"), _trainjob(
        trainer={**by_kind("TrainJob")["spec"]["trainer"], "env": [{"name": "PET_NNODES", "value": "4"}]})],
     "spec.trainer.env", "must not have reserved envs, invalid envs configured: ['PET_NNODES']"),
    ("trainer-reserved-env-upstream-runtime", lambda: [_trainjob(
        runtimeRef={"name": "torch-distributed"},
        trainer={**by_kind("TrainJob")["spec"]["trainer"], "env": [{"name": "PET_MASTER_PORT", "value": "1"}]})],
     "spec.trainer.env", "['PET_MASTER_PORT']"),
    ("trainer-reserved-mpi-env", lambda: [_with("ClusterTrainingRuntime", lambda d: d["spec"].update(
        mlPolicy={"numNodes": 1, "mpi": {}})), _trainjob(
        trainer={**by_kind("TrainJob")["spec"]["trainer"], "env": [{"name": "OMPI_MCA_plm_rsh_args", "value": ""}]})],
     "spec.trainer.env", "['OMPI_MCA_plm_rsh_args'] (the mpi runtime sets them)"),
    ("trainer-unsupported-runtime", lambda: [_trainjob(runtimeRef={"name": "x", "kind": "Runtime"})],
     "spec.runtimeRef", "unsupported runtime Runtime.trainer.kubeflow.org"),
    ("trainer-name-not-rfc1035", lambda: [_with("TrainJob", lambda d: d["metadata"].update(name="1-mnist"))],
     "metadata.name", "DNS-1035 label"),
    ("trainer-managed-by", lambda: [_trainjob(managedBy="example.com/me")],
     "spec.managedBy", "managedBy must be trainer.kubeflow.org/trainjob-controller or kueue.x-k8s.io/multikueue"),
    ("trainer-runtime-ancestor-replicas", lambda: [_with("ClusterTrainingRuntime",
                                                         lambda d: _runtime_job(d).update(replicas=2))],
     "spec.template.spec.replicatedJobs[0].replicas", "always must be 1"),
    ("trainer-runtime-ancestor-container", lambda: [_with(
        "ClusterTrainingRuntime",
        lambda d: _runtime_job(d)["template"]["spec"]["template"]["spec"]["containers"][0].update(name="main"))],
     "spec.template.spec.replicatedJobs[0].template.spec.template.spec.containers",
     "must contain the required container for the ancestor trainer: 'node'"),
    # KubeRay v1.7.0
    ("kuberay-raycluster-name-length", lambda: [_with("RayCluster", lambda d: d["metadata"].update(name="r" * 54))],
     "metadata.name", "RayCluster name should be no more than 53 characters"),
    ("kuberay-rayjob-name-dns1035", lambda: [_with("RayJob", lambda d: d["metadata"].update(name="7-train"))],
     "metadata.name", "RayJob name should be a valid DNS1035 label"),
    ("kuberay-rayservice-name-length", lambda: [_with("RayService", lambda d: d["metadata"].update(name="s" * 48))],
     "metadata.name", "RayService name should be no more than 47 characters"),
    ("kuberay-initializing-timeout", lambda: [_with("RayService", lambda d: d["metadata"].update(
        annotations={"ray.io/initializing-timeout": "soon"}))],
     'metadata.annotations["ray.io/initializing-timeout"]', "must be a positive Go duration"),
    ("kuberay-unique-group-names", lambda: [_with("RayCluster", lambda d: d["spec"]["workerGroupSpecs"].append(
        dict(_worker(d))))],
     "spec.workerGroupSpecs[1]", "worker group names must be unique"),
    ("kuberay-head-without-containers", lambda: [_with(
        "RayCluster", lambda d: d["spec"]["headGroupSpec"]["template"]["spec"].update(containers=[]))],
     "spec.headGroupSpec.template.spec.containers", "should have at least one container"),
    ("kuberay-resources-twice", lambda: [_with("RayCluster", lambda d: _worker(d).update(
        rayStartParams={"num-cpus": "1"}, resources={"CPU": "1"}))],
     f"{GROUPS}.resources", "should not be set in both rayStartParams and resources"),
    ("kuberay-ray-start-labels", lambda: [_with("RayCluster", lambda d: _worker(d).update(
        rayStartParams={"labels": "a=b"}))],
     f"{GROUPS}.rayStartParams.labels", "rayStartParams['labels'] is not supported"),
    ("kuberay-group-label-key", lambda: [_with("RayCluster", lambda d: _worker(d).update(labels={"bad key": "x"}))],
     f'{GROUPS}.labels["bad key"]', "invalid label for"),
    ("kuberay-autoscaler-v2-env-without-autoscaling", lambda: [_with("RayCluster", lambda d: _head_container(d).update(
        env=[{"name": "RAY_enable_autoscaler_v2", "value": "true"}]))],
     "spec.headGroupSpec.template.spec.containers[0].env", "cannot be set to true when enableInTreeAutoscaling"),
    ("kuberay-idle-timeout-needs-v2", lambda: [_with("RayCluster", lambda d: _worker(d).update(idleTimeoutSeconds=60))],
     f"{GROUPS}.idleTimeoutSeconds", "needs autoscaler v2"),
    ("kuberay-alpha-network-policy", lambda: [_with("RayCluster", lambda d: d["spec"].update(networkPolicy={}))],
     "spec.networkPolicy", "RayClusterNetworkPolicy feature gate"),
    ("kuberay-suspend-needs-shutdown", lambda: [_unqueued_rayjob(shutdownAfterJobFinishes=False,
                                                                 ttlSecondsAfterFinished=0)],
     "spec.suspend", "shutdownAfterJobFinishes false cannot be suspended"),
    ("kuberay-cluster-selector-key", lambda: [_with("RayJob", lambda d: (
        d["metadata"].pop("labels"), d["spec"].pop("rayClusterSpec"),
        d["spec"].update(suspend=False, clusterSelector={"app": "x"})))],
     "spec.clusterSelector", "needs the key ray.io/cluster"),
    ("kuberay-no-cluster", lambda: [_with("RayJob", lambda d: (d["metadata"].pop("labels"),
                                                               d["spec"].pop("rayClusterSpec")))],
     "spec.rayClusterSpec", "one of rayClusterSpec or clusterSelector must be set"),
    ("kuberay-interactive-backoff", lambda: [_unqueued_rayjob(submissionMode="InteractiveMode", backoffLimit=1)],
     "spec.backoffLimit", "incompatible with InteractiveMode"),
    ("kuberay-sidecar-submitter", lambda: [_unqueued_rayjob(submissionMode="SidecarMode")],
     "spec.submitterPodTemplate", "SidecarMode doesn't support submitterPodTemplate"),
    ("kuberay-deadline-positive", lambda: [_unqueued_rayjob(activeDeadlineSeconds=0)],
     "spec.activeDeadlineSeconds", "must be a positive integer"),
    ("kuberay-deletion-rules-and-shutdown", lambda: [_unqueued_rayjob(ttlSecondsAfterFinished=0, deletionStrategy={
        "deletionRules": [{"policy": "DeleteCluster", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 0}}]})],
     "spec.deletionStrategy.deletionRules", "mutually exclusive"),
    ("kuberay-rayjob-cluster-upgrade-strategy", lambda: [_with("RayJob", lambda d: d["spec"]["rayClusterSpec"].update(
        upgradeStrategy={"type": "Recreate"}))],
     "spec.rayClusterSpec.upgradeStrategy", "upgradeStrategy cannot be set when the RayCluster is created by a RayJob"),
    ("kuberay-rayservice-cluster-upgrade-strategy", lambda: [_with("RayService", lambda d: d["spec"][
        "rayClusterConfig"].update(upgradeStrategy={"type": "Recreate"}))],
     "spec.rayClusterConfig.upgradeStrategy", "created by a RayService"),
    ("kuberay-autoscaler-version-and-env", lambda: [_with("RayCluster", lambda d: (
        d["spec"].update(enableInTreeAutoscaling=True, autoscalerOptions={"version": "v2"}),
        d["metadata"].pop("labels"),
        _head_container(d).update(env=[{"name": "RAY_enable_autoscaler_v2", "value": "1"}])))],
     "spec.headGroupSpec.template.spec.containers[0].env", "both autoscalerOptions.version and head env"),
    ("kuberay-autoscaler-idle-negative", lambda: [_with("RayCluster", lambda d: d["spec"].update(
        autoscalerOptions={"idleTimeoutSeconds": -1}))],
     "spec.autoscalerOptions.idleTimeoutSeconds", "must be non-negative, got -1"),
    ("kuberay-autoscaler-generated-cmd", lambda: [_with("RayCluster", lambda d: d["spec"].update(
        autoscalerOptions={"env": [{"name": "KUBERAY_GEN_AUTOSCALER_START_CMD", "value": "x"}]}))],
     "spec.autoscalerOptions.env", "must not contain KUBERAY_GEN_AUTOSCALER_START_CMD"),
    ("kuberay-suspend-group-autoscaling", lambda: [_with("RayCluster", lambda d: (
        d["metadata"].pop("labels"), d["spec"].update(enableInTreeAutoscaling=True), _worker(d).update(suspend=True)))],
     f"{GROUPS}.suspend", "cannot be suspended with autoscaling enabled"),
    ("kuberay-priority-needs-v2", lambda: [_with("RayCluster", lambda d: _worker(d).update(priority=5))],
     f"{GROUPS}.priority", "priority needs autoscaler v2"),
    ("kuberay-k8s-auth-needs-token", lambda: [_with("RayCluster", lambda d: d["spec"].update(
        authOptions={"mode": "disabled", "enableK8sTokenAuth": True}))],
     "spec.authOptions", "enableK8sTokenAuth needs authOptions.mode: token"),
    ("kuberay-ft-annotation-and-options", lambda: [_with("RayCluster", lambda d: (
        d["metadata"].update(annotations={"ray.io/ft-enabled": "true"}),
        d["spec"].update(gcsFaultToleranceOptions={"redisAddress": "redis:6379"})))],
     "spec.gcsFaultToleranceOptions", "ray.io/ft-enabled annotation and gcsFaultToleranceOptions are both set"),
    ("kuberay-negative-min-replicas", lambda: [_with("RayCluster", lambda d: _worker(d).update(minReplicas=-1))],
     f"{GROUPS}.minReplicas", "has negative minReplicas -1"),
    ("kuberay-ttl-negative", lambda: [_unqueued_rayjob(ttlSecondsAfterFinished=-1)],
     "spec.ttlSecondsAfterFinished", "must be a non-negative integer"),
    ("kuberay-selector-suspend", lambda: [_with("RayJob", lambda d: (
        d["metadata"].pop("labels"), d["spec"].pop("rayClusterSpec"),
        d["spec"].update(clusterSelector={"ray.io/cluster": "demo"})))],
     "spec.suspend", "the clusterSelector mode doesn't support suspend"),
    ("kuberay-selector-sidecar", lambda: [_with("RayJob", lambda d: (
        d["metadata"].pop("labels"), d["spec"].pop("rayClusterSpec"), d["spec"].pop("submitterPodTemplate"),
        d["spec"].update(suspend=False, submissionMode="SidecarMode", clusterSelector={"ray.io/cluster": "demo"})))],
     "spec.clusterSelector", "clusterSelector is not supported in SidecarMode"),
    ("kuberay-selector-backoff", lambda: [_with("RayJob", lambda d: (
        d["metadata"].pop("labels"), d["spec"].pop("rayClusterSpec"),
        d["spec"].update(suspend=False, backoffLimit=2, clusterSelector={"ray.io/cluster": "demo"})))],
     "spec.backoffLimit", "backoffLimit is incompatible with clusterSelector"),
    ("kuberay-backoff-negative", lambda: [_unqueued_rayjob(backoffLimit=-1)],
     "spec.backoffLimit", "backoffLimit must not be negative"),
    ("kuberay-incremental-needs-options", lambda: [_with("RayService", lambda d: (
        d["metadata"].update(annotations={versions.ELASTIC_JOB_ANNOTATION: "true"}),
        d["spec"]["rayClusterConfig"].update(enableInTreeAutoscaling=True),
        d["spec"].update(upgradeStrategy={"type": "NewClusterWithIncrementalUpgrade"})))],
     "spec.upgradeStrategy.clusterUpgradeOptions", "clusterUpgradeOptions are required"),
    ("kuberay-service-upgrade-type", lambda: [_with("RayService", lambda d: d["spec"].update(
        upgradeStrategy={"type": "Recreate"}))],
     "spec.upgradeStrategy.type", "expected one of NewClusterWithIncrementalUpgrade, NewCluster, None"),
    ("kuberay-service-head-service-name", lambda: [_with("RayService", lambda d: d["spec"]["rayClusterConfig"][
        "headGroupSpec"].update(headService={"metadata": {"name": "mine"}}))],
     "spec.rayClusterConfig.headGroupSpec.headService.metadata.name", "should not be set"),
    ("kuberay-incremental-needs-autoscaler", lambda: [_with("RayService", lambda d: d["spec"].update(upgradeStrategy={
        "type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {
            "gatewayClassName": "istio", "intervalSeconds": 10, "stepSizePercent": 10}}))],
     "spec.rayClusterConfig.enableInTreeAutoscaling", "Ray autoscaler is required"),
    # Kueue v0.19.2
    ("kueue-queue-name-format", lambda: [_with("RayCluster", lambda d: d["metadata"]["labels"].update(
        {versions.QUEUE_LABEL: "Team_A"}))],
     f'metadata.labels["{versions.QUEUE_LABEL}"]', "RFC 1123 subdomain"),
    ("kueue-max-exec-time", lambda: [_with("TrainJob", lambda d: d["metadata"]["labels"].update(
        {"kueue.x-k8s.io/max-exec-time-seconds": "0"}))],
     'metadata.labels["kueue.x-k8s.io/max-exec-time-seconds"]', "must be an integer greater than 0"),
    ("kueue-queued-autoscaling",
     lambda: [_with("RayCluster", lambda d: d["spec"].update(enableInTreeAutoscaling=True))],
     "spec.enableInTreeAutoscaling", "can use autoscaling only as an elastic job"),
    ("kueue-queued-rayservice-autoscaling", lambda: [_with("RayService", lambda d: d["spec"]["rayClusterConfig"].update(
        enableInTreeAutoscaling=True))],
     "spec.rayClusterConfig.enableInTreeAutoscaling", "can use autoscaling only as an elastic job"),
    ("kueue-head-group-name", lambda: [_with("RayCluster", lambda d: _worker(d).update(groupName="head"))],
     f"{GROUPS}.groupName", "'head' is reserved for the head group"),
    ("kueue-too-many-pod-sets", lambda: [_with("RayCluster", lambda d: d["spec"].update(workerGroupSpecs=[
        {**_worker(d), "groupName": f"g{i}"} for i in range(18)]))],
     "spec.workerGroupSpecs", "too many pod sets: 19"),
    ("kueue-queued-rayjob-selector", lambda: [_with("RayJob", lambda d: d["spec"].update(
        clusterSelector={"ray.io/cluster": "demo"}, suspend=False))],
     "spec.clusterSelector", "a kueue managed job should not use an existing cluster"),
    ("kueue-queued-rayjob-shutdown", lambda: [_with("RayJob", lambda d: d["spec"].update(
        shutdownAfterJobFinishes=False, suspend=False, ttlSecondsAfterFinished=0))],
     "spec.shutdownAfterJobFinishes", "a kueue managed job should delete the cluster"),
    ("kueue-elastic-unsupported-kind", lambda: [_with("TrainJob", lambda d: d["metadata"].update(
        annotations={versions.ELASTIC_JOB_ANNOTATION: "true"}))],
     f'metadata.annotations["{versions.ELASTIC_JOB_ANNOTATION}"]', "elastic job is not supported for TrainJob"),
    ("kueue-resources-count", lambda: [_with("ClusterQueue", lambda d: _queue(d).pop())],
     "spec.resourceGroups[0].flavors[0].resources", "same number of resources as the coveredResources (1 vs 2)"),
    ("kueue-resource-name-order", lambda: [_with("ClusterQueue", lambda d: _queue(d)[0].update(name="gpu"))],
     f"{QUOTA}.name", "must match the name in coveredResources ('cpu')"),
    ("kueue-duplicate-flavor", lambda: [_with("ClusterQueue", lambda d: _flavors(d).append(dict(_flavors(d)[0])))],
     "spec.resourceGroups[0].flavors[1].name", "duplicate flavor 'default-flavor'"),
    ("kueue-duplicate-resource", lambda: [_with("ClusterQueue", lambda d: d["spec"]["resourceGroups"].append({
        "coveredResources": ["cpu"],
        "flavors": [{"name": "other", "resources": [{"name": "cpu", "nominalQuota": 1}]}]}))],
     "spec.resourceGroups[1].coveredResources[0]", "duplicate resource 'cpu'"),
    ("kueue-borrowing-without-cohort", lambda: [_with("ClusterQueue", lambda d: _queue(d)[0].update(borrowingLimit=1))],
     f"{QUOTA}.borrowingLimit", "borrowingLimit must be nil when cohort is empty"),
    ("kueue-lending-over-nominal", lambda: [_with("ClusterQueue", lambda d: (
        d["spec"].update(cohortName="all"), _queue(d)[1].update(lendingLimit="65Gi")))],
     "spec.resourceGroups[0].flavors[0].resources[1].lendingLimit", "less than or equal to the nominalQuota"),
    ("kueue-negative-quota", lambda: [_with("ClusterQueue", lambda d: _queue(d)[0].update(nominalQuota="-1"))],
     f"{QUOTA}.nominalQuota", "must be greater than or equal to 0"),
    ("kueue-preemption", lambda: [_with("ClusterQueue", lambda d: d["spec"].update(preemption={
        "reclaimWithinCohort": "Never", "borrowWithinCohort": {"policy": "LowerPriority"}}))],
     "spec.preemption", "reclaimWithinCohort=Never and borrowWithinCohort.Policy!=Never"),
    ("kueue-fungibility-preference", lambda: [_with("ClusterQueue", lambda d: d["spec"].update(
        flavorFungibility={"preference": "BorrowingOverPreemption"}))],
     "spec.flavorFungibility.preference", "requires both whenCanBorrow and whenCanPreempt to be TryNextFlavor"),
    ("kueue-fair-sharing-weight", lambda: [_with("ClusterQueue", lambda d: d["spec"].update(
        fairSharing={"weight": "0.5n"}))],
     "spec.fairSharing.weight", "weight must be > 10e-9"),
    ("kueue-admission-check-flavor", lambda: [_with("ClusterQueue", lambda d: d["spec"].update(admissionChecksStrategy={
        "admissionChecks": [{"name": "check", "onFlavors": ["gpu-flavor"]}]}))],
     "spec.admissionChecksStrategy.admissionChecks[0].onFlavors[0]", "'gpu-flavor' is not one of"),
    ("kueue-covered-resource-name", lambda: [_with("ClusterQueue", lambda d: (
        d["spec"]["resourceGroups"][0].update(coveredResources=["cpu", "bad name"]),
        _queue(d)[1].update(name="bad name")))],
     "spec.resourceGroups[0].coveredResources[1]", "resource name 'bad name'"),
    ("kueue-lending-without-cohort", lambda: [_with("ClusterQueue", lambda d: _queue(d)[0].update(lendingLimit=1))],
     f"{QUOTA}.lendingLimit", "lendingLimit must be nil when cohort is empty"),
    ("kueue-fair-sharing-negative", lambda: [_with("ClusterQueue", lambda d: d["spec"].update(
        fairSharing={"weight": "-1"}))],
     "spec.fairSharing.weight", "must be greater than or equal to 0"),
    ("kueue-flavor-taint-key", lambda: [_with("ResourceFlavor", lambda d: d.update(spec={"nodeTaints": [
        {"key": "bad key", "value": "a", "effect": "NoSchedule"}]}))],
     "spec.nodeTaints[0].key", "invalid taint key"),
    ("kueue-flavor-node-label", lambda: [_with("ResourceFlavor", lambda d: d.update(spec={
        "nodeLabels": {"pool": "not a value"}}))],
     'spec.nodeLabels.pool', "invalid node label"),
    ("kueue-flavor-taints-unique", lambda: [_with("ResourceFlavor", lambda d: d.update(spec={"nodeTaints": [
        {"key": "gpu", "value": "a", "effect": "NoSchedule"}, {"key": "gpu", "value": "b", "effect": "NoSchedule"}]}))],
     "spec.nodeTaints[1]", "taints must be unique by key and effect pair"),
    # KServe v0.20.0
    ("kserve-name", lambda: [_with("InferenceService", lambda d: d["metadata"].update(name="1-iris"))],
     "metadata.name", "must consist of lower case alphanumeric characters or '-' and start with a letter"),
    ("kserve-autoscaler-class", lambda: [_with("InferenceService", lambda d: d["metadata"]["annotations"].update(
        {f"{ISVC}/autoscalerClass": "kpa"}))],
     f'metadata.annotations["{ISVC}/autoscalerClass"]', "[kpa] is not a supported autoscaler class type"),
    ("kserve-deployment-mode", lambda: [_with("InferenceService", lambda d: d["metadata"]["annotations"].update(
        {f"{ISVC}/deploymentMode": "Raw"}))],
     f'metadata.annotations["{ISVC}/deploymentMode"]', "unknown deploymentMode 'Raw'"),
    ("kserve-blocked-env", lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"]["model"].update(
        env=[{"name": "PYTHONPATH", "value": "/x"}]))],
     "spec.predictor.model.env[0]", "setting PYTHONPATH in container 'model' is not allowed"),
    ("kserve-two-implementations", lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"].update(
        sklearn={"storageUri": "gs://bucket/model"}))],
     "spec.predictor", "must be specified in PredictorSpec; found 2"),
    ("kserve-standard-predictor-name",
     lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"]["model"].update(name="iris"))],
     "spec.predictor.model.name", "the 'name' field is not allowed in standard predictor"),
    ("kserve-storage-scheme", lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"]["model"].update(
        storageUri="ftp://host/model"))],
     "spec.predictor.model.storageUri", "storageUri 'ftp://host/model' is not supported"),
    ("kserve-storage-uri-and-uris", lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"].update(
        storageUris=[{"uri": "s3://b/m", "mountPath": "/mnt/models"}]))],
     "spec.predictor.storageUris", "Setting both StorageURI and StorageURIs is not supported."),
    ("kserve-min-over-max", lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"].update(minReplicas=3))],
     "spec.predictor.minReplicas", "'MinReplicas' (3) cannot be greater than MaxReplicas (2)"),
    ("kserve-hpa-metric", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/autoscalerClass": "hpa"}),
        d["spec"]["predictor"].update(scaleMetric="rps")))],
     "spec.predictor.scaleMetric", "[rps] is not a supported metric (cpu, memory)"),
    ("kserve-knative-deployment-strategy", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/deploymentMode": "Knative"}),
        d["spec"]["predictor"].update(deploymentStrategy={"type": "Recreate"})))],
     "spec.predictor.deploymentStrategy", "only supported for Standard"),
    ("kserve-canary-only-standard", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/deploymentMode": "Knative"}),
        d["spec"].update(canary=[{"trafficPercent": 10, "predictor": {"name": "v2", "model": {
            "name": "kserve-container", "modelFormat": {"name": "sklearn"}, "storageUri": "gs://b/v2"}}}])))],
     "spec.canary", "canary is only supported in Standard deployment mode"),
    ("kserve-canary-traffic-percent-ignored-in-standard", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/deploymentMode": "Standard"}),
        d["spec"]["predictor"].update(canaryTrafficPercent=10)))],
     "spec.predictor.canaryTrafficPercent", "read only in Knative (Serverless) mode"),
    ("kserve-canary-traffic-sum", lambda: [_with("InferenceService", lambda d: d["spec"].update(canary=[
        {"trafficPercent": 60, "predictor": {"name": f"v{i}", "model": {
            "name": "kserve-container", "modelFormat": {"name": "sklearn"}, "storageUri": f"gs://b/v{i}"}}}
        for i in (2, 3)]))],
     "spec.canary", "sum of canary trafficPercent values (120) must be <= 100"),
    ("kserve-negative-max-replicas", lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"].update(
        maxReplicas=-1))],
     "spec.predictor.maxReplicas", "'MaxReplicas' cannot be less than 0"),
    ("kserve-negative-concurrency", lambda: [_with("InferenceService", lambda d: d["spec"]["predictor"].update(
        containerConcurrency=-1))],
     "spec.predictor.containerConcurrency", "parallelism cannot be less than 0"),
    ("kserve-keda-scale-metric", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/autoscalerClass": "keda"}),
        d["spec"]["predictor"].update(scaleMetric="cpu")))],
     "spec.predictor.scaleMetric", "ScaleMetric is not supported for KEDA"),
    ("kserve-hpa-target", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/autoscalerClass": "hpa"}),
        d["spec"]["predictor"].update(scaleMetric="cpu", scaleTarget=150)))],
     "spec.predictor.scaleTarget", "the target utilization percentage should be a [1-100] integer"),
    ("kserve-kpa-metric", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/deploymentMode": "Knative"}),
        d["spec"]["predictor"].update(scaleMetric="memory")))],
     "spec.predictor.scaleMetric", "[memory] is not a supported metric (concurrency, rps)"),
    ("kserve-kpa-rps-target", lambda: [_with("InferenceService", lambda d: (
        d["metadata"]["annotations"].update({f"{ISVC}/deploymentMode": "Knative"}),
        d["spec"]["predictor"].update(scaleMetric="rps", scaleTarget=0)))],
     "spec.predictor.scaleTarget", "the target for rps should be greater than 1"),
    ("kserve-canary-duplicate-name", lambda: [_with("InferenceService", lambda d: d["spec"].update(canary=[
        _canary("v2"), _canary("v2")]))],
     "spec.canary[1].predictor.name", "canary predictor.name 'v2' is duplicated"),
    ("kserve-canary-fixed-replicas", lambda: [_with("InferenceService", lambda d: d["spec"].update(canary=[
        _canary("v2", maxReplicas=3)]))],
     "spec.canary[0].predictor.maxReplicas", "canary must not set maxReplicas"),
    ("kserve-canary-no-autoscaling", lambda: [_with("InferenceService", lambda d: d["spec"].update(canary=[
        _canary("v2", scaleTarget=5)]))],
     "spec.canary[0].predictor.scaleTarget", "canary must not set scaleTarget"),
    ("kserve-canary-min-replicas", lambda: [_with("InferenceService", lambda d: d["spec"].update(canary=[
        _canary("v2", minReplicas=2)]))],
     "spec.canary[0].predictor.minReplicas", "canary minReplicas (2) must not exceed"),
    ("kserve-canary-one-implementation", lambda: [_with("InferenceService", lambda d: d["spec"].update(canary=[
        _canary("v2", sklearn={"name": "kserve-container", "storageUri": "gs://b/v2"})]))],
     "spec.canary[0].predictor", "exactly one implementation must be specified in the canary predictor"),
    ("kserve-canary-needs-stable-model", lambda: [_with("InferenceService", lambda d: (
        d["spec"].update(predictor={"containers": [{"name": "kserve-container", "image": "example/server:1.0"}]}),
        d["spec"].update(canary=[_canary("v2")])))],
     "spec.predictor", "canary requires a stable predictor with a model"),
    ("servingruntime-format-priorities", lambda: [serving_runtime(supportedModelFormats=formats(1, 2))],
     "spec.supportedModelFormats[1].priority", "different priorities assigned for the model format sklearn"),
    ("servingruntime-blocked-env", lambda: [serving_runtime(containers=env_containers("PYTHONPATH"))],
     "spec.containers[0].env[0]", "setting PYTHONPATH in container 'kserve-container' is not allowed"),
    ("servingruntime-one-worker-container", lambda: [serving_runtime(workerSpec={"containers": [
        {"name": "worker-container", "image": "w:1"}, {"name": "sidecar", "image": "s:1"}]})],
     "spec.workerSpec.containers", "setting multiple containers in workerSpec is not allowed"),
    ("servingruntime-parallel-env", lambda: [serving_runtime(
        containers=env_containers("TENSOR_PARALLEL_SIZE"),
        workerSpec={"containers": [{"name": "worker-container", "image": "w:1"}]})],
     "spec.containers[0].env[0]", "setting TENSOR_PARALLEL_SIZE in environment variables is not allowed"),
    ("servingruntime-pipeline-size", lambda: [serving_runtime(workerSpec={
        "pipelineParallelSize": 0, "containers": [{"name": "worker-container", "image": "w:1"}]})],
     "spec.workerSpec.pipelineParallelSize", "cannot be less than 1(0)"),
    ("servingruntime-priority-clash", lambda: [serving_runtime(), serving_runtime("other-sklearn")],
     "spec.supportedModelFormats", "same priority assigned for the model format sklearn as in the ServingRuntime"),
    ("kserve-canary-needs-name", lambda: [_with("InferenceService", lambda d: d["spec"].update(canary=[
        {"trafficPercent": 10, "predictor": {"model": {"name": "kserve-container",
                                                "modelFormat": {"name": "sklearn"}, "storageUri": "gs://b/v2"}}}]))],
     "spec.canary[0].predictor.name", "canary[0] predictor.name is required"),
]
