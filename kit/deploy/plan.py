"""Stage 09: the training and serving of stages 04-08 as one deployment plan for a cluster.

A :class:`Plan` is an ordered list of :class:`Step` s - the platform (namespace, quota,
queues, restricted runtime), the model, a RayJob, a TrainJob, a RayService and an
InferenceService - each with its documents (built by :mod:`kit.deploy.layout` from the same
configs a local run uses), the resources whose readiness says it worked, and, for the
servers, how to reach them. The plan is data; the verbs are separate:

- :func:`write` puts each step in its own YAML file, :func:`commands` prints the exact
  ``kubectl`` / ``python -m kit cluster`` lines that apply, wait, query and delete them;
- :func:`deploy` applies a step server-side and waits with :func:`kit.k8s.live.waits.wait_for`
  (a timeout explains itself), :func:`predict` asks a served model through
  ``kubectl port-forward``, :func:`cleanup` deletes the workloads;
- :func:`rehearse_server` runs an InferenceService's own container command on this machine
  (loopback, local model directory), so the local profile exercises what the pod will run.

The command line (``python -m kit deploy plan|apply|delete``) is :mod:`kit.cli.deploy`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kit import paths, versions
from kit.config.serve import ServeConfig
from kit.config.train import MODEL_NAME, ConfigError, TrainConfig
from kit.deploy import layout as clusters
from kit.errors import KitError
from kit.k8s.builders import runtime, serving, to_yaml
from kit.k8s.live import kubectl, portforward, waits

MODEL = MODEL_NAME

log = logging.getLogger(__name__)


class UnknownStep(KitError, KeyError):
    """A step name the plan does not have."""

    def __str__(self) -> str:
        return self.message  # a plain KeyError would show the message quoted


class PlanError(KitError, ValueError):
    """A document or step this module cannot use for what was asked (the message says why)."""


class RehearsalFailed(KitError, RuntimeError):
    """A pod's command, run on this machine, failed; the message has its output."""


class PredictError(KitError, RuntimeError):
    """A served model did not answer with predictions; the message says what came back."""


@dataclass
class Step:
    """One unit of the deployment: documents to apply, what to wait for, and (for servers) how to ask."""

    name: str
    title: str
    explains: str
    documents: list[dict]
    waits: list[tuple[str, str]] = field(default_factory=list)  # (kind, name), in order
    timeout_s: float = 600
    #: for servers: the port-forward to their Service (kit.k8s.live.portforward.serve_endpoint / inference_endpoint)
    endpoint: portforward.PortForward | None = None
    index: int = 0

    @property
    def file_name(self) -> str:
        return f"{self.index:02d}-{self.name}.yaml"

    def kinds(self) -> list[str]:
        return [f"{doc['kind']}/{doc['metadata']['name']}" for doc in self.documents]


@dataclass
class Plan:
    """The steps in the order they are applied, and where they go."""

    steps: list[Step]
    namespace: str = versions.NAMESPACE
    queue: str = versions.LOCAL_QUEUE

    def __post_init__(self) -> None:
        for index, step in enumerate(self.steps):
            step.index = index

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        steps = ", ".join(s.name for s in self.steps)
        raise UnknownStep(f"no step {name!r} in this plan; steps: {steps}", fix=f"name one of: {steps}")

    def documents(self) -> list[dict]:
        return [doc for step in self.steps for doc in step.documents]

    def workloads(self) -> list[Step]:
        """The steps :func:`cleanup` deletes: everything but the platform."""
        return [step for step in self.steps if step.name != "platform"]

    def table(self) -> str:
        """Per step: its file and what it waits for, then its resources."""
        rows = []
        for step in self.steps:
            waits = ", ".join(f"{kind}/{name}" for kind, name in step.waits) or "nothing (no controller to wait on)"
            rows.append(f"{step.file_name:<26} waits for {waits}")
            rows.append(textwrap.fill(", ".join(step.kinds()), width=100, initial_indent="    ",
                                      subsequent_indent="    "))
        return "\n".join(rows)


