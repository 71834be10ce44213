"""Every pin, for real: expected state, apply, idempotence, the users' reverse-check, revert, post-image lock."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BUNDLE, CheckoutFactory
from harness.config import Pin, load_pins
from harness.patching import Patch, PatchConflict, State, apply, git_blob_id, revert, status

PINS = load_pins()


def _bundle_readme_rows() -> list[tuple[str, str, str]]:
    readme = (BUNDLE.parent / "README.md").read_text()
    return re.findall(r"^\| (v[\d.]+) \| ([0-9a-f]{40}) \| [\d-]+ \| ([0-9a-f]{40}) \|$", readme, re.MULTILINE)


def test_pins_cover_every_bundled_release() -> None:
    rows = _bundle_readme_rows()
    assert len(rows) == 30
    assert [(p.tag, p.upstream_commit, p.dockerfile_blob) for p in PINS.pins] == rows


def test_main_patch_applies_exactly_to_v0_15_through_v1_17() -> None:
    applying = [p.tag for p in PINS.pins if p.expected == "applies"]
    assert applying[0] == "v0.15.0"
    assert applying[-1] == "v1.17.0"
    assert len(applying) == 26


@pytest.mark.parametrize("pin", PINS.pins, ids=lambda p: p.tag)
def test_pin_lifecycle(pin: Pin, checkout: CheckoutFactory) -> None:
    tree = checkout(pin.tag)
    dockerfile = tree / "Dockerfile"
    pristine = dockerfile.read_bytes()
    assert git_blob_id(pristine) == pin.dockerfile_blob
    patch = Patch.load(PINS.patch_path(pin.patch))

    report = status(tree, patch)
    assert report.state == pin.expected

    if pin.expected == "conflict":
        with pytest.raises(PatchConflict):
            apply(tree, patch)
        assert dockerfile.read_bytes() == pristine
        assert any(h.status == "conflict" for h in report.hunks)
        return

    assert all(h.status in ("exact", "offset") for h in report.hunks)
    first = apply(tree, patch)
    assert first.action == "applied"
    assert git_blob_id(dockerfile.read_bytes()) == pin.patched_blob, "post-image lock"
    assert status(tree, patch).state == State.APPLIED

    second = apply(tree, patch)
    assert second.action == "no-op"
    assert git_blob_id(dockerfile.read_bytes()) == pin.patched_blob

    # The idiom from the users' README must agree with the engine.
    users_check = subprocess.run(
        ["git", "-C", str(tree), "apply", "--reverse", "--check", str(patch.path.resolve())],
        capture_output=True,
        check=False,
    )
    assert users_check.returncode == 0, users_check.stderr

    assert revert(tree, patch).action == "reverted"
    assert dockerfile.read_bytes() == pristine
    assert status(tree, patch).state == State.APPLIES


def test_patch_carries_a_dep3_header(main_patch: Patch) -> None:
    for field in ("Description", "Author", "Forwarded", "Last-Update"):
        assert main_patch.header.get(field), field
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", main_patch.header["Last-Update"])


def test_patch_header_states_the_defaults(main_patch: Patch) -> None:
    description = main_patch.header["Description"]
    for knob in (
        "CARGO_BUILD_JOBS=2",
        "CARGO_PROFILE_RELEASE_LTO=false",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16",
        "MAS_BUILD_TARGETS=",
    ):
        assert knob in description


def test_patched_file_declares_the_same_defaults_as_the_header(checkout: CheckoutFactory, main_patch: Patch) -> None:
    tree = checkout("v1.7.0")
    apply(tree, main_patch)
    text = (tree / "Dockerfile").read_text()
    for knob in (
        "CARGO_BUILD_JOBS=2",
        "CARGO_PROFILE_RELEASE_LTO=false",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16",
        "MAS_BUILD_TARGETS=",
    ):
        assert f"ARG {knob}\n" in text


def test_checkouts_are_worktrees_not_the_cache(checkout: CheckoutFactory, tmp_path: Path) -> None:
    tree = checkout("v1.7.0")
    assert tree.is_relative_to(tmp_path)
    assert (tree / ".git").is_file(), "a worktree, so patching never happens inside the shared cache"
