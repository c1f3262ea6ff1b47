"""clusters/install-operators.sh: phases in order, pinned artifacts only, no floating image; run without a cluster."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit import versions
from kit.deploy import layout, operators
from kit.k8s.builders import core
from kit.k8s.validation import validate
from kit.machine import doctor

SCRIPT = layout.CLUSTERS / "install-operators.sh"
BASH = shutil.which("bash") or "/bin/bash"


def _install(*args: str) -> subprocess.CompletedProcess:
    """Run the install script with an empty PATH: no kubectl, helm or git, no cluster."""
    return subprocess.run([BASH, str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/nonexistent"})


@dataclass(frozen=True)
class Line:
    index: int
    operator: str
    phase: str
    command: str


def _dry_run(*args: str) -> list[Line]:
    """The dry run's commands, each with the operator and phase it was printed under."""
    result = _install("--dry-run", *args)
    assert result.returncode == 0, result.stderr
    assert "${" not in result.stdout, "a variable was printed unexpanded"
    lines, operator, phase = [], "", ""
    for text in result.stdout.splitlines():
        if header := re.fullmatch(r"-- ([a-z-]+): ([a-z+]+)", text):
            assert header[1] == operator, f"phase {text!r} outside its operator's section"
            operator, phase = header[1], header[2]
        elif text.startswith("== "):
            operator, phase = text.split()[1], ""
        elif text.startswith("+ "):
            assert phase, f"command outside a phase: {text}"
            lines.append(Line(len(lines), operator, phase, text[2:]))
    return lines


@pytest.fixture(scope="module")
def full() -> list[Line]:
    return _dry_run()


def _established(lines: list[Line]) -> dict[str, int]:
    """CRD name -> index of the first line that waits for it to be Established."""
    found: dict[str, int] = {}
    for line in lines:
        if waited := re.fullmatch(r"kubectl wait --for=condition=Established crd/(\S+) --timeout=\S+", line.command):
            found.setdefault(waited[1], line.index)
    return found


def _probes(lines: list[Line]) -> list[tuple[Line, dict]]:
    return [(line, json.loads(line.command.split("<<< ", 1)[1].strip("'")))
            for line in lines if line.command.startswith("kubectl create --dry-run=server")]


def _changes(lines: list[Line]) -> list[Line]:
    return [line for line in lines if line.command.startswith(("kubectl apply", "helm "))]


# --------------------------------------------------------------------------- order


def test_each_operator_runs_its_phases_in_order(full):
    for op in operators.OPERATORS:
        mine = [line for line in full if line.operator == op.key]
        ranks = [operators.PHASES.index(line.phase.split("+")[0]) for line in mine]
        assert ranks == sorted(ranks), f"{op.key}: phases out of order: {[line.phase for line in mine]}"
        assert {line.phase for line in mine} >= {"established", "ready"}
        assert any(line.phase.startswith("crds") for line in mine) and _changes(mine)[0].phase.startswith("crds")


def test_every_crd_is_established_before_anything_creates_one_of_its_objects(full):
    established = _established(full)
    for op in operators.OPERATORS:
        assert set(op.crds) <= set(established), f"{op.key}: CRDs never waited for"
        later = [line for line in _changes(full) if line.operator == op.key and not line.phase.startswith("crds")]
        for crd in op.creates:
            assert crd in established and all(established[crd] < line.index for line in later), (op.key, crd)
    for line, manifest in _probes(full):
        crd = next(op.probe.crd for op in operators.OPERATORS if op.probe and op.probe.manifest == manifest)
        assert established[crd] < line.index, f"probe {manifest['kind']} before crd/{crd} is Established"


def test_controllers_roll_out_and_webhooks_answer_before_cluster_resources(full):
    for op in operators.OPERATORS:
        mine = [line for line in full if line.operator == op.key and line.phase != "requires"]
        rollouts = [line.index for line in mine if line.command.startswith("kubectl rollout status")]
        assert [f"kubectl rollout status deployment/{d} -n {op.namespace} --timeout=300s" for d in op.deployments] \
            == [line.command for line in mine if line.command.startswith("kubectl rollout status")]
        probes = [line.index for line, _ in _probes(mine)]
        for resource in (line for line in _changes(mine) if line.phase == "resources"):
            assert max(rollouts + probes) < resource.index, f"{op.key}: {resource.command} before ready"


def test_cert_manager_webhook_answers_before_kserve_installs_anything():
    for args in ((), ("--only", "kserve")):  # installing KServe alone still checks cert-manager first
        lines = _dry_run(*args)
        issuer = [line.index for line, manifest in _probes(lines) if manifest["kind"] == "Issuer"]
        rollout = [line.index for line in lines if "deployment/cert-manager-webhook" in line.command]
        first_kserve = min(line.index for line in _changes(lines) if line.operator == "kserve")
        assert issuer and rollout and max(issuer + rollout) < first_kserve


