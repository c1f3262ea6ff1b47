"""``python -m kit deploy plan|apply|delete``: stage 09 without the notebook.

``plan`` validates the plan, checks that it fits the cluster (``--capacity``, the nodes' cpu and
memory; for kind, Docker Desktop's default 4cpu,8Gi) once the operators take their share, writes each
step under build/deploy/ and prints the requests against the capacity and the commands that apply,
wait for, query and delete it (``--json``: the same as data); ``apply`` applies each step, waits for
it and asks both servers; ``delete`` removes the workloads.
``--pin-image IMAGE@sha256:...`` (repeatable) pins that image by digest in every step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from kit.cli import EXIT_FAILED, EXIT_OK, command_parser
from kit.errors import KitError

if TYPE_CHECKING:  # the plan imports the builders and httpx: only when the command runs
    from kit.deploy.plan import Plan, Step
    from kit.deploy.sizing import Fit
    from kit.k8s.validation.problems import Problem


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("deploy", __doc__)
    parser.add_argument("action", choices=("plan", "apply", "delete"),
                        help="plan: validate, write build/deploy/ and print the commands; apply: apply and wait "
                             "for each step and ask both servers; delete: remove the workloads")
    parser.add_argument("--profile", choices=("kind", "cluster"), default=None,
                        help="sizing of the target (default: what the kube context suggests)")
    parser.add_argument("--image", default="", help="the kit image in your registry (default: the lock's tag)")
    parser.add_argument("--pin-image", action="append", default=[], metavar="IMAGE@sha256:DIGEST",
                        help="pin IMAGE (as the manifests name it) to this digest in every step (repeatable)")
    parser.add_argument("--storage-class", default=None,
                        help="StorageClass of the shared volumes (models, checkpoints); on several nodes one that "
                             "offers ReadWriteMany, e.g. nfs-client, efs-sc, standard-rwx, azurefile-csi "
                             "(default: the cluster's default class)")
    parser.add_argument("--capacity", default=None,
                        help="what the cluster's nodes offer, e.g. 4cpu,8Gi or 64cpu,256Gi,4gpu; the plan must fit "
                             "it with the operators running (default: 4cpu,8Gi, Docker Desktop's, for --profile "
                             "kind; not checked otherwise)")
    parser.add_argument("--step", action="append", default=None, help="only this step (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="where plan writes the files (build/deploy/)")
    parser.add_argument("--json", action="store_true", help="plan: print the steps, files and commands as JSON")
    return parser


def main(argv: list[str]) -> int:
    from kit.deploy import layout
    from kit.deploy import plan as stage09
    from kit.k8s.builders import pods
    from kit.k8s.live import context

    parser = _parser()
    args = parser.parse_args(argv)
    profile = args.profile or context.detect().profile
    plan = stage09.build_plan(layout.sizing_for(profile, args.image, args.storage_class))
    pins = pods.parse_pins(args.pin_image)
    pods.check_pins(plan.documents(), pins)
    for step in plan.steps:
        step.documents = pods.pin_images(step.documents, pins)
    try:
        steps = [plan.step(name) for name in args.step] if args.step else plan.steps
    except stage09.UnknownStep as error:
        parser.error(error.message)  # exits 2
    problems = stage09.validate(plan)
    fit = _fit(plan, profile, args.capacity)
    if args.json and args.action == "plan":
        return _plan_json(plan, steps, problems, args.out, fit)
    if problems:
        raise KitError(f"the plan has {len(problems)} problem(s); nothing written or applied:\n  "
                       + "\n  ".join(map(str, problems)),
                       fix="change the builders or configs the problems name (`python -m kit validate` "
                           "explains each rule), then plan again")
    if fit is not None and args.action != "delete":
        from kit.deploy import sizing

        sizing.check_fit(plan.documents(), fit.budget)  # a DoesNotFit names the shortfall and the fix
    if args.action == "plan":
        if fit is not None:
            print(f"requests against capacity:\n{fit.report()}\n")
        _plan(plan, steps, args.out)
    elif args.action == "apply":
        _apply(plan, steps)  # kubectl, wait and port-forward errors are KitErrors: kit.cli shows their fix
    else:
        print("deleted:", ", ".join(stage09.cleanup(plan, steps)) or "nothing")
    return EXIT_OK


def _plan(plan: Plan, steps: list[Step], out: Path | None) -> None:
    from kit.deploy import plan as stage09
    from kit.serve import predictor

    written = stage09.write(plan, out, instances=predictor.sample_instances(4))
    print(plan.table())
    print(f"\nwrote {len(written)} files; the commands:\n")
    for step in steps:
        print("\n".join(stage09.commands(plan, out, step=step.name)))


def _fit(plan: Plan, profile: str, capacity: str | None) -> Fit | None:
    """The plan's requests against ``capacity`` (kind: Docker Desktop's by default) less the operators';
    None when there is nothing to compare with."""
    from kit.deploy import sizing

    if capacity is None and profile != "kind":
        return None
    size = sizing.parse_capacity(capacity) if capacity else sizing.DOCKER_DESKTOP
    return sizing.fit(plan.documents(), sizing.budget(size, kind=profile == "kind"))


def _fit_json(fit: Fit | None) -> dict[str, object] | None:
    if fit is None:
        return None
    amounts = {"capacity": fit.budget.capacity, "available": fit.budget.available,
               "kueue_quota": fit.queued_at_once, "unqueued_peak": fit.unqueued, "needed": fit.needed}
    return {"fits": fit.ok, "short": fit.short, "never_admitted": [w.name for w in fit.never_admitted],
            **{key: {"cpu": value.cpu, "memory": value.memory, "gpus": value.gpus} for key, value in amounts.items()}}


def _plan_json(plan: Plan, steps: list[Step], problems: list[Problem], out: Path | None, fit: Fit | None) -> int:
    """The plan as data; files are written only when it is valid and fits."""
    from kit.deploy import plan as stage09
    from kit.serve import predictor

    fits = fit is None or fit.ok
    written = [] if problems or not fits else stage09.write(plan, out, instances=predictor.sample_instances(4))
    report = {
        "valid": not problems,
        "fit": _fit_json(fit),
        "problems": [problem.to_dict() for problem in problems],
        "namespace": plan.namespace,
        "files": [str(path) for path in written],
        "steps": [{"name": step.name, "title": step.title, "file": step.file_name, "resources": step.kinds(),
                   "waits": [f"{kind}/{name}" for kind, name in step.waits],
                   "commands": stage09.commands(plan, out, step=step.name)} for step in steps],
    }
    print(json.dumps(report, indent=2))
    return EXIT_FAILED if problems or not fits else EXIT_OK


def _apply(plan: Plan, steps: list[Step]) -> None:
    from kit.deploy import plan as stage09
    from kit.serve import predictor

    instances = predictor.sample_instances(4)
    for step in steps:
        stage09.deploy(step, plan.namespace)
        if step.endpoint:
            print(f"{step.name} predicts {stage09.predict_in_cluster(step, instances)}")
