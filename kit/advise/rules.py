"""The advisor's decisions: each :class:`Recommendation` has its choice, its reason and its source.

:func:`advise` turns a :class:`~kit.advise.workload.Workload` into a :class:`Plan`: the training launcher and
its workers, pods and batch size; the serving stack, its replicas and batching; Kueue queues and quotas; storage;
the security defaults; an estimate. Numbers come from :mod:`kit.advise.figures` (measured or documented), the
kit's sizing (:mod:`kit.deploy.sizing`, :mod:`kit.deploy.layout`) and the kit's defaults (``TrainConfig``,
``ServeConfig``). A description that contradicts itself raises :class:`Contradiction` with the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kit.advise import figures as F
from kit.advise.workload import Workload
from kit.config.train import TrainConfig
from kit.deploy import layout, sizing
from kit.errors import KitError
from kit.k8s.requests import ZERO, Requests

_SIZING = "kit/deploy/layout.py Sizing (the kit's base sizing, which runs its workloads)"
_DEFAULTS = "kit/config/train.py TrainConfig (the kit's default, used by its benchmarks)"
#: What a node keeps for itself before pods (kubelet, system reservations, DaemonSets): the kit's stated margin.
NODE_MARGIN = Requests.parse("1", "2Gi")
NODE_MARGIN_SOURCE = "assumption: 1 core and 2 GiB of each node kept for kubelet, system and DaemonSet pods"
#: Cores one CPU training worker uses: on 2 cores, 2 workers ran no faster than 1 (torch's intra-op threads).
CPU_PER_WORKER = 2


class Contradiction(KitError, ValueError):
    """The workload asks for something its own description rules out."""


@dataclass(frozen=True)
class Recommendation:
    topic: str
    choice: str
    reason: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return {"topic": self.topic, "choice": self.choice, "reason": self.reason, "source": self.source}


@dataclass
class Plan:
    """The advice and the sizes the manifests are built from."""

    workload: Workload
    recommendations: list[Recommendation] = field(default_factory=list)
    launcher: str = "none"  # in-process | torchrun | ray-train | trainjob | rayjob | none
    workers: int = 0
    nodes: int = 0
    worker: Requests = ZERO  # one training pod
    batch_size: int = 0
    server: str = "none"  # kserve | ray-serve | llm | batch-job | none
    replicas: int = 0
    max_replicas: int = 0
    server_pod: Requests = ZERO
    max_batch_size: int = 1
    batch_workers: int = 0
    team_quota: Requests = ZERO
    access_mode: str = "ReadWriteOnce"
    estimate: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, F.Figure] = field(default_factory=dict)

    def add(self, topic: str, choice: str, reason: str, source: str) -> None:
        self.recommendations.append(Recommendation(topic, choice, reason, source))

    def topic(self, name: str) -> list[Recommendation]:
        return [r for r in self.recommendations if r.topic == name]


def _mib(byte_count: float) -> int:
    return math.ceil(byte_count / 2**20) * 2**20


def capacity(w: Workload) -> Requests:
    """All nodes together."""
    return Requests(int(w.node_cpus * 1000) * w.nodes, int(w.node_memory_gb * 1e9) // 2**20 * 2**20 * w.nodes,
                    w.gpus)


def available(w: Workload) -> Requests:
    """What is left for workloads once the operators (and on kind, the node's own pods and the VM) take theirs."""
    if w.where in ("laptop", "kind"):
        return sizing.budget(capacity(w), kind=True).available
    if w.kubernetes:
        return sizing.budget(capacity(w), kind=False).available
    return capacity(w)


def node_room(w: Workload) -> Requests:
    """What one pod may take of one node."""
    per_node = Requests(int(w.node_cpus * 1000), int(w.node_memory_gb * 1e9) // 2**20 * 2**20,
                        w.gpus_per_node or w.gpus)
    return per_node - NODE_MARGIN if w.where in ("cluster", "gpu-pool") else per_node


def advise(w: Workload, figures: dict[str, F.Figure] | None = None) -> Plan:
    """The plan for ``w``; raises :class:`Contradiction` when the description rules itself out."""
    plan = Plan(w, figures=figures if figures is not None else F.measured())
    _gpu_need(plan)
    plan.team_quota = _team_share(plan)
    if w.training:
        _train(plan)
    if w.online or w.model_kind == "llm":
        _serve(plan)
    if w.offline:
        _batch_inference(plan)
    if w.uses_ray and not w.kubernetes:
        ray = plan.figures["ray"]
        plan.add("ray", "one local Ray per Jupyter server, shared by every notebook (kit.machine.local_ray)",
                 f"starting Ray costs {ray['first notebook: import + start Ray']:.1f} s, attaching the next notebook "
                 f"to it {ray['next notebook: import + attach']:.1f} s", ray.source)
    from kit.advise import platform  # queues, storage, security, estimate: the rest of the plan

    platform.complete(plan)
    return plan


# --------------------------------------------------------------------------- contradictions about the hardware


def _gpu_need(plan: Plan) -> None:
    w = plan.workload
    if w.requires_gpu and not w.gpus:
        raise Contradiction(f"{w.name} requires a GPU, but {w.where} has none (gpus: 0)",
                            fix="run it where GPUs are (where: gpu-pool or workstation with gpus and gpu_memory_gb), "
                                "or drop requires_gpu if it also runs on CPUs")
    if w.gpus and w.training:
        state = w.params * F.TRAIN_BYTES_PER_PARAM.value / 1e9
        if state > w.gpus * w.gpu_memory_gb:
            raise Contradiction(
                f"training {w.params:.3g} parameters needs about {state:.0f} GB of GPU memory for weights, gradients "
                f"and Adam states ({F.TRAIN_BYTES_PER_PARAM.value} B each), more than all {w.gpus} GPUs hold "
                f"({w.gpus * w.gpu_memory_gb:.0f} GB)",
                fix="add GPUs, or fine-tune fewer parameters (LoRA adapters), or a smaller model")


def _team_share(plan: Plan) -> Requests:
    """Each team's share of what is left; explicit quotas must fit it (contradiction otherwise)."""
    w = plan.workload
    left = available(w)
    share = Requests(left.cpu_millis // w.teams, left.memory_bytes // w.teams // 2**20 * 2**20, left.gpus // w.teams)
    if w.team_cpus or w.team_memory_gb:
        asked = Requests(int(w.team_cpus * 1000) or share.cpu_millis,
                         _mib(w.team_memory_gb * 1e9) if w.team_memory_gb else share.memory_bytes, share.gpus)
        total = asked * w.teams
        if not total.fits(left):
            raise Contradiction(
                f"{w.teams} team quotas of {asked} need {total}, but the nodes leave {left} once the operators run "
                f"({', '.join(total.short_of(left))} short)",
                fix=f"lower team_cpus/team_memory_gb to at most {share} each, or add nodes")
        share = asked
    return share


# --------------------------------------------------------------------------- training


def _train(plan: Plan) -> None:
    w = plan.workload
    if w.gpus:
        _train_gpu(plan)
    elif w.where in ("laptop", "binder", "workstation"):
        _train_one_machine(plan)
    else:
        _train_cpu_cluster(plan)
    if not plan.worker.cpu_millis:
        plan.worker = Requests.parse(layout.BASE_SIZE.worker_cpu, _state_memory(w, per_process=1))
    if not plan.batch_size:
        plan.batch_size = TrainConfig().batch_size
        plan.add("batch size", f"{plan.batch_size} per worker, {plan.batch_size * plan.workers} in all",
                 "the kit's default per-worker batch; DDP averages gradients over workers, so the global batch "
                 "grows with them: scale the learning rate with it, or keep the global batch fixed", _DEFAULTS)


def _train_one_machine(plan: Plan) -> None:
    """In-process, unless two torchrun workers save more of the budget than torchrun's extra start-up costs."""
    w, train = plan.workload, plan.figures["train"]
    start, speedup = train["startup_s"], train["speedup_2_over_1"]
    saved_s = w.train_hours * 3600 * (1 - 1 / speedup) if speedup > 0 else 0.0
    extra_s = start["torchrun"] - start["in-process"]
    effect = f"save {saved_s:.0f} s" if saved_s >= 0 else f"lose {-saved_s:.0f} s"
    measured = (f"two workers ran {speedup:.2f}x as fast as one where measured, so over {w.train_hours:g} h they "
                f"{effect}; torchrun starts in {start['torchrun']:.1f} s vs {start['in-process']:.1f} s "
                f"in-process ({start['ray-train']:.1f} s for Ray Train)")
    if saved_s > extra_s and w.node_cpus >= 2:
        plan.launcher, plan.workers, plan.nodes = "torchrun", 2, 1
        plan.add("launcher", "torchrun, 2 workers (`python -m kit train --launcher torchrun`)",
                 f"no cluster and no GPU; {measured}: the saving outweighs the start-up", train.source)
    else:
        plan.launcher, plan.workers, plan.nodes = "in-process", 1, 1
        plan.add("launcher", "in-process (one process, `python -m kit train --launcher in-process`)",
                 f"no cluster and no GPU; {measured}: a second worker does not pay"
                 + (" (and this machine has one core)" if w.node_cpus < 2 else ""), train.source)


def _state_memory(w: Workload, per_process: int) -> str:
    """A worker pod's memory: the kit's base worker, plus training state for each process in the pod."""
    base = Requests.parse(0, layout.BASE_SIZE.worker_memory).memory_bytes
    state = 0.0 if w.gpus else w.params * F.TRAIN_BYTES_PER_PARAM.value * per_process
    return f"{_mib(base + state) // 2**20}Mi"


def _train_cpu_cluster(plan: Plan) -> None:
    w, train = plan.workload, plan.figures["train"]
    start, ratio = train["startup_s"], train["ratio_ray_over_torchrun"]
    # a RayJob's head schedules and trains nothing; a TrainJob has no such pod
    head = Requests.parse(layout.BASE_SIZE.head_cpu, layout.BASE_SIZE.head_memory) if w.uses_ray else ZERO
    room = node_room(w)
    cpu_each = min(CPU_PER_WORKER * 1000, room.cpu_millis, plan.team_quota.cpu_millis - head.cpu_millis)
    memory = Requests.parse(0, _state_memory(w, 1)).memory_bytes
    if cpu_each < 250 or memory > room.memory_bytes:
        raise Contradiction(f"one training worker ({memory / 2**30:.1f} GiB) does not fit a team's quota "
                            f"({plan.team_quota}) and a node's room ({room}) at once",
                            fix="add nodes or memory per node, give fewer teams a share, or train a smaller model")
    plan.worker = Requests(cpu_each, memory)
    budget = plan.team_quota - head
    plan.workers = max(1, min(budget.cpu_millis // cpu_each, budget.memory_bytes // memory, w.nodes))
    plan.nodes = plan.workers
    plan.add("workers", f"{plan.workers} worker(s) of {plan.worker.cpu} cpu, {plan.worker.memory}",
             f"one worker uses {CPU_PER_WORKER} cores (2 workers ran {train['speedup_2_over_1']:.2f}x one where "
             f"measured), one per node, as many as the team's quota {plan.team_quota} holds"
             + (" beside the Ray head" if w.uses_ray else ""),
             train.source)
    if w.uses_ray:
        plan.launcher = "rayjob"
        plan.add("launcher", "RayJob (Ray Train on a Ray cluster made for the job, queued by Kueue)",
                 f"the work already uses Ray (Tune, Data or Serve); Ray Train's steady epochs ran {ratio:.2f}x "
                 f"torchrun's, its start-up costs {start['ray-train']:.1f} s vs {start['torchrun']:.1f} s",
                 f"{train.source}; {F.KUBERAY_RAYJOB.source}")
    else:
        plan.launcher = "trainjob"
        plan.add("launcher", "TrainJob (Kubeflow Trainer, torchrun on the kit's restricted runtime, queued)",
                 f"plain PyTorch: torchrun starts in {start['torchrun']:.1f} s vs {start['ray-train']:.1f} s for Ray "
                 f"Train and runs epochs as fast (Ray/torchrun {ratio:.2f}); Trainer sets torchrun's environment "
                 "and Kueue admits all nodes at once", f"{train.source}; {F.TRAINER.source}")


def _train_gpu(plan: Plan) -> None:
    w = plan.workload
    per_node = w.gpus_per_node or w.gpus
    plan.nodes = math.ceil(w.gpus / per_node)
    plan.workers = w.gpus
    state_gb = w.params * F.TRAIN_BYTES_PER_PARAM.value / 1e9
    room = node_room(w)
    quota = plan.team_quota
    cpu = min(room.cpu_millis, quota.cpu_millis // plan.nodes)  # a node's pod, and all nodes within the quota
    host = Requests.parse(0, layout.BASE_SIZE.worker_memory).memory_bytes + w.params * 4 * per_node
    plan.worker = Requests(cpu, _mib(min(host, room.memory_bytes, quota.memory_bytes // plan.nodes)), per_node)
    plan.add("workers", f"{w.gpus} processes: {plan.nodes} node(s) x {per_node} GPU(s), one process per GPU",
             "DDP runs one process per GPU; each pod takes its node's GPUs and the node's CPUs less the margin "
             "for data loading", f"{F.ONE_PROCESS_PER_GPU.source}; {NODE_MARGIN_SOURCE}")
    fits_one = state_gb <= w.gpu_memory_gb
    plan.add("memory", f"about {state_gb:.1f} GB of training state per full model copy "
             f"({'fits' if fits_one else 'does not fit'} one {w.gpu_memory_gb:g} GB GPU)",
             f"{F.TRAIN_BYTES_PER_PARAM.value} bytes per parameter with Adam in mixed precision, activations on top"
             + ("" if fits_one else "; shard it over the GPUs (FSDP: not in the kit's train_func, which is DDP) "
                                    "or fine-tune adapters (LoRA)"), F.TRAIN_BYTES_PER_PARAM.source)
    train = plan.figures["train"]
    if w.where == "workstation" and w.uses_ray and w.gpus > 1:
        plan.launcher = "ray-train"
        plan.add("launcher", f"Ray Train on the local Ray ({w.gpus} GPU workers, `--launcher ray-train`)",
                 f"the work already uses Ray (Tune, Data); Ray Train's steady epochs ran "
                 f"{train['ratio_ray_over_torchrun']:.2f}x torchrun's, so its {train['startup_s']['ray-train']:.1f} s "
                 "start-up is the whole price", train.source)
    elif w.where == "workstation":
        plan.launcher = "torchrun" if w.gpus > 1 else "in-process"
        plan.add("launcher", f"{plan.launcher} ({w.gpus} GPU(s), no Kubernetes)",
                 "one machine: torchrun starts one process per GPU; with one GPU a single process does the same "
                 f"work without torchrun's start-up ({train['startup_s']['torchrun']:.1f} s)", train.source)
    elif w.uses_ray:
        plan.launcher = "rayjob"
        plan.add("launcher", "RayJob with GPU workers", "the work already uses Ray; KubeRay makes the cluster "
                 "for the job and Kueue admits it whole", F.KUBERAY_RAYJOB.source)
    else:
        plan.launcher = "trainjob"
        plan.add("launcher", f"TrainJob: numNodes {plan.nodes}, numProcPerNode {per_node}",
                 "Kubeflow Trainer runs torchrun on every node with the rendezvous set, and Kueue admits all "
                 "nodes at once (a gang: no node holds GPUs while another waits)", F.TRAINER.source)
    plan.batch_size = 512 if w.model_kind == "classifier" else 1
    plan.add("batch size", f"{plan.batch_size} per GPU" + (", doubled while memory allows" if plan.batch_size == 1
                                                           else ""),
             "the kit's GPU check trained at batch 512 and still could not keep an H200 busy: raise it until memory "
             "or accuracy stops you" if w.model_kind == "classifier" else
             "a language model's sequences are large: start at one per GPU, grow it or accumulate gradients",
             "README.md Figures, GPU lane (make test-gpu, 2026-11-26)")


# --------------------------------------------------------------------------- serving


def _serve(plan: Plan) -> None:
    w, serve = plan.workload, plan.figures["serve"]
    if w.model_kind == "llm":
        plan.server = "llm"
        weights_gb = w.params * F.SERVE_BYTES_PER_PARAM["gpu"] / 1e9
        if w.gpus and weights_gb > w.gpu_memory_gb:
            raise Contradiction(f"the LLM's weights take {weights_gb:.0f} GB in bf16, more than one "
                                f"{w.gpu_memory_gb:g} GB GPU holds (the KV cache needs room on top)",
                                fix="use GPUs with more memory, a smaller or quantised model, or tensor parallelism "
                                    "over several GPUs (vLLM's --tensor-parallel-size; stage 12 serves on one)")
        room = node_room(w)  # one replica per GPU: a GPU's share of its node's CPUs
        plan.server_pod = Requests(room.cpu_millis // max(room.gpus, 1),
                                   _mib(w.params * F.SERVE_BYTES_PER_PARAM["gpu"] + 2**30), 1 if w.gpus else 0)
        plan.add("serving", "KServe with vLLM (an LLMInferenceService, as stage 12 writes with "
                 "kit.k8s.builders.llm; no server manifest is written here: the model is yours)",
                 f"token streaming and KV-cache paging belong in an LLM server; weights alone take "
                 f"{w.params * F.SERVE_BYTES_PER_PARAM['gpu'] / 1e9:.1f} GB in bf16", F.KSERVE.source)
        if w.online:
            if w.p95_ms < (w.model_ms or 0.0):
                raise Contradiction(f"p95 {w.p95_ms:g} ms is below one request's own time, {w.model_ms:g} ms "
                                    "(model_ms), at any batch size",
                                    fix=f"raise p95_ms above {w.model_ms:g}, or generate fewer tokens per request")
            _replicas(plan, w.model_ms or 0.0, "LLM server")
        return
    hops = serve["ms_per_request"]
    model_ms = w.model_ms or serve["digits_model_ms"]["1"]
    batch16 = w.batch16_ms or (serve["digits_model_ms"]["16"] if w.kit_model else None)
    floor = min(hops["kserve v1"], hops["ray-serve one-hop"]) + model_ms
    if w.p95_ms < floor:
        raise Contradiction(
            f"p95 {w.p95_ms:g} ms is below what one replica can do at any batch size: {floor:.1f} ms "
            f"(the fastest HTTP server's measured cost per request, {floor - model_ms:.1f} ms, plus the model's "
            f"{model_ms:g} ms at batch 1; batching only adds waiting)",
            fix=f"raise p95_ms to at least {math.ceil(floor)}, call the model in-process (a DeploymentHandle "
                f"costs {hops['handle']:g} ms), or make the model faster and measure model_ms again")
    helps = False
    if batch16 is not None:
        from kit.bench.serve import explain

        bound = explain(model_ms, batch16, 16, hops["ray-serve one-hop"] - model_ms, 0.0, 0.0)
        helps = bound["batching_helps"]
        verdict = bound["verdict"]
    else:
        verdict = "batching's gain is unknown without batch16_ms: measure it before turning batching on"
    if helps or w.uses_ray:
        plan.server, stack_ms = "ray-serve", hops["ray-serve one-hop"]
        plan.max_batch_size = F.SERVE_BATCHING.value if helps else 1
        plan.add("serving", "Ray Serve (RayService), one-hop app" + (", dynamic batching" if helps else ""),
                 f"{verdict}; measured batched/unbatched: heavy model {serve['batching_gain']['heavy']}x, digits "
                 f"{serve['batching_gain']['digits']}x" if helps else
                 "the application composes Ray (uses_ray); one hop, since a second hop cost "
                 f"{hops['ray-serve two-hop'] - hops['ray-serve one-hop']:.1f} ms per request",
                 f"{serve.source}; {F.SERVE_BATCHING.source}")
    else:
        plan.server, stack_ms = "kserve", hops["kserve v1"]
        plan.add("serving", "KServe InferenceService (Standard mode, Open Inference Protocol)",
                 f"{verdict}; for one model behind HTTP KServe cost {hops['kserve v1']:g} ms per request vs "
                 f"{hops['ray-serve one-hop']:g} ms for Ray Serve's one-hop app", f"{serve.source}; {F.KSERVE.source}")
    per_request = stack_ms + (batch16 / 16 if helps and batch16 else model_ms)
    server_cpu = Requests.parse(2, 0).cpu_millis  # the figures were measured on 2 cores: a replica gets 2
    memory = Requests.parse(0, layout.BASE_SIZE.server_memory).memory_bytes + w.params * F.SERVE_BYTES_PER_PARAM["cpu"]
    plan.server_pod = Requests(server_cpu, _mib(memory))
    _replicas(plan, per_request, plan.server)


def _replicas(plan: Plan, per_request_ms: float, what: str) -> None:
    w = plan.workload
    if per_request_ms <= 0 and not w.replica_rps:
        raise Contradiction("no per-request time to size replicas with", fix="set model_ms (one request, measured)")
    mu = w.replica_rps or 1e3 / per_request_ms
    service_ms = 1e3 / mu
    slack = F.MM1_P95_FACTOR.value / (w.p95_ms / 1e3)
    if mu <= slack:
        best = service_ms * F.MM1_P95_FACTOR.value
        raise Contradiction(
            f"with random arrivals a replica serving {mu:.1f} req/s ({service_ms:.1f} ms each) answers 95 % of "
            f"requests within {best:.0f} ms at best, above p95 {w.p95_ms:g} ms",
            fix=f"raise p95_ms above {best:.0f}, or make each request cheaper "
                "(a faster model or accelerator, or batching if batch16_ms shows it pays)")
    per_replica = mu - slack
    needed = math.ceil(w.serve_rps / per_replica)
    plan.replicas = max(2, needed)
    plan.max_replicas = 2 * plan.replicas
    measured = "measured (replica_rps)" if w.replica_rps else f"at {per_request_ms:.1f} ms per request"
    plan.add("replicas", f"{plan.replicas} (autoscaling up to {plan.max_replicas}), {plan.server_pod} each",
             f"one {what} replica serves {mu:.0f} req/s {measured}; for p95 {w.p95_ms:g} ms under random arrivals "
             f"it may take {per_replica:.0f} req/s (mu - ln 20 / p95), so {w.serve_rps:g} req/s need {needed}; at "
             "least 2 so that one can restart or roll while the other answers; twice that as the autoscaler's "
             "ceiling", f"{F.MM1_P95_FACTOR.source}; per-request cost: "
             + ("replica_rps given" if w.replica_rps else plan.figures["serve"].source))
    if plan.server_pod.gpus and plan.replicas * plan.server_pod.gpus > w.gpus:
        raise Contradiction(f"{plan.replicas} replicas of one GPU each need {plan.replicas * plan.server_pod.gpus} "
                            f"GPUs; the pool has {w.gpus}",
                            fix="add GPUs, raise p95_ms, or measure a higher replica_rps (larger batches)")


def _batch_inference(plan: Plan) -> None:
    w, serve = plan.workload, plan.figures["serve"]
    if w.kit_model:
        per_row = serve["digits_model_ms"]["16"] / 16
    else:  # model_ms is required for another model (kit.advise.workload)
        per_row = w.batch16_ms / 16 if w.batch16_ms else float(w.model_ms or 0.0)
    hours = w.batch_rows * per_row / 1e3 / 3600
    plan.batch_workers = max(1, math.ceil(hours / w.batch_window_hours))
    plan.server = plan.server if plan.server != "none" else "batch-job"
    plan.add("batch inference", f"a queued Kubernetes Job, parallelism {plan.batch_workers}, batches of 16 rows",
             f"{w.batch_rows:,} rows at {per_row:.3f} ms per row (batch 16) take {hours:.2f} worker-hours; the window "
             f"is {w.batch_window_hours:g} h; no server stays up between runs, and Kueue runs it when quota frees "
             "(the kit has no batch-inference entry point: the Job's command is yours)",
             "batch16_ms given" if w.batch16_ms else serve.source)
