"""``python -m kit <command>``: the kit's one command line.

Every command follows the same conventions:

- exit 0 when it succeeded, 1 when what it checked or did failed, 2 for a usage error;
- a failure prints a message and its fix (a :class:`kit.errors.KitError`), never a traceback;
- ``--json`` where a program reads the output;
- each command's module is imported only when that command runs, so ``python -m kit doctor`` stays fast;
- argument parsing and printing live here (``kit/cli/<command>.py``); the library modules return data.
  What the library logs (``logging``, logger ``kit``) goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator

from kit.errors import KitError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: command -> ("module:function", help); the function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("kit.cli.doctor:main", "preflight checks with a fix for each problem (--json for organisers)"),
    "notebooks": ("kit.cli.notebooks:main", "generate notebooks/ from solutions/, check they are current"),
    "bench": ("kit.cli.bench:main", "benchmarks that print ratios measured side by side"),
    "validate": ("kit.cli.validate:main", "offline checks of manifests: schemas, admission rules, policy"),
    "crds": ("kit.cli.crds:main", "the pinned CRD files validate reads: ensure (make lab/test), check, fetch, urls"),
    "manifests": ("kit.cli.manifests:main", "write clusters/ from the kit's builders, or check it is current"),
    "cluster": ("kit.cli.cluster:main", "profile, apply, wait, diagnostics and port-forward on a cluster"),
    "deploy": ("kit.cli.deploy:main", "stage 09's plan: write it and its commands, apply it to a cluster, delete it"),
    "train": ("kit.cli.train:main", "train with one launcher (in-process, torchrun, ray-train, kubeflow-local)"),
    "serve": ("kit.cli.serve:main", "serve the trained model with Ray Serve, KServe or the FastAPI baseline"),
    "advise": ("kit.cli.advise:main", "recommendations for a workload, with reasons, sources and validated manifests"),
    "hackathon": ("kit.cli.hackathon:main", "organise a hackathon: event file, team namespaces and queues, JupyterHub"),
    "evaluate": ("kit.cli.evaluate:main", "evaluate a model beyond accuracy; --against: the promotion gate"),
}


def listing(usage_line: str, heading: str, table: dict[str, tuple[str, str]], width: int) -> str:
    """A usage text: the usage line, then each entry of ``table`` with its help."""
    lines = [usage_line, "", f"{heading}:"]
    lines += [f"  {name:<{width}} {help_text}" for name, (_, help_text) in table.items()]
    return "\n".join(lines)


def usage() -> str:
    return listing("usage: python -m kit <command> [options]", "commands", COMMANDS, 10)


def dispatch(table: dict[str, tuple[str, str]], argv: list[str], usage_text: str, noun: str) -> int:
    """``--help`` (exit 0), an unknown name (exit 2), or the named entry's function called with the rest of argv;
    its module is imported only then."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage_text)
        return EXIT_OK
    name, rest = argv[0], argv[1:]
    if name not in table:
        print(f"unknown {noun} {name!r}\n\n{usage_text}", file=sys.stderr)
        return EXIT_USAGE
    module_name, _, function = table[name][0].partition(":")
    return int(getattr(importlib.import_module(module_name), function)(rest) or EXIT_OK)


def command_parser(command: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of ``python -m kit <command>``: its module docstring is the help text."""
    return argparse.ArgumentParser(prog=f"python -m kit {command}", description=(doc or "").replace("``", "`"),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


class _StderrHandler(logging.Handler):
    """Log records as plain lines on the *current* ``sys.stderr`` (which tests and notebooks may swap)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr, flush=True)


@contextlib.contextmanager
def logging_to_stderr(level: int = logging.INFO) -> Iterator[None]:
    """While a command runs, show the kit's log records (logger ``kit``) on stderr at ``level``;
    restore the logger afterwards, so an in-process call (a test, a notebook) keeps its own setup."""
    logger, handler = logging.getLogger("kit"), _StderrHandler()
    previous = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a :class:`KitError` becomes its message and fix on stderr and exit code 1;
    a usage error (argparse) exits 2, ``--help`` 0, also when called in-process."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv else ""
    try:
        with logging_to_stderr():
            return dispatch(COMMANDS, argv, usage(), "command")
    except KitError as error:
        print(f"kit {name}: {error.explain()}", file=sys.stderr)
        return EXIT_FAILED
    except SystemExit as done:  # argparse: --help (0) or a usage error (2)
        if done.code is None or isinstance(done.code, int):
            return done.code or EXIT_OK
        print(f"kit {name}: {done.code}", file=sys.stderr)
        return EXIT_FAILED
