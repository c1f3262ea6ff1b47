"""Stage 09: the training and serving of stages 04-08 as one deployment plan for a cluster.

A :class:`Plan` is an ordered list of :class:`Step` s - the platform (namespace, quota,
queues, restricted runtime), the model, a RayJob, a TrainJob, a RayService and an
InferenceService - each with its documents (built by :mod:`kit.deploy.layout` from the same
configs a local run uses), the resources whose readiness says it worked, and, for the
servers, how to reach them. The plan is data; the verbs are separate:

- :func:`write` puts each step in its own YAML file, :func:`commands` prints the exact
  ``kubectl`` / ``python -m kit cluster`` lines that apply, wait, query and delete them;
- :func:`deploy` applies a step server-side and waits with :func:`kit.k8s.live.cluster.wait_for`
  (a timeout explains itself), :func:`predict` asks a served model through
  ``kubectl port-forward``, :func:`cleanup` deletes the workloads;
- :func:`rehearse_server` runs an InferenceService's own container command on this machine
  (loopback, local model directory), so the local profile exercises what the pod will run.
"""

from __future__ import annotations

import json
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

from kit import paths
from kit.config.serve import ServeConfig
from kit.config.train import ConfigError, TrainConfig
from kit.deploy import layout as clusters
from kit.k8s.builders import runtime, to_yaml
from kit.k8s.live import cluster

MODEL = "digits"


@dataclass
class Step:
    """One unit of the deployment: documents to apply, what to wait for, and (for servers) how to ask."""

    name: str
    title: str
    explains: str
    documents: list[dict]
    waits: list[tuple[str, str]] = field(default_factory=list)  # (kind, name), in order
    timeout_s: float = 600
    #: for servers: the port-forward to their Service (kit.k8s.live.cluster.serve_endpoint / inference_endpoint)
    endpoint: cluster.PortForward | None = None
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
    namespace: str = clusters.NAMESPACE
    queue: str = clusters.LOCAL_QUEUE

    def __post_init__(self) -> None:
        for index, step in enumerate(self.steps):
            step.index = index

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r} in this plan; steps: {', '.join(s.name for s in self.steps)}")

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
             "the namespace (Pod Security restricted), its ResourceQuota, LimitRange and NetworkPolicy, Kueue's "
             "flavor and queues, and the restricted training runtime (stage 01)", platform),
        Step("storage", "Shared volumes and the model",
             "a volume for models, with a Job that trains the digits model into it (the artifact of stages 07-08) "
             "for both servers to read, and a volume for the RayJob's checkpoints",
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
             cluster.serve_endpoint(rayservice["metadata"]["name"], clusters.NAMESPACE)),
        Step("inferenceservice", "Serve with an InferenceService",
             "KServe (Standard mode: a Deployment, no Knative) runs stage 08's model server; the predictor "
             "Service answers on port 80", [isvc], [("InferenceService", isvc["metadata"]["name"])], 900,
             cluster.inference_endpoint(isvc["metadata"]["name"], clusters.NAMESPACE)),
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
        lines.append(_shell(cluster.apply_command(["-f", path])))
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
        lines += [_shell(cluster.delete_command(["-f", _shown(directory / s.file_name)]))
                  for s in reversed(plan.workloads())]
    return lines


# --------------------------------------------------------------------------- on a cluster

Apply = Callable[..., Any]
Wait = Callable[..., dict]


def deploy(step: Step, namespace: str = clusters.NAMESPACE, *, apply: Apply = cluster.apply,
           wait: Wait = cluster.wait_for, diagnostics: Path | str | None = None) -> list[dict]:
    """Apply one step server-side and wait for each resource it names; return those resources.

    A wait that times out or sees the workload fail raises with the resource's conditions,
    Kueue workload, pod states, events and log tails (and writes a diagnostics bundle).
    """
    print(f"== {step.index}. {step.title}: applying {', '.join(step.kinds())}")
    print(apply(step.documents).strip())
    diagnostics = diagnostics if diagnostics is not None else diagnostics_dir()
    return [wait(kind, name, namespace, timeout=step.timeout_s, diagnostics_dir=diagnostics)
            for kind, name in step.waits]


class PredictError(RuntimeError):
    """A served model did not answer with predictions; the message says what came back."""


