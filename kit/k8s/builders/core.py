"""Built-in Kubernetes objects an AI workload needs: Namespace, quotas, Pod, Job, NetworkPolicy.

Every namespace the kit creates enforces the Pod Security Standards ``restricted``
profile, caps what its workloads may request (ResourceQuota), gives containers
that forgot their requests a default (LimitRange) and accepts traffic only from
itself and, on the Ray head's dashboard and Serve ports, the KubeRay operator, and
lets pods reach only cluster DNS, each other and (pods that call it) the API server
(:func:`network_policies`). Pods and Jobs reuse :mod:`kit.k8s.builders.pods`, so they
pass that profile.
"""

from __future__ import annotations

from typing import Any

from kit import versions
from kit.k8s.builders import pods

PSS_LEVEL = "restricted"
GPU_RESOURCE = "nvidia.com/gpu"
_NAME_LABEL = "kubernetes.io/metadata.name"  # the API server sets it on every Namespace

#: Where the KubeRay operator runs and the label of its pods. ``app.kubernetes.io/component: kuberay-operator``
#: is on the pods of both upstream installs at v1.7.0: the Helm chart (helm-chart/kuberay-operator/
#: templates/deployment.yaml, ``componentOverride: kuberay-operator`` in values.yaml) and the kustomize
#: manifests (ray-operator/config/manager/manager.yaml); ``app.kubernetes.io/name`` differs between them.
KUBERAY_NAMESPACE = versions.OPERATOR_NAMESPACES["kuberay"]
KUBERAY_OPERATOR_LABELS = {"app.kubernetes.io/component": "kuberay-operator"}
#: The Ray head pod, as KubeRay labels it (``ray.io/node-type: head``, utils/constant.go).
RAY_HEAD_LABELS = {f"{versions.RAY_GROUP}/node-type": "head"}
#: The head ports the KubeRay operator connects to (KubeRay v1.7.0, ray-operator/controllers/ray/):
#: the dashboard, for RayJob status and stop (``GetJobInfo``/``StopJob`` in rayjob_controller.go) and for
#: a RayService's Serve apps (``getAndCheckServeStatus``/``updateServeDeployment`` in rayservice_controller.go),
#: through the head Service's ``dashboard`` port (``utils.FetchHeadServiceURL``); and the Serve proxy, whose
#: ``/-/healthz`` it asks on the head pod's IP (``updateHeadPodServeLabel``, utils/httpproxy_httpclient.go).
RAY_OPERATOR_PORTS = (versions.PORTS["ray-dashboard"], versions.PORTS["ray-serve"])
#: Cluster DNS: CoreDNS (or kube-dns) pods in kube-system carry ``k8s-app: kube-dns``.
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
#: The API server's ports: 443 on the ``kubernetes`` Service, often 6443 on the control-plane
#: endpoint the Service leads to (kind, kubeadm); policies see the endpoint, after the Service's NAT.
API_SERVER_PORTS = (443, 6443)


def _metadata(name: str, namespace: str | None = None, labels: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    return metadata


def namespace(name: str, level: str = PSS_LEVEL) -> dict[str, Any]:
    """A Namespace whose pods must pass Pod Security ``level`` (enforced, warned and audited)."""
    labels = {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "warn", "audit")}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(name, labels=labels)}


def resource_quota(namespace: str, cpu: str, memory: str, gpus: int = 0, pods_max: int = 20,
                   name: str = "compute") -> dict[str, Any]:
    """The most a namespace's pods may request and use together; ``gpus`` 0 forbids GPUs."""
    hard = {
        "requests.cpu": cpu, "limits.cpu": cpu,
        "requests.memory": memory, "limits.memory": memory,
        f"requests.{GPU_RESOURCE}": str(gpus),
        "pods": str(pods_max),
    }
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _metadata(name, namespace),
            "spec": {"hard": hard}}


def limit_range(namespace: str, cpu: str = "500m", memory: str = "512Mi", name: str = "defaults") -> dict[str, Any]:
    """Requests and limits for containers that set none (a quota rejects pods without them)."""
    default = {"cpu": cpu, "memory": memory}
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": _metadata(name, namespace),
            "spec": {"limits": [{"type": "Container", "default": dict(default),
                                 "defaultRequest": dict(default)}]}}


def _ports(numbers: tuple[int, ...], protocols: tuple[str, ...] = ("TCP",)) -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": number} for number in numbers for protocol in protocols]


