"""Every recorded output in ``solutions/`` is something a learner can read and trust.

nbval compares only the cells marked ``NBVAL_CHECK_OUTPUT``; everything else a solution shows was never
checked, so a stale or noisy recording went unnoticed. This test reads every output of every solution and
fails on:

- a traceback, outside a cell meant to raise (tagged ``raises-exception``, the tag papermill and nbval honour,
  or marked ``# NBVAL_RAISES_EXCEPTION``);
- an ANSI escape (colour codes from a log);
- a machine path: ``/root/``, ``/home/``, ``/work/``, a ``/tmp/`` file, or the CRD directory;
- an IPv4 address other than loopback (``0.0.0.0``, "every interface" in a manifest, is not an address),
  or a host name (this machine's, or one a log line names with ``hostname=``/``node_name=``);
- a frozen progress widget (a widget view saved at 0 %: the recording keeps no widget state);
- an image, or a pinned package's version, that the version lock (``kit/versions.py``) does not name.

Each notebook is its own test, and the failure lists every violation as ``cell N: rule: excerpt``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kit import versions
from kit.course.exercises import stage09
from kit.course.notebooks import is_empty_display
from kit.k8s import traverse
from kit.k8s.validation import crds
from kit.paths import REPO_ROOT

SOLUTIONS = sorted((REPO_ROOT / "solutions").glob("*.ipynb"))

#: Paths that are pods', not this machine's: Ray's temp directory (an emptyDir in every Ray pod).
POD_PATHS = ("/tmp/ray",)
#: Images a recording may show although the lock does not name them: the ones an exercise asks the learner to
#: replace (computed from the exercise, so a changed exercise changes this set).
TAUGHT_WRONG_IMAGES = frozenset(image for _, image in traverse.images(stage09.broken_rayjob()))
#: Distributions whose "name version" in an output must be the pinned one ("kubernetes" is left out: it names
#: the Python client's pin and the cluster's version alike).
CHECKED_DISTRIBUTIONS = tuple(sorted((set(versions.PYTHON_PINS) | set(versions.OPERATORS)) - {"kubernetes"},
                                     key=len, reverse=True))

_TRACEBACK = "Traceback (most recent call last)"
_PATH_CHARS = r"[^\s'\"\[\]{}(),;]*"
_MACHINE_PATH = re.compile(rf"(?<![\w.~-])/(?:root|home|work)/{_PATH_CHARS}|(?<![\w.~-])/tmp/[\w.-]+{_PATH_CHARS}")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_NAMED_HOST = re.compile(r"\b(?:hostname|node_name|node_ip_address|host_name)\s*[=:]\s*['\"]?([A-Za-z0-9][\w.-]*)")
_WIDGET = "application/vnd.jupyter.widget-view+json"
_ZERO_PROGRESS = re.compile(r"(?<!\d)0%\|")
_IMAGE = re.compile(
    r"(?<![\w./:-])((?:[a-z0-9][a-z0-9.-]*(?::\d+)?/)+[a-z0-9][a-z0-9._-]*|python|ubuntu|busybox|alpine|debian)"
    r":([A-Za-z0-9][\w.-]{0,127})(@sha256:[0-9a-f]{64})?")
_VERSION = re.compile(r"v?\d+(?:\.\d+)+")
_PINNED = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, CHECKED_DISTRIBUTIONS)) +
                     r")(?:\[[\w,]*\])?(?:==| )v?(\d+(?:\.\d+)+)(?![\w.])")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "0.0.0.0", "::1"}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in _strings(v)]
    return []


def _lock_strings() -> list[str]:
    values = [v for name, v in vars(versions).items() if name.isupper() and not callable(v)]
    return _strings(values) + _strings(versions.image_build_args("cpu")) + _strings(versions.image_build_args("gpu"))


LOCK_TEXT = _lock_strings()
LOCKED_IMAGES = frozenset(s for s in LOCK_TEXT if _IMAGE.fullmatch(s))
LOCKED_VERSIONS = frozenset(v.removeprefix("v") for s in LOCK_TEXT for v in _VERSION.findall(s))


def _crd_dirs() -> list[str]:
    dirs = {str(path) for _, path in crds.candidate_dirs()}
    with contextlib.suppress(crds.CRDDirNotFoundError):
        dirs.add(str(crds.find_crd_dir()))
    return sorted((d for d in dirs if len(d) > 1), key=len, reverse=True)


CRD_DIRS = _crd_dirs()
HOSTNAMES = sorted({n for n in (socket.gethostname(), socket.getfqdn()) if len(n) >= 4 and n not in _LOOPBACK_NAMES
                    and "." not in n[:1]}, key=len, reverse=True)


@dataclass(frozen=True)
class Violation:
    cell: int
    rule: str
    excerpt: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.rule}: {self.excerpt!r}"


def output_texts(output: dict) -> list[str]:
    """The text a learner sees in one output (streams, plain and HTML results, an error's traceback)."""
    kind = output.get("output_type")
    if kind == "stream":
        return [output.get("text", "")]
    if kind == "error":
        return ["\n".join(output.get("traceback", [])), f"{output.get('ename')}: {output.get('evalue')}"]
    data = output.get("data", {})
    return [str(data[key]) if not isinstance(data[key], str) else data[key]
            for key in ("text/plain", "text/html", "text/markdown") if key in data]


def _excerpt(text: str, start: int, end: int) -> str:
    return text[max(0, start - 30):end + 30].replace("\n", " ")


def text_violations(text: str, cell: int = 0) -> list[Violation]:
    """The rules that read text: ANSI, tracebacks, machine paths, addresses, host names, images, versions."""
    found = []
    if "\x1b" in text:
        i = text.index("\x1b")
        found.append(Violation(cell, "ANSI escape", _excerpt(text, i, i + 8)))
    if _TRACEBACK in text:
        i = text.index(_TRACEBACK)
        found.append(Violation(cell, "traceback", _excerpt(text, i, i + len(_TRACEBACK))))
    for directory in CRD_DIRS:
        if directory in text:
            i = text.index(directory)
            found.append(Violation(cell, "machine path (the CRD directory)", _excerpt(text, i, i + len(directory))))
    for match in _MACHINE_PATH.finditer(text):
        if not any(match.group().startswith(p) and match.group()[len(p):len(p) + 1] in ("", "/") for p in POD_PATHS):
            found.append(Violation(cell, "machine path", match.group()))
    for match in _IPV4.finditer(text):
        try:
            address = ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        if not address.is_loopback and not address.is_unspecified:
            found.append(Violation(cell, "IPv4 address", _excerpt(text, match.start(), match.end())))
    for match in _NAMED_HOST.finditer(text):
        if match.group(1) not in _LOOPBACK_NAMES and not _IPV4.fullmatch(match.group(1)):
            found.append(Violation(cell, "host name", match.group()))
    for name in HOSTNAMES:
        if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text):
            found.append(Violation(cell, "host name (this machine's)", name))
    for match in _IMAGE.finditer(text):
        image, tag = match.group(), match.group(2)
        tag_versions = [v.removeprefix("v") for v in _VERSION.findall(tag)]
        if image in LOCKED_IMAGES or image in TAUGHT_WRONG_IMAGES:
            continue
        if not tag_versions or tag_versions[0] not in LOCKED_VERSIONS:
            found.append(Violation(cell, "image the version lock does not name", image))
    for match in _PINNED.finditer(text):
        name, version = match.group(1), match.group(2)
        pinned = (versions.PYTHON_PINS.get(name) or versions.OPERATORS.get(name, "")).removeprefix("v")
        if version != pinned:
            found.append(Violation(cell, f"version the lock does not pin ({name} {pinned})", match.group()))
    return found


