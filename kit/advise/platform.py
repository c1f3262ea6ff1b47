"""The plan's platform half: Kueue queues and quotas, storage, the security defaults, and the estimate.

Called by :func:`kit.advise.rules.advise` once the training and serving decisions are made.
"""

from __future__ import annotations

from kit.advise import figures as F
from kit.advise.rules import NODE_MARGIN_SOURCE, Contradiction, Plan, available, node_room
from kit.deploy import layout


def complete(plan: Plan) -> None:
    """Add queues, storage, security and the estimate to ``plan``."""
    _fits_nodes(plan)
    _queues(plan)
    _storage(plan)
    _security(plan)
    _estimate(plan)


def _fits_nodes(plan: Plan) -> None:
    """Every pod must fit one node, and a team's job its quota: otherwise Kueue admits what never schedules."""
    w = plan.workload
    if not w.kubernetes:
        return
    room = node_room(w)
    for what, pod in (("training pod", plan.worker), ("server pod", plan.server_pod)):
        if pod.cpu_millis and not pod.fits(room):
            raise Contradiction(
                f"the {what} asks {pod}, but a node offers {room} to one pod ({', '.join(pod.short_of(room))} short): "
                "Kueue would admit it against the quota and it would stay Pending",
                fix="use bigger nodes (node_cpus, node_memory_gb, gpus_per_node), or a smaller model")


    if plan.replicas and plan.server in ("kserve", "ray-serve"):
        peak = plan.server_pod * (plan.max_replicas + 1)  # the autoscaler's ceiling, plus one pod rolling in
        if not peak.fits(plan.team_quota):
            raise Contradiction(
                f"{plan.max_replicas} replicas at the autoscaler's ceiling (+1 rolling) need {peak}, more than the "
                f"namespace's share of the nodes, {plan.team_quota} ({', '.join(peak.short_of(plan.team_quota))} "
                "short)", fix="add nodes or CPUs (kind: Docker Desktop's Settings > Resources); a lower serve_rps "
                                   "or a higher p95_ms needs fewer replicas, but at least 2 always run")


def _queues(plan: Plan) -> None:
    w = plan.workload
    if not w.kubernetes:
        plan.add("queues", "none: no Kubernetes here", f"{w.where} runs one user's processes; Kueue queues "
                 "workloads on a cluster", "kit/advise/workload.py PLACES")
        return
    left = available(w)
    if w.teams == 1:
        plan.add("queues", f"one ClusterQueue and LocalQueue, quota {plan.team_quota}",
                 f"the nodes hold {left} once the operators run; one team takes it all, and Kueue admits each "
                 "workload whole (all its pods, or none)", "kit/deploy/sizing.py OPERATORS; kit/k8s/builders/kueue.py")
        return
    plan.add("queues", f"{w.teams} ClusterQueues (one per team namespace) in one cohort, nominal quota "
             f"{plan.team_quota} each, borrowing limit equal to it",
             f"the nodes hold {left} once the operators run, shared equally; idle quota is lent inside the cohort, "
             "so a busy team may run up to twice its share while others are quiet", F.KUEUE_COHORT.source)
    plan.add("queues", "fair sharing, weight 1 for every team; preemption reclaimWithinCohort: Any",
             "when every team is busy, borrowed quota goes back to its owner (preemption) and what is lent is "
             "shared by weight, not first come first served; the weights act once Kueue's Configuration enables "
             "fair sharing, which clusters/install-operators.sh does not do", f"{F.KUEUE_FAIR_SHARING.source}; "
             f"{F.KUEUE_PREEMPTION.source}")


def _storage(plan: Plan) -> None:
    w = plan.workload
    if not w.kubernetes:
        plan.add("storage", "local disk", f"{w.where}: every process shares one file system",
                 "kit/paths.py work_dir")
        return
    multi = w.nodes > 1
    plan.access_mode = "ReadWriteMany" if multi else "ReadWriteOnce"
    classes = ", ".join(layout.RWX_STORAGE_CLASSES)
    if multi:
        why = "pods on several nodes mount it at once"
        if w.training:
            why += ", and Ray Train refuses a per-pod local storage path on a multi-pod cluster"
    else:
        why = "one node: every pod mounts a ReadWriteOnce volume (kind's local-path class offers nothing else)"
    plan.add("storage", f"models and checkpoints on a {plan.access_mode} volume"
             + (f" (StorageClass {w.storage_class or 'one of: ' + classes})" if multi else ""),
             why, f"{F.RAY_TRAIN_STORAGE.source}; kit/deploy/layout.py RWX_STORAGE_CLASSES")
    if w.data_gb:
        plan.add("storage", "the data set in object storage (s3://, gs://), streamed by the workers"
                 if multi or w.data_gb > 1 else "the data set on the shared volume",
                 f"{w.data_gb:g} GB read by {max(plan.workers, plan.batch_workers, 1)} worker(s): object storage "
                 "scales reads without an RWX file system and is copied once, not per pod", F.RAY_TRAIN_STORAGE.source)


