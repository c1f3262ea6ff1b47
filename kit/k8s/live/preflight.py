"""``python -m kit cluster preflight``: before a workshop, can this cluster run the plan, and if not, what to do.

Four areas, one module each, every check a pure function of API answers (tests feed recorded ones):

- :mod:`~kit.k8s.live.preflight_operators` — each operator at its pinned version, its CRDs Established,
  its admission webhook answering;
- :mod:`~kit.k8s.live.preflight_storage` — the StorageClass behind each of the plan's volumes can give
  the access mode it asks for;
- :mod:`~kit.k8s.live.preflight_capacity` — the plan's pods fit the nodes' free capacity and the
  namespace's ResourceQuota;
- :mod:`~kit.k8s.live.preflight_access` — this user may create (and server-side apply) each kind the plan has.

Asking is separate from judging: the checks talk to a :class:`ClusterAPI` (two methods, JSON in and
out); :class:`LiveAPI` is the real one. The plan comes from the caller as (step, documents) pairs
(``kit.cli.cluster`` builds it with :mod:`kit.deploy.plan`); of ``kit.deploy`` only the pod-request
arithmetic :mod:`kit.k8s.requests` is used (``kit.k8s``, below the deploy plan).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from kit.k8s.live.api import KubeAPI
from kit.k8s.live.kubectl import ClusterError, kubectl_hint

OK, WARN, FAIL = "ok", "warn", "fail"
#: The fix of a check this user may not read (a learner's account): the organiser's account can.
READ_ACCESS = "run the preflight as the organiser (cluster-wide read access) to check this"
_MARKS = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, the verdict, what was found, and the fix."""

    area: str  # operators | storage | capacity | access
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"[{_MARKS[self.status]}] {self.area:<9} {self.name:<28} {self.detail}"
        return f"{line}\n{'':>17}Fix: {self.fix}" if self.fix and self.status != OK else line


@dataclass(frozen=True)
class Answer:
    """What the API server answered: the HTTP status and the JSON body (a ``Status`` on errors)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        return str(self.body.get("message") or f"HTTP {self.status}")

    def items(self) -> list[dict[str, Any]]:
        """The ``items`` of a list answer (empty when the answer is an error)."""
        return list(self.body.get("items") or []) if self.ok else []


class ClusterAPI(Protocol):
    """The two calls the checks make: :class:`LiveAPI`, or recorded answers in tests."""

    def get_json(self, path: str) -> Answer: ...

    def post_json(self, path: str, body: dict[str, Any]) -> Answer: ...


class LiveAPI(KubeAPI):
    """:class:`ClusterAPI` through the kubernetes client, configured like :class:`KubeAPI` (in-cluster or
    kubeconfig). An HTTP error is an :class:`Answer`; no answer at all is a :class:`ClusterError`."""

    def __init__(self, timeout: float = 15.0) -> None:
        super().__init__()
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Answer:
        from urllib.parse import parse_qsl

        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        resource_path, _, query = path.partition("?")
        try:
            response = self._api.call_api(resource_path, method, query_params=parse_qsl(query), body=body,
                                          header_params={"Accept": "application/json",
                                                         "Content-Type": "application/json"},
                                          auth_settings=["BearerToken"], _preload_content=False,
                                          _return_http_data_only=True, _request_timeout=self.timeout)
        except ApiException as error:
            return Answer(int(error.status or 0), _json(error.body) or {"message": str(error.reason)})
        except HTTPError as error:
            raise ClusterError(f"{method} {path}: no answer from the API server ({error})",
                               fix=kubectl_hint(str(error)) or "check the cluster is up: `kubectl get nodes`") from None
        return Answer(int(response.status), _json(response.data))

    def get_json(self, path: str) -> Answer:
        return self._call("GET", path, None)

    def post_json(self, path: str, body: dict[str, Any]) -> Answer:
        return self._call("POST", path, body)


def _json(data: Any) -> dict[str, Any]:
    if not data:
        return {}
    try:
        loaded = json.loads(data)
    except ValueError:
        return {"message": str(data)[:300]}
    return loaded if isinstance(loaded, dict) else {}


def problems(checks: Sequence[Check]) -> list[Check]:
    """The checks that fail: what makes ``preflight`` exit 1."""
    return [check for check in checks if check.status == FAIL]


def format_report(checks: Sequence[Check], where: str) -> str:
    """The report: where it looked, one line per check (with its fix), then the verdict."""
    failed, warned = len(problems(checks)), sum(check.status == WARN for check in checks)
    if failed:
        verdict = f"{failed} problem(s), {warned} warning(s): fix the problems, then run the preflight again."
    else:
        verdict = f"Ready: nothing blocks the plan ({warned} warning(s))."
    return "\n".join([f"preflight of {where}", *map(str, checks), "", verdict])


def summary(checks: Sequence[Check], where: str) -> dict[str, Any]:
    """The report as data (``--json``)."""
    return {"ready": not problems(checks), "where": where, "checks": [asdict(check) for check in checks]}


def run(api: ClusterAPI, steps: Sequence[tuple[str, list[dict[str, Any]]]], namespace: str,
        operators: Sequence[Any]) -> list[Check]:
    """Every check, in report order: operators, storage, capacity, access.

    ``steps`` is the plan as (step name, documents) in apply order; ``operators`` are
    :class:`kit.deploy.operators.Operator` s (anything with ``key``, ``crds`` and ``deployments``).
    """
    from kit.k8s.live import preflight_access, preflight_capacity, preflight_operators, preflight_storage

    documents = [doc for _, docs in steps for doc in docs]
    checks = preflight_operators.check_operators(api, operators, namespace)
    capacity, nodes = preflight_capacity.check_capacity(api, steps, namespace)
    classes = api.get_json(preflight_storage.STORAGE_CLASSES)
    checks += preflight_storage.check_storage(documents, classes, nodes or 1)
    checks += capacity
    checks += preflight_access.check_access(api, documents)
    return checks
