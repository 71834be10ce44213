"""The pins file: every pin, for real (expected state, apply, idempotence, the users' reverse-check, revert,
post-image lock); a pins file means what it says or is refused (unknown keys and tables, and values of the wrong
shape, are bad input naming the file and the key; a pins file that pins nothing cannot make a check pass); the
newest pin a variant applies to."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.config.pins import Pin, Pins, load_pins, newest_applying_pin
from harness.errors import BadInput
from harness.patch.apply import PatchConflict, State, apply, revert, status
from harness.patch.patchfile import Patch, git_blob_id
from harness.resources import patches_dir, pins_file
from tests.support import BUNDLE, CheckoutFactory


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The pins and their variants are read when the tests are collected, never when this module is imported."""
    if "pin" in metafunc.fixturenames:
        metafunc.parametrize("pin", load_pins().pins, ids=lambda p: p.tag)
    if "variant_patch" in metafunc.fixturenames:
        metafunc.parametrize("variant_patch", [v.patch for v in load_pins().series.variants], ids=lambda p: p.name)


def _bundle_readme_rows() -> list[tuple[str, str, str]]:
    readme = (BUNDLE.parent / "README.md").read_text()
    return re.findall(r"^\| (v[\d.]+) \| ([0-9a-f]{40}) \| [\d-]+ \| ([0-9a-f]{40}) \|$", readme, re.MULTILINE)


def test_pins_cover_every_bundled_release(pins: Pins) -> None:
    rows = _bundle_readme_rows()
    assert len(rows) == 30
    assert [(p.tag, p.upstream_commit, p.dockerfile_blob) for p in pins.pins] == rows


def test_every_release_has_a_variant_that_applies(pins: Pins) -> None:
    assert all(p.expected == "applies" and p.patched_blob for p in pins.pins)
    by_patch: dict[str, list[str]] = {}
    for pin in pins.pins:
        by_patch.setdefault(pin.patch, []).append(pin.tag)
    assert {patch: (tags[0], tags[-1], len(tags)) for patch, tags in by_patch.items()} == {
        "patches/patch-dockerfile-v0.14.patch": ("v0.14.0", "v0.14.1", 2),
        "patches/patch-dockerfile.patch": ("v0.15.0", "v1.17.0", 26),
        "patches/patch-dockerfile-v1.18.patch": ("v1.18.0", "v1.19.0", 2),
    }


def test_pin_lifecycle(pin: Pin, checkout: CheckoutFactory, pins: Pins) -> None:
    tree = checkout(pin.tag)
    dockerfile = tree / "Dockerfile"
    pristine = dockerfile.read_bytes()
    assert git_blob_id(pristine) == pin.dockerfile_blob
    patch = Patch.load(pins.patch_path(pin.patch))

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

    # The idiom from the users' README must agree with harness.patch.apply.
    users_check = subprocess.run(
        ["git", "-C", str(tree), "apply", "--reverse", "--check", str(patch.path.resolve())],
        capture_output=True,
        check=False,
    )
    assert users_check.returncode == 0, users_check.stderr

    assert revert(tree, patch).action == "reverted"
    assert dockerfile.read_bytes() == pristine
    assert status(tree, patch).state == State.APPLIES


KNOB_DEFAULTS = (
    "CARGO_BUILD_JOBS=2",
    "CARGO_PROFILE_RELEASE_LTO=false",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16",
    "MAS_BUILD_TARGETS=",
)


def test_patch_carries_a_dep3_header(variant_patch: Path) -> None:
    patch = Patch.load(variant_patch)
    for field in ("Description", "Author", "Forwarded", "Last-Update"):
        assert patch.header.get(field), field
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", patch.header["Last-Update"])


def test_patch_is_a_git_diff_with_full_index_lines(variant_patch: Path) -> None:
    text = variant_patch.read_text()
    assert re.search(r"^diff --git a/Dockerfile b/Dockerfile$", text, re.MULTILINE)
    assert re.search(r"^index [0-9a-f]{40}\.\.[0-9a-f]{40} 100644$", text, re.MULTILINE)


def test_patch_header_states_the_defaults(variant_patch: Path) -> None:
    description = Patch.load(variant_patch).header["Description"]
    for knob in KNOB_DEFAULTS:
        assert knob in description


def test_v1_18_header_says_what_mas_build_targets_does_there(pins: Pins) -> None:
    description = " ".join(Patch.load(pins.series.choose("v1.18.0").variant.patch).header["Description"].split())
    assert "MAS_BUILD_TARGETS on this shape" in description
    assert "/usr/local/bin/mas-cli, for TARGETARCH" in description
    assert "Empty (the default) and the TARGETARCH triple both build it; any other value" in description
    assert "fails the build before rustup or cargo run" in description


