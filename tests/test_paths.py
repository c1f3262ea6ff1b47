"""Paths as learners read them: relative to the checkout or ~, never this machine's absolute directories."""

from __future__ import annotations

from pathlib import Path

from kit import paths


def test_display_writes_checkout_sibling_and_home_paths_relatively():
    assert paths.display(paths.REPO_ROOT / "build" / "x") == "build/x"
    assert paths.display(paths.REPO_ROOT.parent / "shared" / "crds") == "../shared/crds"
    assert paths.display(Path.home() / ".ray" / "auth_token") in ("~/.ray/auth_token", ".ray/auth_token",
                                                                   "../.ray/auth_token")
    assert paths.display("/etc/hosts") == "/etc/hosts"


def test_mask_rewrites_paths_inside_a_message():
    text = f"No configuration found at {Path.home()}/.kube/config; CRDs in {paths.REPO_ROOT.parent}/shared/crds"
    masked = paths.mask(text)
    assert str(Path.home()) + "/" not in masked and str(paths.REPO_ROOT.parent) + "/" not in masked
    assert masked.endswith("../shared/crds")
