"""Exercises of stage 00: how checks work, on two questions about your machine."""

from __future__ import annotations

import os

from kit.config import profile
from kit.course.exercises import NotYetRight, exercise
from kit.machine import resources


@exercise(
    "00.cpu_slots",
    "How many CPUs may this notebook use?",
    "os.cpu_count() counts the host's CPUs; a container may be limited to fewer. "
    "kit.machine.resources.detect() reads the cgroup limit: use its .cpu_slots.",
    reference=lambda: resources.detect().cpu_slots,
)
def check_cpu_slots(answer) -> None:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise NotYetRight(f"expected a whole number of CPUs, got {type(answer).__name__} {answer!r}")
    expected = resources.detect().cpu_slots
    if answer == expected:
        return
    if answer == os.cpu_count() and answer != expected:
        raise NotYetRight(
            f"{answer} is what the host has; your container may only use {expected} — "
            "sizing Ray from the host's count is how notebooks get OOM-killed on Binder"
        )
    raise NotYetRight(f"{answer} is not what this container may use")


@exercise(
    "00.cluster_profile",
    "Which PROFILE sends the stages to the cluster of your current kube context?",
    f"The profiles are {', '.join(profile.PROFILES)}; read the table above.",
    reference=lambda: "cluster",
)
def check_cluster_profile(answer) -> None:
    if not isinstance(answer, str):
        raise NotYetRight(f"a profile is a string, got {type(answer).__name__}")
    try:
        chosen = profile.resolve(answer)
    except profile.ProfileError as error:
        raise NotYetRight(f"{error.message}: the profiles are {', '.join(profile.PROFILES)}") from None
    if chosen.name == "local":
        raise NotYetRight("'local' runs everything on this machine, with no cluster at all")
    if chosen.name == "kind":
        raise NotYetRight("'kind' targets the throw-away kind cluster that `make test-cluster` creates")