def build_plan(size: clusters.Sizing = clusters.BASE_SIZE, *, train_config: TrainConfig | dict | None = None,
               serve_config: ServeConfig | None = None, model_epochs: int = 20) -> Plan:
    """The stage 09 deployment for a cluster of ``size`` (``clusters.OVERLAYS["local-kind"]`` for kind)."""
    rayjob = clusters.rayjob(size, train_config)
    trainjob = clusters.trainjob(size, train_config)
    rayservice = clusters.rayservice(size, serve_config)
    isvc = clusters.inferenceservice(size)
    *claims, publish = clusters.storage(size, epochs=model_epochs)
    platform = [*clusters.platform(size), *clusters.queues(size), runtime.torch_distributed_restricted()]
    steps = [
        Step("platform", "Namespace, quota and queues",
             "the namespace (Pod Security restricted), its ResourceQuota, LimitRange, NetworkPolicies and the "
             "learners' Role, Kueue's flavor and queues, and the restricted training runtime (stage 01)", platform),
        Step("storage", "Shared volumes and the model",
             "a volume for models, with a Job that trains the digits model into it with train_func (the serving "
             "artifact both servers read; the RayJob and TrainJob then write theirs there), and a volume for the "
             "RayJob's checkpoints",
             [*claims, publish], [("Job", publish["metadata"]["name"])], 600),
        Step("rayjob", "Train with a RayJob",
             "KubeRay makes a Ray cluster for this job, runs Ray Train on it (stage 04's run_ray_train), "
             "then deletes the cluster", [rayjob], [("RayJob", rayjob["metadata"]["name"])], 1200),
        Step("trainjob", "Train with a TrainJob",
             "Kubeflow Trainer runs torchrun with the kit's training entry point on the restricted runtime "
             "(stage 05's train_func)", [trainjob], [("TrainJob", trainjob["metadata"]["name"])], 1200),
        Step("rayservice", "Serve with a RayService",
             "KubeRay runs the Serve application of stage 07 from its serveConfigV2; the Serve proxy listens on "
             "port 8000 of the <name>-serve-svc Service", [rayservice],
             [("RayService", rayservice["metadata"]["name"])], 900,
             portforward.serve_endpoint(rayservice["metadata"]["name"], versions.NAMESPACE)),
        Step("inferenceservice", "Serve with an InferenceService",
             "KServe (Standard mode: a Deployment, no Knative) runs stage 08's model server; the predictor "
             "Service answers on port 80", [isvc], [("InferenceService", isvc["metadata"]["name"])], 900,
             portforward.inference_endpoint(isvc["metadata"]["name"], versions.NAMESPACE)),
    ]
    return Plan(steps)


def validate(plan: Plan) -> list:
    """Schema, policy and queue-label problems of every document in the plan (empty when all is valid)."""
    from kit.k8s.validation import validate as validator

    return validator.validate_documents(plan.documents(), "stage-09 plan", queue=plan.queue)


def default_directory() -> Path:
    return paths.work_dir("deploy")


def write(plan: Plan, directory: Path | str | None = None,
          instances: list[list[float]] | None = None) -> list[Path]:
    """Each step's documents as ``NN-name.yaml`` under ``directory`` (build/deploy/), and ``request.json``
    (the predict body of ``instances``) for the curl commands; return the paths."""
    directory = Path(directory) if directory is not None else default_directory()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for step in plan.steps:
        path = directory / step.file_name
        path.write_text(to_yaml(step.documents))
        written.append(path)
    if instances is not None:
        request = directory / "request.json"
        request.write_text(json.dumps(request_body(instances)))
        written.append(request)
    return written


def request_body(instances: list[list[float]]) -> dict:
    """The v1 predict body both servers accept."""
    return {"instances": instances}


def _shell(command: Iterable[str]) -> str:
    return shlex.join(list(command))