def test_check_only_checks_and_only_selects_operators():
    lines = _dry_run("--check", "--only", "kueue")
    assert lines and not _changes(lines) and {line.operator for line in lines} == {"kueue"}
    assert any(line.command.startswith("kubectl create --dry-run=server") for line in lines)
    bad = _install("--dry-run", "--only", "nope")
    assert bad.returncode == 2 and "unknown operator 'nope'" in bad.stderr
    assert _install("--dry-run", "--timeout", "soon").returncode == 2


# --------------------------------------------------------------------------- pinned artifacts and images


def test_script_versions_are_the_version_lock():
    text = SCRIPT.read_text()
    assigned = dict(re.findall(r"^([A-Z_]+)_VERSION=(\S+)$", text, flags=re.M))
    assert assigned == {op.version_var.removesuffix("_VERSION"): versions.OPERATORS[op.key]
                        for op in operators.OPERATORS}
    assert set(versions.OPERATORS) - {op.key for op in operators.OPERATORS} == {"training-operator",
                                                                                 "prometheus-operator"}


def _flag(command: str, flag: str) -> str | None:
    found = re.search(rf"(?:^| ){re.escape(flag)}[ =](\S+)", command)
    return found[1] if found else None


def _sets(command: str) -> dict[str, str]:
    return dict(re.findall(r"--set (\S+?)=(\S+)", command))


def test_every_artifact_is_a_release_asset_or_a_chart_or_kustomization_at_the_pinned_version(full):
    changes = _changes(full)
    assert {line.operator for line in changes} == {op.key for op in operators.OPERATORS}
    for line in changes:
        pinned = versions.OPERATORS[line.operator]
        command = line.command.replace("'", "")
        assert not re.search(r"raw\.githubusercontent|/(master|main)/|ref=(master|main)\b", command), command
        if command.startswith("helm "):
            assert _flag(command, "--version") in (pinned, pinned.removeprefix("v")), command
            chart = command.split()[4]
            assert chart.startswith(versions.OPERATOR_CHARTS[line.operator]) or (
                _flag(command, "--repo") == versions.OPERATOR_CHARTS[line.operator]), command
            continue
        urls = re.findall(r"(?:https://)?github\.com/\S+", command)
        assert len(urls) == 1, command
        url = urls[0]
        release = re.fullmatch(rf"https://github\.com/[\w-]+/[\w-]+/releases/download/{re.escape(pinned)}/[\w.-]+",
                               url)
        tag = re.fullmatch(rf"github\.com/[\w./-]+\?ref={re.escape(pinned)}(&timeout=\d+s)?", url)
        assert release or tag, f"{url}: neither a release asset nor a kustomization at {pinned}"


def test_helm_releases_pin_their_images_explicitly(full):
    helm = [line for line in _changes(full) if line.command.startswith("helm ")]
    assert {line.operator for line in helm} == set(versions.OPERATOR_CHARTS)
    for line in helm:
        release, sets = line.command.split()[3], _sets(line.command)
        expected = next(op for op in operators.OPERATORS if op.key == line.operator).image_values.get(release, {})
        if release.endswith("-crd"):
            assert not expected  # CRDs only: no image
        else:
            assert expected, f"{release}: no explicit image values"
        for key in expected:
            assert key in sets, f"{release}: --set {key} missing"
            assert sets[key] not in operators.FLOATING_TAGS and sets[key].startswith("v"), (release, key)
        for key in ("kserve.version", "image.tag"):
            if key in sets:
                assert sets[key] == versions.OPERATORS[line.operator], (release, key)


def test_no_floating_image_tag_anywhere_in_the_script():
    code = "\n".join(line for line in SCRIPT.read_text().splitlines() if not line.lstrip().startswith("#"))
    tags = "|".join(operators.FLOATING_TAGS)
    assert not re.search(rf":({tags})\b", code)
    assert not re.search(rf"tag=\"?({tags})\b", code)
    assert 'deploymentMode="Standard"' in code and "Serverless" not in code and "Knative" not in code


# --------------------------------------------------------------------------- probes, namespaces, tools


def test_probes_pass_the_pinned_crd_schemas_so_they_can_succeed():
    checked = [op.probe.manifest for op in operators.OPERATORS
               if op.probe and op.probe.manifest["apiVersion"].split("/")[0] != "cert-manager.io"]
    assert {m["kind"] for m in checked} == {"ResourceFlavor", "ClusterTrainingRuntime", "ClusterServingRuntime"}
    assert validate.validate_documents(checked, policy=False) == []
    assert all(m["metadata"]["name"] == operators.PROBE_NAME for m in checked)


def test_operator_namespaces_are_where_the_network_policy_looks():
    for op in operators.OPERATORS:
        assert op.namespace == versions.OPERATOR_NAMESPACES[op.key]
    # Only the KubeRay operator connects to the kit's pods (core.network_policies says why).
    assert versions.OPERATOR_NAMESPACES["kuberay"] == core.KUBERAY_NAMESPACE
    assert versions.OPERATOR_NAMESPACES["kuberay"] != "default"