@pytest.mark.parametrize("tag", ["v0.14.0", "v1.7.0", "v1.18.0"])
def test_patched_file_declares_the_same_defaults_as_the_header(checkout: CheckoutFactory, tag: str, pins: Pins) -> None:
    tree = checkout(tag)
    apply(tree, Patch.load(pins.series.choose(tag).variant.patch))
    text = (tree / "Dockerfile").read_text()
    for knob in KNOB_DEFAULTS:
        assert f"ARG {knob}\n" in text


def test_checkouts_are_worktrees_not_the_cache(checkout: CheckoutFactory, tmp_path: Path) -> None:
    tree = checkout("v1.7.0")
    assert tree.is_relative_to(tmp_path)
    assert (tree / ".git").is_file(), "a worktree, so patching never happens inside the shared cache"


def _pins(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pins.toml"
    path.write_text(text)
    if not (tmp_path / "patches").exists():
        (tmp_path / "patches").symlink_to(patches_dir())
    return path


def _shipped_with(edit: tuple[str, str]) -> str:
    text = pins_file().read_text()
    assert edit[0] in text
    return text.replace(*edit, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[pni]]\ntag = "v1.7.0"\n', r"pins.toml: unknown table \[\[pni\]\]"),
        ('[upstrem]\nurl = "https://example.com/x.git"\n', r"pins.toml: unknown table \[upstrem\]"),
        ("strict = true\n", "pins.toml: unknown key `strict`"),
        ('[upstream]\nurll = "https://example.com/x.git"\n', r"pins.toml \[upstream\]: unknown key `urll`"),
        ('[profiles.x]\ndescripton = "typo"\n', r"\[profiles.x\]: unknown key `descripton`"),
        ("[profiles.x]\ndescription = 5\n", "`description` must be a non-empty string, not the int 5"),
        ('pin = "x"\n', "`pin` must be an array of tables"),
        ('[pin]\ntag = "v1.7.0"\n', "`pin` must be an array of tables"),
        ("pin = [1]\n", "`pin` must be an array of tables"),
        ('upstream = "x"\n', r"\[upstream\] must be a table, not the str 'x'"),
        ("[upstream]\nurl = 5\n", "`url` must be a non-empty string, not the int 5"),
        ('[upstream]\nurl = ""\n', "`url` must be a non-empty string"),
        ("[upstream]\nseries = []\n", "`series` must be a non-empty string"),
    ],
    ids=[
        "typo-pni",
        "typo-upstrem",
        "top-level-key",
        "upstream-key",
        "profile-key",
        "profile-description",
        "pin-string",
        "pin-single-table",
        "pin-not-tables",
        "upstream-string",
        "url-number",
        "url-empty",
        "series-list",
    ],
)
def test_a_malformed_pins_file_is_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_pins(_pins(tmp_path, text))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('tag = "v1.7.0"\n', 'tag = "v1.7.0"\ntagg = "x"\n'), "pins.toml pin v1.7.0: unknown key `tagg`"),
        (('expected = "applies"\n', 'expected = "applies"\nexpect = "x"\n'), "unknown key `expect`"),
        (('dockerfile_blob = "dab76c', 'dockerfile_blob = "zzz76c'), "`dockerfile_blob` = 'zzz76c"),
        (('upstream_commit = "c39dcd6246eda81c7ac243c8b34be97f9ee77675"', "upstream_commit = 5"), "not the int 5"),
        (('patched_blob = "e740898653b42d06c9ad3375446b9495682d389c"', "patched_blob = 5"), "not the int 5"),
    ],
    ids=["pin-key", "pin-key-2", "blob-not-hex", "commit-number", "patched-blob-number"],
)
def test_a_malformed_pin_is_refused_naming_the_pin(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_pins(_pins(tmp_path, _shipped_with(edit)))


def test_the_shipped_pins_and_series_pass_the_stricter_reading() -> None:
    pins = load_pins()
    assert len(pins.pins) == 30
    assert [v.name for v in pins.series.variants] == ["v0.14", "v0.15-v1.17", "v1.18+"]


@pytest.mark.parametrize(
    "text", ["", "# nothing pinned yet\n", '[[pni]]\ntag = "v1.7.0"\n'], ids=["empty", "comment", "typo"]
)
@pytest.mark.parametrize("command", ["compat", "check"])
def test_a_pins_file_that_pins_nothing_never_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, command: str
) -> None:
    pins = _pins(tmp_path, text)
    argv = [command, "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "c"), "--pins", str(pins)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "nothing to check" in err[0] or "unknown table [[pni]]" in err[0]


def test_default_ref_is_the_newest_pin_its_variant_applies_to() -> None:
    assert newest_applying_pin(load_pins()) == "v1.19.0"
