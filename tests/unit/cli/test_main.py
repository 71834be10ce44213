"""The command line as users run it: exit codes, JSON fields, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.resources import patches_dir, pins_file
from tests.support import CheckoutFactory, CompatRun, DockerfileTexts


def _compat(bundle: Path, cache: Path, *extra: str) -> list[str]:
    return ["compat", "--upstream", str(bundle), "--cache-dir", str(cache), *extra]


def test_compat_json_gives_the_expected_state_for_all_30_tags(compat_all: CompatRun) -> None:
    assert compat_all.code == 0
    document = compat_all.document
    assert (document["schema_version"], document["command"], document["ok"]) == (1, "compat", True)
    results = document["refs"]
    assert len(results) == 30
    for result in results:
        assert {"ref", "upstream_commit", "dockerfile_blob", "patch", "state", "expected", "hunks"} <= result.keys()
        assert result["state"] == result["expected"] == "applies", result["ref"]
        assert all({"header", "status", "offset"} <= hunk.keys() for hunk in result["hunks"])
        assert result["static"]["ok"] and result["static"]["failed"] == [], result["ref"]
        assert result["drift"] == {
            "pin": result["ref"],
            "differs": False,
            "compared": "lock",
            "changed_lines": None,
            "diff": None,
            "note": None,
        }
        assert result["variant"]["basis"] == "in-range"
    by_ref = {r["ref"]: r for r in results}
    assert by_ref["v1.7.0"]["upstream_commit"] == "c2814921899503474b09b088d1722ef6c550065a"
    assert [by_ref[tag]["variant"]["name"] for tag in ("v0.14.1", "v0.15.0", "v1.17.0", "v1.18.0")] == [
        "v0.14",
        "v0.15-v1.17",
        "v0.15-v1.17",
        "v1.18+",
    ]
    assert by_ref["v1.19.0"]["variant"]["shape"] == "single"
    assert by_ref["v1.19.0"]["static"]["checks"] > by_ref["v1.17.0"]["static"]["checks"]  # more refusals to prove


def test_the_old_patch_on_v1_18_conflicts_hunk_by_hunk(
    bundle: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = str(patches_dir() / "patch-dockerfile.patch")
    assert main(_compat(bundle, shared_cache, "v1.18.0", "--patch", old, "--json")) == 1
    [conflict] = json.loads(capsys.readouterr().out)["refs"]
    assert (conflict["state"], conflict["expected"], conflict["static"]) == ("conflict", None, None)
    assert conflict["variant"]["basis"] == "forced"
    assert [h["status"] for h in conflict["hunks"]] == ["offset", "conflict"]
    assert conflict["hunks"][1]["mismatch_line"] == 133


def test_compat_of_an_unpinned_ref_is_judged_on_its_own(
    bundle: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pins = tmp_path / "pins.toml"
    pins.write_text('[upstream]\ndefault_patch = "patches/patch-dockerfile.patch"\n')
    # An empty pins file beside a copy of the patch: no ref is pinned.
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches/patch-dockerfile.patch").write_bytes((patches_dir() / "patch-dockerfile.patch").read_bytes())
    assert main([*_compat(bundle, shared_cache, "--ref", "v1.7.0", "--json"), "--pins", str(pins)]) == 0
    assert json.loads(capsys.readouterr().out)["refs"][0]["expected"] is None
    assert main([*_compat(bundle, shared_cache, "--ref", "v1.18.0"), "--pins", str(pins)]) == 1


def test_unknown_ref_is_bad_input(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_compat(bundle, tmp_path, "--ref", "v9.9.9")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mas-harness: error: unknown ref 'v9.9.9'")


@pytest.mark.parametrize("command", ["compat", "check"])
def test_one_unknown_ref_of_several_is_an_error_for_it_and_the_others_are_checked(
    command: str, bundle: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "--upstream", str(bundle), "--cache-dir", str(shared_cache), "--json"]
    assert main([*argv, "--ref", "v1.7.0", "--ref", "v9.9.9", "--ref", "v1.17.0"]) == 2
    document = json.loads(capsys.readouterr().out)
    by_ref = {entry["ref"]: entry for entry in document["refs"]}
    assert set(by_ref) == {"v1.7.0", "v9.9.9", "v1.17.0"}
    assert by_ref["v1.7.0"]["ok"] and by_ref["v1.17.0"]["ok"], "the others are still checked"
    assert not by_ref["v9.9.9"]["ok"]
    errors = [r for r in document["results"] if r["status"] == "error"]
    assert len(errors) == 1 and "unknown ref 'v9.9.9'" in errors[0]["reason"]
    assert document["status"] == "error"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"nonsense\n", "no hunks"),
        (b"--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n", "escapes the tree"),
        (b"--- a/./Dockerfile\n+++ b/./Dockerfile\n@@ -1 +1 @@\n-a\n+b\n", "is malformed"),
        (b"--- a/Dockerfile/\n+++ b/Dockerfile/\n@@ -1 +1 @@\n-a\n+b\n", "is malformed"),
    ],
)
def test_bad_patch_is_bad_input(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    patch = tmp_path / "bad.patch"
    patch.write_bytes(content)
    assert main(_compat(bundle, tmp_path, "--patch", str(patch))) == 2
    assert message in capsys.readouterr().err


def test_blob_mismatch_is_a_hard_error_naming_both_ids(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = (pins_file()).read_text()
    moved = original.replace(
        'dockerfile_blob = "479dee308ae44bb81ab76508e0127b3ee5f681cd"',
        'dockerfile_blob = "0000000000000000000000000000000000000000"',
        1,
    )
    pins = tmp_path / "pins.toml"
    pins.write_text(moved)
    (tmp_path / "patches").symlink_to(patches_dir())
    assert main([*_compat(bundle, tmp_path / "c", "--ref", "v1.7.0"), "--pins", str(pins)]) == 2
    err = capsys.readouterr().err
    assert "v1.7.0" in err
    assert "479dee308ae44bb81ab76508e0127b3ee5f681cd" in err
    assert "0000000000000000000000000000000000000000" in err


def test_post_image_drift_is_reported_not_passed(
    bundle: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = (pins_file()).read_text()
    block_start = original.index('tag = "v1.7.0"')
    block_end = original.index("[[pin]]", block_start)
    block = original[block_start:block_end]
    drifted_block = block.replace(block.split('patched_blob = "')[1][:40], "1" * 40)
    pins = tmp_path / "pins.toml"
    pins.write_text(original[:block_start] + drifted_block + original[block_end:])
    (tmp_path / "patches").symlink_to(patches_dir())
    assert main([*_compat(bundle, shared_cache, "--ref", "v1.7.0"), "--pins", str(pins)]) == 1
    assert "post-image drift" in capsys.readouterr().out


def test_status_apply_revert_on_a_checkout(checkout: CheckoutFactory, capsys: pytest.CaptureFixture[str]) -> None:
    tree = checkout("v1.11.0")
    pristine = (tree / "Dockerfile").read_bytes()
    assert main(["status", "--checkout", str(tree)]) == 0
    assert "state: applies" in capsys.readouterr().out
    assert main(["apply", "--checkout", str(tree)]) == 0
    assert main(["apply", "--checkout", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "already applied" in out
    assert main(["status", "--checkout", str(tree)]) == 0
    assert "state: applied" in capsys.readouterr().out
    assert main(["revert", "--checkout", str(tree)]) == 0
    assert (tree / "Dockerfile").read_bytes() == pristine


def test_tree_commands_do_not_need_a_cache_directory(
    checkout: CheckoutFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """status, apply and revert fetch nothing: a cache directory that could not be used is not theirs to refuse."""
    tree = checkout("v1.11.0")
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    monkeypatch.setenv("MAS_HARNESS_CACHE", str(not_a_directory))
    assert main(["status", "--checkout", str(tree)]) == 0
    assert "state: applies" in capsys.readouterr().out
    assert main(["apply", "--checkout", str(tree)]) == 0
    assert main(["revert", "--checkout", str(tree)]) == 0
    assert main(["compat", "--upstream", str(tree), "--ref", "v1.11.0"]) == 2, "a command that fetches refuses it"
    assert "is a file, not a directory" in capsys.readouterr().err


def test_tree_commands_report_how_long_they_took(checkout: CheckoutFactory, tmp_path: Path) -> None:
    tree = checkout("v1.11.0")
    for command in ("status", "apply", "revert"):
        report = tmp_path / f"{command}.json"
        junit = tmp_path / f"{command}.xml"
        assert main([command, "--checkout", str(tree), "--output", str(report), "--junit", str(junit)]) == 0
        (result,) = json.loads(report.read_text())["results"]
        assert result["duration"] > 0, command
        assert result["group"] == f"{command}.{tree.name}", command
        assert 'time="0.000"' not in junit.read_text(), command


def test_apply_on_a_conflicting_checkout_exits_1_and_changes_nothing(
    checkout: CheckoutFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = checkout("v1.18.0")
    pristine = (tree / "Dockerfile").read_bytes()
    old = str(patches_dir() / "patch-dockerfile.patch")
    assert main(["apply", "--checkout", str(tree), "--patch", old]) == 1
    assert "hunk #2" in capsys.readouterr().out
    assert (tree / "Dockerfile").read_bytes() == pristine


def test_checkout_without_a_dockerfile_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--checkout", str(tmp_path)]) == 2
    assert "has no Dockerfile" in capsys.readouterr().err


def test_module_entry_point_and_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "frobnicate"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_check_on_a_patched_and_a_broken_dockerfile(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pristine, patched = dockerfile_texts("v1.17.0")
    good = _write(tmp_path / "good", patched)
    upstream = _write(tmp_path / "upstream", pristine)
    assert main(["check", "--dockerfile", str(good), "--pristine", str(upstream), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)["refs"]
    assert {f["check"] for f in result["findings"]} >= {
        "knobs-declared",
        "cargo-env",
        "target-flags",
        "move-step",
        "rustup-targets",
        "shellcheck",
        "hadolint-new-findings",
    }
    broken = _write(tmp_path / "broken", patched.replace("ARG CARGO_BUILD_JOBS=2\n", "ARG CARGO_BUILD_JOBS=64\n"))
    assert main(["check", "--dockerfile", str(broken), "--json"]) == 1
    [result] = json.loads(capsys.readouterr().out)["refs"]
    assert [f["check"] for f in result["findings"] if not f["ok"]] == ["knobs-declared"]


def test_check_on_an_unparsable_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = _write(tmp_path / "Dockerfile", "FROMM nothing\n")
    assert main(["check", "--dockerfile", str(garbage)]) == 2
    assert capsys.readouterr().err.startswith("mas-harness: error:")
    assert main(["check", "--dockerfile", str(tmp_path / "missing")]) == 2


def test_check_by_ref_with_a_patch_that_conflicts_fails(bundle: Path, shared_cache: Path) -> None:
    old = str(patches_dir() / "patch-dockerfile.patch")
    argv = ["check", "--upstream", str(bundle), "--cache-dir", str(shared_cache), "--ref", "v1.18.0"]
    assert main([*argv, "--patch", old]) == 1
    assert main(argv) == 0  # the series gives v1.18.0 its own variant


def test_status_picks_the_variant_of_the_checkout(
    checkout: CheckoutFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    for tag, patch in (("v0.14.1", "patch-dockerfile-v0.14.patch"), ("v1.19.0", "patch-dockerfile-v1.18.patch")):
        tree = checkout(tag)
        assert main(["status", "--checkout", str(tree)]) == 0
        out = capsys.readouterr().out
        assert f"patch: {patches_dir() / patch}" in out
        assert "state: applies" in out


def test_a_closed_pipe_keeps_the_verdict(bundle: Path, shared_cache: Path) -> None:
    """`mas-harness compat | head -1`: the reader goes away after one line; the exit is the verdict, not 1."""
    argv = [sys.executable, "-m", "harness", *_compat(bundle, shared_cache)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        code = proc.wait()
        err = proc.stderr.read().decode()
    assert first.strip()
    assert code == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_options_go_before_or_after_the_command(
    bundle: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", *_compat(bundle, shared_cache, "v1.17.0", "--json")]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main([*_compat(bundle, shared_cache, "v1.17.0", "--json"), "-q"]) == 0
    after = json.loads(capsys.readouterr().out)

    def timeless(document: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in ref.items() if k != "duration"} for ref in document["refs"]]

    assert timeless(after) == timeless(before)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("mas-harness ")
    assert main(["compat", "--late"]) == 2, "no abbreviations: --late is not --latest"


@pytest.mark.parametrize("command", ["build", "profile", "refresh"])
def test_a_command_of_one_ref_given_two_says_so(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--ref", "v1.17.0", "--ref", "v1.19.0"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"mas-harness {command}: error: --ref v1.17.0 and --ref v1.19.0: this command takes one ref"