def _security(plan: Plan) -> None:
    w = plan.workload
    if not w.kubernetes:
        plan.add("security", "local only: servers bind 127.0.0.1", "nothing is exposed beyond this machine",
                 "kit/serve (the kit's servers bind 127.0.0.1)")
        return
    per = "each team's namespace" if w.teams > 1 else "the namespace"
    plan.add("security", f"{per} enforces Pod Security restricted, with a ResourceQuota and LimitRange",
             "pods run as non-root without privilege escalation or added capabilities; the quota caps what a "
             "team may request, the LimitRange gives requests to containers that forgot them", F.PSS.source)
    plan.add("security", "NetworkPolicies: pods reach DNS and their own namespace only; Ray heads accept the "
             "KubeRay operator", "what no policy allows is denied, so one team's pods cannot reach another's",
             "kit/k8s/builders/core.py network_policies")
    plan.add("security", "learners get a namespaced Role (no cluster-wide rights); Ray clusters use token auth; "
             "InferenceServices are cluster-local", "least privilege; nothing is exposed outside the cluster "
             "without an explicit port-forward", "kit/k8s/builders/rbac.py; kit/k8s/builders/training.py rayjob; "
             "kit/k8s/builders/serving.py VISIBILITY_LABEL")


def _estimate(plan: Plan) -> None:
    """GPU and CPU hours, energy and cost: an estimate, with every assumption printed."""
    w = plan.workload
    gpu_h = cpu_h = 0.0
    parts = []
    if w.training:  # every team trains
        pods = plan.nodes if w.gpus else plan.workers
        gpu_h += w.train_hours * plan.worker.gpus * plan.nodes * w.teams
        cpu_h += w.train_hours * plan.worker.cpu_millis / 1e3 * max(pods, 1) * w.teams
        parts.append(f"training {w.train_hours:g} h" + (f" for each of {w.teams} teams" if w.teams > 1 else ""))
    if plan.replicas:
        gpu_h += plan.replicas * plan.server_pod.gpus * F.HOURS_PER_MONTH
        cpu_h += plan.replicas * plan.server_pod.cpu_millis / 1e3 * F.HOURS_PER_MONTH
        parts.append(f"{plan.replicas} replica(s) for a month ({F.HOURS_PER_MONTH} h)")
    if plan.batch_workers:
        cpu_h += plan.batch_workers * 1.0 * w.batch_window_hours * 30
        parts.append(f"{plan.batch_workers} batch worker(s) x {w.batch_window_hours:g} h x 30 nights")
    watts = F.GPU_WATTS.value
    gpu_w = next((v for k, v in watts.items() if k in w.gpu_type.lower()), watts["h200"])
    kwh = (gpu_h * gpu_w + cpu_h * F.CPU_WATTS_PER_CORE.value) / 1e3 * F.PUE.value
    prices = F.PRICES.value
    gpu_price, cpu_price = w.usd_per_gpu_hour or prices["gpu_hour"], w.usd_per_cpu_hour or prices["cpu_hour"]
    billed = w.where in ("cluster", "gpu-pool")
    usd = gpu_h * gpu_price + cpu_h * cpu_price if billed else 0.0
    plan.estimate = {
        "label": "ESTIMATE, not a measurement",
        "covers": ", ".join(parts) or "nothing that runs for long",
        "gpu_hours": round(gpu_h, 1), "cpu_core_hours": round(cpu_h, 1), "energy_kwh": round(kwh, 2),
        "usd": round(usd, 2),
        "assumptions": [
            f"GPU power {gpu_w} W each at full load ({F.GPU_WATTS.source})",
            f"{F.CPU_WATTS_PER_CORE.value:.2f} W per requested core ({F.CPU_WATTS_PER_CORE.source})",
            f"PUE {F.PUE.value} ({F.PUE.source})",
            f"USD {gpu_price:g} per GPU-hour, {cpu_price:g} per core-hour "
            f"({'given' if w.usd_per_gpu_hour or w.usd_per_cpu_hour else F.PRICES.source})"
            if billed else f"{w.where}: your own machine, no bill",
            "training pods counted at their requests for the whole budget (a Ray head and job submitter not "
            "counted); servers at their minimum replicas all month; idle time would cost less",
            NODE_MARGIN_SOURCE,
        ],
    }