def test_tools_each_operator_needs_are_checked_before_a_real_install(tmp_path: Path):
    assert {op.key for op in operators.OPERATORS if "helm" in op.tools} == set(versions.OPERATOR_CHARTS)
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\nexit 0\n")
    kubectl.chmod(0o755)
    result = subprocess.run([BASH, str(SCRIPT), "--only", "kserve"], capture_output=True, text=True, timeout=30,
                            env={"PATH": str(tmp_path)})
    assert result.returncode == 1 and "helm not found: kserve is installed with it" in result.stderr
    assert "helm.sh" in result.stderr and versions.HELM_MIN in result.stderr
    result = subprocess.run([BASH, str(SCRIPT), "--only", "kueue", "--check", "--timeout", "1s"],
                            capture_output=True, text=True, timeout=30, env={"PATH": str(tmp_path)})
    assert "not found" not in result.stderr  # --check changes nothing: no helm or git needed


def test_without_kubectl_the_script_says_what_is_missing():
    result = _install()
    assert result.returncode == 1 and "kubectl not found" in result.stderr


def _helm_check(version_output: str | None):
    def run(command, **kwargs):
        return subprocess.CompletedProcess(command, 0, version_output, "")

    which = (lambda tool: None) if version_output is None else (lambda tool: f"/usr/bin/{tool}")
    return doctor.check_helm(which=which, run=run)


def test_doctor_reports_helm():
    missing = _helm_check(None)
    assert missing.status == doctor.INFO and "kuberay and kserve" in missing.detail and "helm.sh" in missing.fix
    old = _helm_check("v3.7.2+g663a896")
    assert old.status == doctor.WARN and versions.HELM_MIN in old.fix
    assert _helm_check("v3.16.3+gcfd0749").status == doctor.OK
    assert _helm_check("v4.0.1+g12500dd").status == doctor.OK


# --------------------------------------------------------------------------- a real run against fake tools

_FAKE_KUBECTL = """#!/bin/sh
echo "kubectl $*" >> "$LOG"
case "$*" in
  "create --dry-run=server"*)
    n=0; [ -f "$COUNT" ] && read -r n < "$COUNT"; n=$((n + 1)); echo "$n" > "$COUNT"
    if [ "$n" -le "$FAILS" ]; then
      echo 'Internal error occurred: failed calling webhook "w": connect: connection refused' >&2; exit 1
    fi
    if [ -n "$DENY" ]; then echo 'admission webhook "w" denied the request: no' >&2; exit 1; fi ;;
esac
"""


def _real_run(tmp_path: Path, *args: str, fails: int = 0, deny: bool = False) -> tuple[int, list[str], str, int]:
    """Run the script for real with a fake kubectl and helm that log their arguments."""
    (tmp_path / "kubectl").write_text(_FAKE_KUBECTL)
    (tmp_path / "helm").write_text('#!/bin/sh\necho "helm $*" >> "$LOG"\n')
    for tool in ("kubectl", "helm"):
        (tmp_path / tool).chmod(0o755)
    log, count = tmp_path / "log", tmp_path / "count"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "LOG": str(log), "COUNT": str(count), "FAILS": str(fails),
           "DENY": "1" if deny else "", "KIT_INSTALL_POLL": "0"}
    result = subprocess.run([BASH, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env)
    probes = int(count.read_text()) if count.exists() else 0
    return result.returncode, log.read_text().splitlines() if log.exists() else [], result.stderr, probes


def test_a_real_run_executes_exactly_what_the_dry_run_prints(tmp_path):
    code, calls, stderr, _ = _real_run(tmp_path, "--only", "kuberay,kserve")
    assert code == 0, stderr
    printed = [line.command for line in _dry_run("--only", "kuberay,kserve")]
    ran = [call for call in calls if not call.startswith("kubectl version")]
    assert [c for c in ran if not c.startswith("kubectl create")] == \
        [c.replace("'", "") for c in printed if not c.startswith("kubectl create")]
    assert "--set kserve.version=v0.20.0" in next(c for c in ran if "kserve-resources" in c)


def test_admission_probes_retry_until_the_webhook_answers(tmp_path):
    retried, denied, never = (tmp_path / name for name in ("retried", "denied", "never"))
    for folder in (retried, denied, never):
        folder.mkdir()
    code, _, stderr, probes = _real_run(retried, "--only", "cert-manager", fails=2)
    assert code == 0 and probes == 3, stderr
    code, _, stderr, probes = _real_run(denied, "--only", "kueue", deny=True)
    assert code == 0 and probes == 1, stderr  # a webhook that denies the probe has answered
    code, _, stderr, _ = _real_run(never, "--only", "kueue", "--timeout", "0s", fails=99)
    assert code == 1 and "admission webhooks did not answer within 0s" in stderr
