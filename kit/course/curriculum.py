"""The stage map: one list that stage 00 and the README table are built from."""

from __future__ import annotations

from dataclasses import dataclass

from kit.paths import REPO_ROOT as REPO


@dataclass(frozen=True)
class Stage:
    number: str
    slug: str
    title: str
    minutes: int
    teaches: str

    @property
    def notebook(self) -> str:
        return f"{self.number}_{self.slug}.ipynb"

    @property
    def available(self) -> bool:
        return (REPO / "solutions" / self.notebook).exists()


STAGES: tuple[Stage, ...] = (
    Stage("00", "welcome_and_doctor", "Welcome and doctor", 15,
          "how the kit works, exercises and checks, the doctor, the PROFILE parameter"),
    Stage("01", "kubernetes_for_ai", "Kubernetes for AI", 45,
          "Pods, Jobs, resources and GPUs, quotas, operators and CRDs, Kueue; validated manifests"),
    Stage("02", "ray_fundamentals", "Ray fundamentals", 45,
          "tasks, actors, the object store, resources and scheduling, failures and retries, RayCluster"),
    Stage("03", "distributed_data_parallel", "PyTorch DDP", 45,
          "ranks, all-reduce, gradient averaging, sharding, torchrun"),
    Stage("04", "ray_train", "Ray Train", 40, "TorchTrainer, checkpoints, fault tolerance, RayJob"),
    Stage("05", "kubeflow_trainer", "Kubeflow Trainer", 40,
          "TrainerClient local backend, TrainJob and runtimes, Kueue label, legacy PyTorchJob"),
    Stage("06", "hyperparameter_tuning", "Ray Tune", 35, "search spaces, ASHA, results; Katib"),
    Stage("07", "ray_serve", "Ray Serve", 45, "deployments, batching, autoscaling, composition, RayService"),
    Stage("08", "kserve_and_inference_protocol", "KServe and the inference protocol", 60,
          "v1 and v2 protocols, your own kserve.Model, InferenceService, canary in Standard mode, inference speed"),
    Stage("09", "deploy_on_kubernetes", "Deploy on Kubernetes", 60,
          "RayJob, TrainJob, RayService and InferenceService on a cluster by switching PROFILE"),
    Stage("10", "observability_and_sustainability", "Observe, evaluate and measure energy", 40,
          "Prometheus and PromQL, SLOs and tested burn-rate alerts, request-id logs, input drift, evaluation and a "
          "promotion gate, energy measured or estimated"),
    Stage("11", "hackathon_capstone", "Hackathon capstone", 120,
          "a team challenge: robust training under a compute budget, serving, a scorer with hidden labels"),
    Stage("12", "serving_language_models", "Serve a language model", 60,
          "a language model trained here, vLLM's OpenAI server, token streaming, TTFT/TPOT, continuous batching, "
          "KV-cache sizing, LLMInferenceService and Ray Serve LLM"),
)


def markdown_table() -> str:
    """The stage map as a Markdown table, marking stages not written yet."""
    rows = ["| stage | title | time | what it teaches |", "| --- | --- | --- | --- |"]
    for stage in STAGES:
        title = stage.title if stage.available else f"{stage.title} *(coming soon)*"
        rows.append(f"| {stage.number} | {title} | {stage.minutes} min | {stage.teaches} |")
    return "\n".join(rows)
