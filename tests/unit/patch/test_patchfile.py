"""Patches as git apply reads them: CRLF patches work as with git apply; what the harness does not carry out
(mode changes, renames, copies, new or deleted files, links, binary diffs) is refused, naming the line; a patch or
a checkout file far beyond any real one is refused before parsing, with its size."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import PatchError
from harness.files import MAX_INPUT_BYTES
from harness.patch.apply import State, apply, revert, status
from harness.patch.patchfile import MAX_HUNKS, Patch
from tests.support import BUNDLE, MakeRepo
from tests.support.numbered import UPSTREAM

HUNK = b"@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line 4 patched\n line 5\n"
GIT_DIFF = b"diff --git a/Dockerfile b/Dockerfile\nindex 1111111..2222222 100644\n--- a/Dockerfile\n+++ b/Dockerfile\n"


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def _write(tmp_path: Path, data: bytes, name: str = "p.patch") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _git_apply(tree: Path, patch: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "apply", *flags, str(patch)], cwd=tree, capture_output=True, check=False)


# -- CRLF ---------------------------------------------------------------------------------------------


def test_a_crlf_patch_on_a_crlf_dockerfile_applies_as_git_apply_applies_it(
    make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"Dockerfile": _crlf(UPSTREAM)})
    patch_path = _write(tmp_path, _crlf(GIT_DIFF + HUNK))
    users = tmp_path / "users"
    shutil.copytree(repo, users)
    assert _git_apply(users, patch_path).returncode == 0

    patch = Patch.load(patch_path)
    assert patch.files == ("Dockerfile",), "the CR after the name is not part of it"
    assert main(["status", "--checkout", str(repo), "--patch", str(patch_path)]) == 0
    assert "state: applies" in capsys.readouterr().out
    assert apply(repo, patch).action == "applied"
    assert (
        (repo / "Dockerfile").read_bytes()
        == (users / "Dockerfile").read_bytes()
        == _crlf(UPSTREAM.replace(b"line 4\n", b"line 4 patched\n"))
    )
    assert status(repo, patch).state == State.APPLIED
    revert(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == _crlf(UPSTREAM)


def test_a_crlf_patch_on_an_lf_dockerfile_conflicts_as_in_git_and_says_why(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    patch_path = _write(tmp_path, _crlf(GIT_DIFF + HUNK))
    assert _git_apply(repo, patch_path, "--check").returncode != 0
    report = status(repo, Patch.load(patch_path))
    assert report.state == State.CONFLICT
    assert "(LF line ending; the patch has CRLF)" in (report.hunks[0].mismatch_found or "")


# -- what the harness does not carry out --------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "asked"),
    [
        (b"old mode 100644\nnew mode 100755\n", "a mode change"),
        (b"new file mode 100644\n", "a new file"),
        (b"deleted file mode 100644\n", "a deleted file"),
        (b"rename from Dockerfile\nrename to Dockerfile.new\n", "a rename"),
        (b"copy from Dockerfile\ncopy to Dockerfile.new\n", "a copy"),
        (b"index 1111111..2222222 120000\n", "a file of mode 120000"),
        (b"index 1111111..2222222 160000\n", "a file of mode 160000"),
    ],
    ids=["mode", "new-file", "deleted-file", "rename", "copy", "symlink", "submodule"],
)
@pytest.mark.parametrize("line_ending", ["lf", "crlf"])
def test_git_headers_asking_for_more_than_a_content_change_are_refused_naming_the_line(
    tmp_path: Path, header: bytes, asked: str, line_ending: str
) -> None:
    data = b"Description: x\n\ndiff --git a/Dockerfile b/Dockerfile\n" + header + b"--- a/Dockerfile\n"
    data += b"+++ b/Dockerfile\n" + HUNK
    path = _write(tmp_path, _crlf(data) if line_ending == "crlf" else data)
    first = header.decode().splitlines()[0]
    with pytest.raises(PatchError, match=re.escape(f"line 4 (`{first}`) asks for {asked}")):
        Patch.load(path)


def test_a_mode_change_is_bad_input_on_the_command_line_and_the_tree_is_untouched(
    make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    mode_change = b"diff --git a/Dockerfile b/Dockerfile\nold mode 100644\nnew mode 100755\n"
    path = _write(tmp_path, mode_change + b"--- a/Dockerfile\n+++ b/Dockerfile\n" + HUNK)
    assert main(["apply", "--checkout", str(repo), "--patch", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "asks for a mode change" in err[0]
    assert (repo / "Dockerfile").read_bytes() == UPSTREAM
    assert (repo / "Dockerfile").stat().st_mode & 0o777 == 0o644


def test_a_git_diff_naming_two_files_is_a_rename_and_refused(tmp_path: Path) -> None:
    data = b"diff --git a/Dockerfile b/Dockerfile.new\n--- a/Dockerfile\n+++ b/Dockerfile.new\n" + HUNK
    with pytest.raises(PatchError, match=r"renames Dockerfile to Dockerfile\.new"):
        Patch.load(_write(tmp_path, data))


def test_a_plain_diff_names_its_target_as_git_apply_does(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    path = _write(tmp_path, b"--- Dockerfile.orig\n+++ Dockerfile\n" + HUNK)
    assert _git_apply(repo, path, "--check").returncode == 0
    patch = Patch.load(path)
    assert patch.files == ("Dockerfile",)
    assert status(repo, patch).state == State.APPLIES


def test_prose_before_the_diff_is_not_read_as_a_header(tmp_path: Path) -> None:
    data = b"Description: drop the rename from\n old mode of doing things\n\n" + GIT_DIFF + HUNK
    assert Patch.load(_write(tmp_path, data)).header["Description"].startswith("drop the rename from")


def test_a_rename_patch_under_compat_and_check_is_one_line_of_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rename = b"diff --git a/Dockerfile b/Dockerfile.new\nsimilarity index 90%\nrename from Dockerfile\n"
    path = _write(tmp_path, rename + b"rename to Dockerfile.new\n--- a/Dockerfile\n+++ b/Dockerfile.new\n" + HUNK)
    for command in ("compat", "check"):
        argv = [command, "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "c"), "--ref", "v1.7.0"]
        assert main([*argv, "--patch", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "asks for a rename" in err[0], err


# -- sizes ----------------------------------------------------------------------------------------------


def test_a_patch_beyond_1_mib_is_refused_before_parsing_with_its_size(tmp_path: Path) -> None:
    body = b"+" + b"x" * 99 + b"\n"
    huge = GIT_DIFF + b"@@ -1,1 +1,10500 @@\n line 1\n" + body * 10500
    assert len(huge) > MAX_INPUT_BYTES
    path = _write(tmp_path, huge)
    with pytest.raises(PatchError, match=f"is {len(huge):,} bytes \\(1.0 MiB\\), more than the 1,048,576 bytes"):
        Patch.load(path)
    with pytest.raises(PatchError, match=f"is {len(huge):,} bytes"):
        Patch.parse(huge, path=path)


def test_a_patch_with_thousands_of_hunks_is_refused_before_parsing(tmp_path: Path) -> None:
    many = GIT_DIFF + HUNK * (MAX_HUNKS + 1)
    assert len(many) < MAX_INPUT_BYTES
    with pytest.raises(PatchError, match=f"has {MAX_HUNKS + 1:,} hunks, more than the {MAX_HUNKS:,}"):
        Patch.load(_write(tmp_path, many))


def test_an_endless_patch_is_refused_without_being_read() -> None:
    with pytest.raises(PatchError, match="is a device, not a regular file"):
        Patch.load(Path("/dev/zero"))


def test_an_oversized_patch_is_one_line_of_bad_input_with_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, GIT_DIFF + HUNK + b"+" + b"y" * MAX_INPUT_BYTES + b"\n")
    argv = ["compat", "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "c"), "--ref", "v1.7.0"]
    assert main([*argv, "--patch", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{path.stat().st_size:,} bytes (1.0 MiB)" in err[0]