def cell_violations(cell: Any, index: int) -> list[Violation]:
    """Every rule on one code cell's outputs."""
    may_raise = "raises-exception" in cell.get("metadata", {}).get("tags", []) or \
        "NBVAL_RAISES_EXCEPTION" in cell.get("source", "")
    found = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error" and not may_raise:
            found.append(Violation(index, "error output", f"{output.get('ename')}: {output.get('evalue')}"[:120]))
        data = output.get("data", {})
        if is_empty_display(output):
            found.append(Violation(index, "empty display", str(data.get("text/plain", ""))[:80]))
        if _WIDGET in data and _ZERO_PROGRESS.search(str(data.get("text/plain", ""))):
            found.append(Violation(index, "frozen progress widget", str(data["text/plain"])[:80]))
        for text in output_texts(output):
            found += [v for v in text_violations(text, index) if not (may_raise and v.rule == "traceback")]
    return found


def notebook_violations(path: Path) -> list[Violation]:
    nb = nbformat.read(path, as_version=4)
    return [v for i, cell in enumerate(nb.cells) if cell.cell_type == "code" for v in cell_violations(cell, i)]


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_recorded_outputs_are_clean(path):
    found = notebook_violations(path)
    assert not found, f"{path.name}: {len(found)} recorded output problem(s):\n" + "\n".join(map(str, found))