def diagnostics_dir() -> Path:
    """Where a failed wait writes its diagnostics bundle."""
    return paths.work_dir("cluster-diagnostics", create=False)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when that is shorter (commands to copy into a terminal)."""
    relative = os.path.relpath(path)
    return relative if len(relative) < len(str(path)) else str(path)


def commands(plan: Plan, directory: Path | str | None = None, *, step: str | None = None,
             request_file: str = "request.json") -> list[str]:
    """The exact commands that apply, wait for, query and delete the written plan (``step`` limits it to one)."""
    directory = Path(directory) if directory is not None else default_directory()
    lines: list[str] = []
    for current in plan.steps if step is None else [plan.step(step)]:
        path = _shown(directory / current.file_name)
        lines.append(f"# {current.index}. {current.title}")
        lines.append(_shell(kubectl.apply_command(["-f", path])))
        for kind, name in current.waits:
            lines.append(_shell(["python", "-m", "kit", "cluster", "wait", kind, name, "-n", plan.namespace,
                                 "--timeout", f"{current.timeout_s:g}", "--diagnostics", _shown(diagnostics_dir())]))
        if current.endpoint:
            forward = current.endpoint
            lines.append(_shell(forward.command()) + " &")
            url = f"http://{forward.address}:{forward.local_port or forward.remote_port}/v1/models/{MODEL}:predict"
            lines.append(_shell(["curl", "-sS", "-H", "Content-Type: application/json",
                                 "--data", f"@{_shown(directory / request_file)}", url]))
            lines.append("kill %1  # stop the port-forward")
    if step is None:
        lines.append("# clean up (the namespace and its queues stay)")
        lines += [_shell(kubectl.delete_command(["-f", _shown(directory / s.file_name)]))
                  for s in reversed(plan.workloads())]
    return lines


# --------------------------------------------------------------------------- on a cluster

Apply = Callable[..., Any]
Wait = Callable[..., dict]


def deploy(step: Step, namespace: str = versions.NAMESPACE, *, apply: Apply = kubectl.apply,
           wait: Wait = waits.wait_for, diagnostics: Path | str | None = None) -> list[dict]:
    """Apply one step server-side and wait for each resource it names; return those resources.

    A wait that times out or sees the workload fail raises with the resource's conditions,
    Kueue workload, pod states, events and log tails (and writes a diagnostics bundle).
    """
    log.info("== %d. %s: applying %s", step.index, step.title, ", ".join(step.kinds()))
    log.info("%s", apply(step.documents).strip())
    diagnostics = diagnostics if diagnostics is not None else diagnostics_dir()
    return [wait(kind, name, namespace, timeout=step.timeout_s, diagnostics_dir=diagnostics)
            for kind, name in step.waits]


def predict(base_url: str, instances: list[list[float]], model: str = MODEL, timeout: float = 30.0) -> list[int]:
    """Ask a server (Ray Serve or KServe, v1 protocol) for the labels of ``instances``."""
    url = f"{base_url.rstrip('/')}/v1/models/{model}:predict"
    try:
        response = httpx.post(url, json=request_body(instances), timeout=timeout)
    except httpx.HTTPError as error:
        raise PredictError(f"POST {url} failed: {type(error).__name__}: {error}",
                           fix="check that the server runs and that its port-forward is up "
                               "(`python -m kit cluster diagnostics` on a cluster)") from None
    if response.status_code != 200:
        raise PredictError(f"POST {url} answered HTTP {response.status_code}: {response.text[:300]}",
                           fix="read the server's answer above and its logs; a 4xx means the request "
                               "does not fit the model (64 floats per instance)")
    try:
        predictions = response.json()["predictions"]
    except (ValueError, KeyError, TypeError):
        raise PredictError(f"POST {url} answered without 'predictions': {response.text[:300]}",
                           fix=f"point the request at a v1 model server serving {model!r}") from None
    return [int(p) for p in predictions]


def predict_in_cluster(step: Step, instances: list[list[float]]) -> list[int]:
    """Port-forward to a server step's Service on loopback, predict, and stop forwarding."""
    if step.endpoint is None:
        raise PlanError(f"step {step.name!r} serves nothing to ask",
                        fix="ask a server step: rayservice or inferenceservice")
    with step.endpoint as forward:
        return predict(forward.url, instances)


def cleanup(plan: Plan, steps: list[Step] | None = None, *, delete: Callable[..., Any] = kubectl.delete) -> list[str]:
    """Delete the plan's workloads (or those of ``steps``), newest first; what is already gone is fine.
    The platform stays."""
    done = []
    for step in reversed([s for s in plan.workloads() if steps is None or s in steps]):
        output = delete(step.documents).strip()
        if output:
            log.info("%s", output)
        done.append(step.name)
    return done


# --------------------------------------------------------------------------- on this machine


