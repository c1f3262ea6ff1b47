"""Waits that explain themselves: :func:`wait_for` a resource to be ready or finished, and on a
timeout or a failure raise with the report of :mod:`kit.k8s.live.diagnostics` (and a bundle)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kit.errors import KitError
from kit.k8s.live.api import ClusterReader, KubeAPI
from kit.k8s.live.diagnostics import Snapshot, collect, explain, hints, write_bundle
from kit.k8s.live.kinds import FAILED, READY, WAITING, Resource, Verdict, kind_of


class WaitError(KitError, RuntimeError):
    """A wait ended badly; ``report`` explains why, ``snapshot`` holds what was read, ``fix`` the first hint."""

    def __init__(self, report: str, snapshot: Snapshot, bundle: Path | None = None) -> None:
        fixes = hints(snapshot)
        super().__init__(report + (f"\ndiagnostics written to {bundle}" if bundle else ""),
                         fix=fixes[0] if fixes else
                         f"`python -m kit cluster diagnostics -n {snapshot.namespace}` writes every log and event")
        self.report, self.snapshot, self.bundle = report, snapshot, bundle


class WaitTimeout(WaitError, TimeoutError):
    """The resource did not become ready (or finish) in time."""


class WorkloadFailed(WaitError):
    """The resource reached a failed state."""


def wait_for(kind: str, name: str, namespace: str = "default", timeout: float = 600, *,
             api: ClusterReader | None = None, poll: float = 2.0, diagnostics_dir: Path | str | None = None,
             progress: Callable[[str], None] | None = print, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> Resource:
    """Wait until ``kind/name`` is ready (RayCluster, RayService, InferenceService) or finished (RayJob,
    TrainJob, Job); return the resource. Raise :class:`WaitTimeout` or :class:`WorkloadFailed` with a report."""
    spec = kind_of(kind)
    reader: ClusterReader = api if api is not None else KubeAPI()
    began = clock()
    last = ""
    while True:
        obj = reader.get(kind, name, namespace)
        verdict = spec.verdict(obj) if obj is not None else Verdict(WAITING, "not created yet")
        if verdict.state == READY and obj is not None:
            if progress:
                progress(f"{kind}/{name}: {verdict.reason} after {clock() - began:.0f} s")
            return obj
        waited = clock() - began
        if verdict.state == FAILED or waited >= timeout:
            snap = collect(reader, kind, name, namespace)
            error: type[WaitError]
            if verdict.state == FAILED:
                headline, error = f"{kind}/{name} in {namespace!r} failed: {verdict.reason}", WorkloadFailed
            else:
                headline = (f"{kind}/{name} in {namespace!r} not {spec.goal} after {waited:.0f} s "
                            f"(last status: {verdict.reason})")
                error = WaitTimeout
            report = explain(snap, headline)
            bundle = write_bundle(snap, diagnostics_dir, report) if diagnostics_dir else None
            raise error(report, snap, bundle)
        if progress and verdict.reason != last:
            progress(f"{kind}/{name}: {verdict.reason}")
            last = verdict.reason
        sleep(min(poll, max(timeout - waited, 0.1)))