def _policy(name: str, namespace: str, selector: dict[str, str], kind: str,
            rules: list[dict[str, Any]]) -> dict[str, Any]:
    """A NetworkPolicy of one ``kind`` (Ingress or Egress) for the pods matching ``selector`` (all when empty)."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(selector)} if selector else {}, "policyTypes": [kind],
                            kind.lower(): rules}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _metadata(name, namespace),
            "spec": spec}


def _namespace_pods(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {_NAME_LABEL: namespace}}, "podSelector": {"matchLabels": labels}}


def network_policies(namespace: str, *, kuberay_namespace: str = KUBERAY_NAMESPACE,
                     api_server_cidr: str = "0.0.0.0/0") -> list[dict[str, Any]]:
    """The namespace's traffic rules; whatever no policy allows is denied.

    - ``ingress-same-namespace``: every pod accepts connections from the namespace's own pods
      (Ray workers and head, torchrun ranks, the RayJob submitter, clients of the servers);
    - ``ingress-kuberay-operator``: Ray head pods accept the KubeRay operator on the dashboard and
      Serve ports (:data:`RAY_OPERATOR_PORTS`). No other operator connects to the kit's pods: Kueue
      v0.19.2, Kubeflow Trainer v2.3.0 and KServe v0.20.0 only talk to the API server (KServe's
      pkg/controller has no HTTP client: an InferenceService is ready when its Deployment is), and
      admission webhooks are called by the API server in the operators' namespaces, not here;
    - ``egress-dns-and-namespace``: pods reach cluster DNS and the namespace's pods, nothing else
      (kubelet pulls the images; the models and data are on volumes). Trainer's ``TrainJobStatus``
      status server, which training pods would call in ``kubeflow-system``, is an alpha feature gate,
      off in v2.3.0 (pkg/features/features.go), and the kit's training reports no status to it;
    - ``egress-api-server``: pods labelled :data:`kit.k8s.builders.pods.API_ACCESS_LABEL` (the head of an
      autoscaling Ray cluster) also reach the API server ports. ``api_server_cidr`` narrows where:
      the address of ``kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes``.
    """
    dns = _ports((53,), ("UDP", "TCP"))
    return [
        _policy("ingress-same-namespace", namespace, {}, "Ingress", [{"from": [{"podSelector": {}}]}]),
        _policy("ingress-kuberay-operator", namespace, RAY_HEAD_LABELS, "Ingress",
                [{"from": [_namespace_pods(kuberay_namespace, KUBERAY_OPERATOR_LABELS)],
                  "ports": _ports(RAY_OPERATOR_PORTS)}]),
        _policy("egress-dns-and-namespace", namespace, {}, "Egress",
                [{"to": [_namespace_pods(DNS_NAMESPACE, DNS_LABELS)], "ports": dns},
                 {"to": [{"podSelector": {}}]}]),
        _policy("egress-api-server", namespace, {pods.API_ACCESS_LABEL: "true"}, "Egress",
                [{"to": [{"ipBlock": {"cidr": api_server_cidr}}], "ports": _ports(API_SERVER_PORTS)}]),
    ]


def gpu_scheduling(gpus: int) -> dict[str, Any]:
    """Pod spec fields that place a GPU pod: the GPU node label, and the taint GPU nodes carry."""
    if not gpus:
        return {}
    return {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    }


def pod(name: str, namespace: str, command: list[str], *, image: str = versions.IMAGES["python"],
        cpu: str = "500m", memory: str = "512Mi", gpus: int = 0,
        labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """A single restricted Pod running ``command`` (in practice, let a Job or an operator make pods)."""
    template = pods.pod_template([pods.container("main", image, cpu, memory, gpus=gpus, command=command)])
    spec = {**template["spec"], **gpu_scheduling(gpus), "restartPolicy": "Never"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(name, namespace, labels), "spec": spec}


def batch_job(name: str, namespace: str, command: list[str], *, image: str = versions.IMAGES["python"],
              cpu: str = "500m", memory: str = "512Mi", gpus: int = 0, parallelism: int = 1,
              completions: int | None = None, backoff_limit: int = 2, ttl_seconds: int = 3600,
              queue: str | None = None) -> dict[str, Any]:
    """A batch Job: ``parallelism`` pods at a time until ``completions`` succeed, retried ``backoff_limit`` times.

    ``queue`` adds the Kueue label: Kueue then creates the Job suspended and lets
    it start only when the whole Job fits the queue's quota.
    """
    if parallelism < 1 or (completions is not None and completions < 1):
        raise ValueError(f"parallelism and completions must be >= 1, got {parallelism} and {completions}")
    template = pods.pod_template([pods.container("main", image, cpu, memory, gpus=gpus, command=command)])
    template["spec"] = {**template["spec"], **gpu_scheduling(gpus), "restartPolicy": "Never"}
    labels = {versions.QUEUE_LABEL: queue} if queue else None
    return {
        "apiVersion": versions.API_RESOURCES["Job"].api_version,
        "kind": "Job",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "parallelism": parallelism,
            "completions": completions if completions is not None else parallelism,
            "backoffLimit": backoff_limit,
            "ttlSecondsAfterFinished": ttl_seconds,
            "template": template,
        },
    }
