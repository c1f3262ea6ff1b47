"""``python -m kit <command>``: the kit's one command line.

Every command follows the same conventions:

- exit 0 when it succeeded, 1 when what it checked or did failed, 2 for a usage error;
- a failure prints a message and its fix (a :class:`kit.errors.KitError`), never a traceback;
- ``--json`` where a program reads the output;
- each command's module is imported only when that command runs, so ``python -m kit doctor`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

from kit.errors import KitError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: command -> ("module:function", help); the function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("kit.machine.doctor:cli", "preflight checks with a fix for each problem (--json for organisers)"),
    "notebooks": ("kit.course.notebooks:cli", "generate notebooks/ from solutions/, check they are current"),
    "bench": ("kit.bench:cli", "benchmarks that print ratios measured side by side"),
    "validate": ("kit.k8s.validation.validate:cli", "offline checks of manifests: schemas, admission rules, policy"),
    "manifests": ("kit.deploy.layout:cli", "write clusters/ from the kit's builders, or check it is current"),
    "cluster": ("kit.k8s.live.cluster:cli", "profile, apply, wait, diagnostics and port-forward on a cluster"),
    "deploy": ("kit.deploy.plan:cli", "stage 09's plan: write it and its commands, apply it to a cluster, delete it"),
    "train": ("kit.cli.train:cli", "train with one launcher (inprocess, torchrun, ray, kubeflow); writes the model"),
    "serve": ("kit.cli.serve:cli", "serve the trained model with Ray Serve, KServe or the FastAPI baseline"),
}


def usage() -> str:
    lines = ["usage: python -m kit <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a :class:`KitError` becomes its message and fix on stderr and exit code 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return EXIT_OK
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_USAGE
    module_name, _, function = COMMANDS[name][0].partition(":")
    try:
        return int(getattr(importlib.import_module(module_name), function)(rest) or EXIT_OK)
    except KitError as error:
        print(f"kit {name}: {error.explain()}", file=sys.stderr)
        return EXIT_FAILED