# --------------------------------------------------------------------------- each rule can fail


@pytest.mark.parametrize(("text", "rule"), [
    ("\x1b[36m(raylet)\x1b[0m started", "ANSI escape"),
    ('Traceback (most recent call last):\n  File "x.py"', "traceback"),
    ("serving artifact in /tmp/kit-09-__k9j3bi/digits", "machine path"),
    ("digits from /work/wt-artifact/build/models/digits", "machine path"),
    ("written to /root/.cache/kit", "machine path"),
    ("(pid=4242, ip=10.1.2.3) worker started", "IPv4 address"),
    ("node_name=gpu-node-7 joined", "host name"),
    ("image: rayproject/ray:2.54.0-py311-cpu", "image the version lock does not name"),
    ("image: docker.io/library/nginx:latest", "image the version lock does not name"),
    ("installed: torch 2.11.0 and ray 2.60.0", "version the lock does not pin (torch 2.13.0)"),
    ("pip install ray[train,tune,serve]==2.54.0", "version the lock does not pin (ray 2.60.0)"),
])
def test_each_text_rule_catches_its_example(text, rule):
    assert rule in [v.rule for v in text_violations(text)]


def test_the_crd_directory_is_a_machine_path():
    if not CRD_DIRS:
        pytest.skip("no CRD directory candidates on this machine")
    assert "machine path (the CRD directory)" in [v.rule for v in text_violations(f"CRD schemas in {CRD_DIRS[0]}")]


@pytest.mark.parametrize("text", [
    "ready: True | served on http://127.0.0.1:8000/v1/models/digits:predict",
    "args: [--host, 0.0.0.0] and host: 0.0.0.0",
    f"image: {versions.IMAGES['kit']}",
    f"--build-arg BASE_IMAGE={versions.IMAGES['ray']}",
    "image: kserve/sklearnserver:v0.20.0",
    f"Ray image '{sorted(TAUGHT_WRONG_IMAGES)[0]}' does not match the kit's Ray version",
    "volumeMounts: [{mountPath: /tmp/ray}] and mountPath: /tmp",
    "import_path: kit.serve.rayserve:app_builder, pvc://kit-models/digits",
    "kueue.x-k8s.io/queue-name: kit-queue; serving.kserve.io/deploymentMode: Standard",
    f"image check: torch {versions.TORCH}, ray {versions.RAY} and 7 other pins installed",
    "not a Kubernetes 1.37.0 kind",
])
def test_clean_text_passes(text):
    assert text_violations(text) == []


def test_cells_meant_to_raise_may_show_their_traceback_but_not_noise():
    error = {"output_type": "error", "ename": "NotYetRight", "evalue": "wrong", "traceback": [_TRACEBACK, "x"]}
    meant = {"cell_type": "code", "metadata": {"tags": ["raises-exception"]}, "source": "", "outputs": [error]}
    assert cell_violations(meant, 3) == []
    assert {v.rule for v in cell_violations(dict(meant, metadata={}), 3)} == {"error output", "traceback"}
    noisy = dict(error, traceback=["\x1b[31mTraceback (most recent call last)\x1b[0m"])
    assert [v.rule for v in cell_violations(dict(meant, outputs=[noisy]), 3)] == ["ANSI escape"]


def test_a_progress_widget_saved_at_zero_is_frozen():
    widget = {"output_type": "display_data", "metadata": {},
              "data": {_WIDGET: {"model_id": "abc"}, "text/plain": "KServe v1:   0%|          | 0.0/1.0 s"}}
    cell = {"cell_type": "code", "metadata": {}, "source": "", "outputs": [widget]}
    assert [v.rule for v in cell_violations(cell, 15)] == ["frozen progress widget"]


def test_an_empty_html_display_is_not_recorded():
    """Tune's empty status table would be saved as '<IPython.core.display.HTML object>'."""
    empty = {"output_type": "display_data", "metadata": {},
             "data": {"text/html": [], "text/plain": ["<IPython.core.display.HTML object>"]}}
    table = {"output_type": "display_data", "metadata": {},
             "data": {"text/html": ["<table></table>"], "text/plain": ["<IPython.core.display.HTML object>"]}}
    text = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": ["VBox(...)"]}}
    assert is_empty_display(empty) and not is_empty_display(table) and not is_empty_display(text)


def test_a_widget_view_is_not_an_empty_display():
    view = {"output_type": "display_data", "metadata": {},
            "data": {_WIDGET: {"model_id": "x", "version_major": 2, "version_minor": 0}, "text/plain": ["VBox()"]}}
    assert not is_empty_display(view)