def train_config_of(doc: dict) -> TrainConfig:
    """The TrainConfig a TrainJob, PyTorchJob or RayJob carries in its command (the JSON argument)."""
    kind = doc.get("kind")
    if kind == "TrainJob":
        argv = doc["spec"]["trainer"]["command"]
    elif kind == "RayJob":
        argv = shlex.split(doc["spec"]["entrypoint"])
        argv = argv[argv.index("--config") + 1:]
    elif kind == "PyTorchJob":
        argv = doc["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
    else:
        raise PlanError(f"{kind} carries no training config",
                        fix="pass a TrainJob, PyTorchJob or RayJob built by kit.k8s.builders.training")
    return TrainConfig.from_dict(json.loads(argv[-1]))


def _localize(argv: list[str], mounts: dict[str, str]) -> list[str]:
    """``argv`` with paths under a pod's mount points moved to local directories."""
    out = []
    for arg in argv:
        for mount, local in mounts.items():
            if arg == mount or arg.startswith(mount + "/"):
                arg = str(local) + arg[len(mount):]
        out.append(arg)
    return out


def _pod_container(doc: dict) -> dict:
    if doc.get("kind") == "InferenceService":
        return doc["spec"]["predictor"]["containers"][0]
    if doc.get("kind") == "Job":
        return doc["spec"]["template"]["spec"]["containers"][0]
    raise PlanError(f"no rehearsal for {doc.get('kind')}", fix="rehearse a Job or an InferenceService")


def _python_module(container: dict) -> tuple[str, list[str]]:
    argv = [*container.get("command", []), *container.get("args", [])]
    if argv[:2] != ["python", "-m"] or len(argv) < 3:
        raise PlanError(f"expected a `python -m MODULE ...` container, got {argv}",
                        fix="rehearse a document built by the kit's builders (their containers run `python -m`)")
    return argv[2], argv[3:]


def rehearse_job(job: dict, mounts: dict[str, str], timeout_s: float = 300) -> str:
    """Run a Job's ``python -m`` container command here, its volumes mapped to local directories."""
    from kit.serve.process import kit_pythonpath

    module, args = _python_module(_pod_container(job))
    command = [sys.executable, "-m", module, *_localize(args, mounts)]
    env = dict(os.environ, PYTHONPATH=kit_pythonpath())
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        raise RehearsalFailed(f"`{shlex.join(command)}` exited with {done.returncode}:\n{done.stdout}{done.stderr}",
                              fix="the output above says what the pod would have said: fix the config it names")
    return done.stdout.strip()


def rehearse_training(trainjob: dict, on_line: Callable[[str], None] | None = None,
                      mounts: dict[str, str] | None = None):
    """A TrainJob's training here: torchrun with the same entry point, config and processes per node.

    The artifact the pod writes to the models volume (``/models/<name>``) goes to ``mounts["/models"]``
    here (default: the kit's ``models/`` work directory, the standard location the servers read).
    The processes are the config's ``workers``; a manifest whose ``numProcPerNode`` was edited away
    from it is a ConfigError naming both (the job's ranks would refuse to train anyway).
    """
    from kit.train import launchers as launch

    trainer = trainjob["spec"]["trainer"]
    if trainer.get("numNodes", 1) != 1:
        raise PlanError("a rehearsal runs one node", fix="set spec.trainer.numNodes to 1")
    mounts = mounts if mounts is not None else {serving.MODELS_MOUNT: str(paths.work_dir("models"))}
    config = train_config_of(trainjob)
    if config.model_dir:
        config = config.replace(model_dir=_localize([config.model_dir], mounts)[0])
    procs = trainer.get("numProcPerNode", 1)
    if procs != config.workers:
        raise ConfigError("workers", f"the TrainJob starts numProcPerNode={procs} process(es) but its config says "
                                     f"workers={config.workers}", fix="rebuild it with kit.deploy.layout.trainjob")
    return launch.run_torchrun(config, on_line=on_line)


def rehearse_server(isvc: dict, model_dir: Path | str):
    """The InferenceService's container command as a loopback process here (not started: use ``with``).

    Same module and arguments as the pod, except what only a pod has: ``/mnt/models`` becomes
    ``model_dir``, ``0.0.0.0`` becomes 127.0.0.1 and the port a free one.
    """
    from kit.serve.process import ServerProcess, free_port

    container = _pod_container(isvc)
    module, args = _python_module(container)
    args = _localize(args, {"/mnt/models": str(model_dir)})
    port = free_port()
    for i, arg in enumerate(args[:-1]):
        if arg in ("--host", "--port"):
            args[i + 1] = "127.0.0.1" if arg == "--host" else str(port)
    probe = container.get("readinessProbe", {}).get("httpGet", {}).get("path", "/v2/health/ready")
    return ServerProcess(module, args, port=port, ready_path=probe, name="rehearsal")