def predict(base_url: str, instances: list[list[float]], model: str = MODEL, timeout: float = 30.0) -> list[int]:
    """Ask a server (Ray Serve or KServe, v1 protocol) for the labels of ``instances``."""
    url = f"{base_url.rstrip('/')}/v1/models/{model}:predict"
    try:
        response = httpx.post(url, json=request_body(instances), timeout=timeout)
    except httpx.HTTPError as error:
        raise PredictError(f"POST {url} failed: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        raise PredictError(f"POST {url} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        predictions = response.json()["predictions"]
    except (ValueError, KeyError, TypeError):
        raise PredictError(f"POST {url} answered without 'predictions': {response.text[:300]}") from None
    return [int(p) for p in predictions]


def predict_in_cluster(step: Step, instances: list[list[float]]) -> list[int]:
    """Port-forward to a server step's Service on loopback, predict, and stop forwarding."""
    if step.endpoint is None:
        raise ValueError(f"step {step.name!r} serves nothing to ask")
    with step.endpoint as forward:
        return predict(forward.url, instances)


def cleanup(plan: Plan, steps: list[Step] | None = None, *, delete: Callable[..., Any] = cluster.delete) -> list[str]:
    """Delete the plan's workloads (or those of ``steps``), newest first; what is already gone is fine.
    The platform stays."""
    done = []
    for step in reversed([s for s in plan.workloads() if steps is None or s in steps]):
        output = delete(step.documents).strip()
        if output:
            print(output)
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
        raise ValueError(f"{kind} carries no training config (expected TrainJob, PyTorchJob or RayJob)")
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
    raise ValueError(f"no rehearsal for {doc.get('kind')}: expected a Job or an InferenceService")


def _python_module(container: dict) -> tuple[str, list[str]]:
    argv = [*container.get("command", []), *container.get("args", [])]
    if argv[:2] != ["python", "-m"] or len(argv) < 3:
        raise ValueError(f"expected a `python -m MODULE ...` container, got {argv}")
    return argv[2], argv[3:]


def rehearse_job(job: dict, mounts: dict[str, str], timeout_s: float = 300) -> str:
    """Run a Job's ``python -m`` container command here, its volumes mapped to local directories."""
    from kit.serve.process import kit_pythonpath

    module, args = _python_module(_pod_container(job))
    command = [sys.executable, "-m", module, *_localize(args, mounts)]
    env = dict(os.environ, PYTHONPATH=kit_pythonpath())
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"`{shlex.join(command)}` exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def rehearse_training(trainjob: dict, on_line: Callable[[str], None] | None = None):
    """A TrainJob's training here: torchrun with the same entry point, config and processes per node.

    The processes are the config's ``workers``; a manifest whose ``numProcPerNode`` was edited away
    from it is a ConfigError naming both (the job's ranks would refuse to train anyway).
    """
    from kit.train import launchers as launch

    trainer = trainjob["spec"]["trainer"]
    if trainer.get("numNodes", 1) != 1:
        raise ValueError("a rehearsal runs one node; set numNodes to 1")
    config = train_config_of(trainjob)
    procs = trainer.get("numProcPerNode", 1)
    if procs != config.workers:
        raise ConfigError("workers", f"the TrainJob starts numProcPerNode={procs} process(es) but its config says "
                                     f"workers={config.workers}; rebuild it with kit.deploy.layout.trainjob")
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


# --------------------------------------------------------------------------- command line


def cli(argv: list[str]) -> int:
    """``python -m kit deploy plan | apply | delete``: stage 09 without the notebook."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kit deploy", description=cli.__doc__)
    parser.add_argument("action", choices=("plan", "apply", "delete"),
                        help="plan: validate, write build/deploy/ and print the commands; apply: apply and wait "
                             "for each step and ask both servers; delete: remove the workloads")
    parser.add_argument("--profile", choices=("kind", "cluster"), default=None,
                        help="sizing of the target (default: what the kube context suggests)")
    parser.add_argument("--image", default="", help="the kit image in your registry (default: the lock's tag)")
    parser.add_argument("--step", action="append", default=None, help="only this step (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="where plan writes the files (build/deploy/)")
    args = parser.parse_args(argv)
    profile = args.profile or cluster.detect().profile
    plan = build_plan(clusters.sizing_for(profile, args.image))
    problems = validate(plan)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"the plan has {len(problems)} problem(s): nothing written or applied", file=sys.stderr)
        return 1
    try:
        steps = [plan.step(name) for name in args.step] if args.step else plan.steps
    except KeyError as error:
        parser.error(str(error.args[0]))
    try:
        if args.action == "plan":
            from kit.serve import artifact

            paths_written = write(plan, args.out, instances=artifact.sample_instances(4))
            print(plan.table())
            print(f"\nwrote {len(paths_written)} files; the commands:\n")
            for name in [s.name for s in steps]:
                print("\n".join(commands(plan, args.out, step=name)))
        elif args.action == "apply":
            from kit.serve import artifact

            instances = artifact.sample_instances(4)
            for step in steps:
                deploy(step, plan.namespace)
                if step.endpoint:
                    print(f"{step.name} predicts {predict_in_cluster(step, instances)}")
        else:
            print("deleted:", ", ".join(cleanup(plan, steps)) or "nothing")
    except (cluster.ClusterError, cluster.WaitError, cluster.PortForwardError, PredictError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0
