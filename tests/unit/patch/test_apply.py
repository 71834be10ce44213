"""Applying a patch on repositories the tests make: drift, half-applied, dirty trees, CRLF, bad patches."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadInput, PatchError
from harness.patch.apply import PatchConflict, State, apply, revert, status
from harness.patch.patchfile import Patch
from tests.support import MakeRepo, git
from tests.support.numbered import UPSTREAM

PATCH = b"""Description: test patch
---
--- a/Dockerfile
+++ b/Dockerfile
@@ -3,3 +3,3 @@
 line 3
-line 4
+line 4 patched
 line 5
@@ -20,3 +20,4 @@
 line 20
 line 21
+inserted after 21
 line 22
"""


def _patched(data: bytes = UPSTREAM) -> bytes:
    return data.replace(b"line 4\n", b"line 4 patched\n").replace(b"line 21\n", b"line 21\ninserted after 21\n")


@pytest.fixture
def patch(tmp_path: Path) -> Patch:
    path = tmp_path / "test.patch"
    path.write_bytes(PATCH)
    return Patch.load(path)


def _snapshot(tree: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(tree)): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(tree).parts
    }


def test_pristine_applies_then_applied_then_reverted(make_repo: MakeRepo, patch: Patch) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    assert status(repo, patch).state == State.APPLIES
    apply(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == _patched()
    assert status(repo, patch).state == State.APPLIED
    assert apply(repo, patch).action == "no-op"
    revert(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == UPSTREAM


def test_offset_is_reported_per_hunk(make_repo: MakeRepo, patch: Patch) -> None:
    repo = make_repo({"Dockerfile": b"new first line\nnew second\n" + UPSTREAM})
    hunks = status(repo, patch).hunks
    assert [(h.status, h.offset) for h in hunks] == [("offset", 2), ("offset", 2)]
    assert hunks[0].found_at == 5


def test_drift_in_a_context_line_is_a_conflict_naming_the_line(make_repo: MakeRepo, patch: Patch) -> None:
    drifted = UPSTREAM.replace(b"line 22\n", b"line 22 changed upstream\n")
    repo = make_repo({"Dockerfile": drifted})
    report = status(repo, patch)
    assert report.state == State.CONFLICT
    first, second = report.hunks
    assert first.status == "exact"
    assert second.status == "conflict"
    assert second.mismatch_line == 22
    assert second.mismatch_found == "line 22 changed upstream"
    assert second.mismatch_expected == "line 22"
    before = _snapshot(repo)
    with pytest.raises(PatchConflict, match="line 22"):
        apply(repo, patch)
    assert _snapshot(repo) == before


def test_half_applied_patch_is_a_conflict_with_hunk_detail(make_repo: MakeRepo, patch: Patch) -> None:
    half = UPSTREAM.replace(b"line 4\n", b"line 4 patched\n")
    repo = make_repo({"Dockerfile": half})
    report = status(repo, patch)
    assert report.state == State.CONFLICT
    assert [h.status for h in report.hunks] == ["applied", "exact"]
    with pytest.raises(PatchConflict):
        apply(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == half
    with pytest.raises(PatchConflict):
        revert(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == half


def test_local_changes_survive_apply_and_revert(make_repo: MakeRepo, patch: Patch) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM, "other.txt": b"upstream\n"})
    (repo / "other.txt").write_bytes(b"local edit\n")
    (repo / "untracked.txt").write_bytes(b"mine\n")
    local = UPSTREAM.replace(b"line 12\n", b"line 12 with a local edit\n")
    (repo / "Dockerfile").write_bytes(local)
    apply(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == _patched(local)
    assert (repo / "other.txt").read_bytes() == b"local edit\n"
    assert (repo / "untracked.txt").read_bytes() == b"mine\n"
    revert(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == local


def test_local_change_in_a_hunk_is_never_clobbered(make_repo: MakeRepo, patch: Patch) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    local = UPSTREAM.replace(b"line 4\n", b"line 4 mine\n")
    (repo / "Dockerfile").write_bytes(local)
    before = _snapshot(repo)
    with pytest.raises(PatchConflict):
        apply(repo, patch)
    assert _snapshot(repo) == before


def test_file_mode_is_kept(make_repo: MakeRepo, patch: Patch) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    (repo / "Dockerfile").chmod(0o600)
    apply(repo, patch)
    assert (repo / "Dockerfile").stat().st_mode & 0o777 == 0o600


def test_crlf_line_endings_conflict_and_say_why(make_repo: MakeRepo, patch: Patch) -> None:
    crlf = UPSTREAM.replace(b"\n", b"\r\n")
    repo = make_repo({"Dockerfile": crlf})
    report = status(repo, patch)
    assert report.state == State.CONFLICT
    assert "CRLF" in (report.hunks[0].mismatch_found or "")
    with pytest.raises(PatchConflict):
        apply(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == crlf


def test_upstreamed_change_is_told_apart_from_our_apply(make_repo: MakeRepo, patch: Patch) -> None:
    repo = make_repo({"Dockerfile": _patched()})
    report = status(repo, patch)
    assert report.state == State.UPSTREAMED
    assert "drop the patch" in report.reason
    with pytest.raises(PatchConflict, match="upstreamed"):
        apply(repo, patch)
    assert (repo / "Dockerfile").read_bytes() == _patched()


def test_our_apply_is_applied_not_upstreamed(make_repo: MakeRepo, patch: Patch) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    apply(repo, patch)
    git(repo, "status")  # the work tree is dirty: the commit still lacks the change
    assert status(repo, patch).state == State.APPLIED


def test_failed_write_rolls_back_every_file(
    make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_files = PATCH + PATCH.split(b"---\n", 1)[1].replace(b"Dockerfile", b"Dockerfile.debug")
    path = tmp_path / "two.patch"
    path.write_bytes(two_files)
    patch = Patch.load(path)
    assert patch.files == ("Dockerfile", "Dockerfile.debug")
    repo = make_repo({"Dockerfile": UPSTREAM, "Dockerfile.debug": UPSTREAM})
    before = _snapshot(repo)

    from harness.patch import apply as patch_apply  # noqa: PLC0415

    real = patch_apply.write_in_tree  # type: ignore[attr-defined]
    calls = []

    def failing_second_write(tree: Path, name: str, data: bytes) -> None:
        calls.append(name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(tree, name, data)

    monkeypatch.setattr(patch_apply, "write_in_tree", failing_second_write)
    # A full disk is reported as bad input (exit 2) naming the file, no longer as a bare OSError (exit 4).
    with pytest.raises(BadInput, match="No space"):
        apply(repo, patch)
    monkeypatch.setattr(patch_apply, "write_in_tree", real)
    assert _snapshot(repo) == before
    assert not list(repo.glob(".Dockerfile*")), "no temporary file is left behind"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"just some prose\nand no diff\n", "no hunks"),
        (b"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -1,3 +1,3 @@\n-only one line\n", "malformed"),
        (b"--- a/../outside\n+++ b/../outside\n@@ -1 +1 @@\n-a\n+b\n", "escapes the tree"),
        (b"--- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-a\n+b\n", "escapes the tree"),
        (b"--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "escapes the tree"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"--- a/./Dockerfile\n+++ b/./Dockerfile\n@@ -1 +1 @@\n-a\n+b\n", "is malformed: it names './Dockerfile'"),
        (b"--- a/Dockerfile/\n+++ b/Dockerfile/\n@@ -1 +1 @@\n-a\n+b\n", "is malformed: it names 'Dockerfile/'"),
        (b"--- a/x//Dockerfile\n+++ b/x//Dockerfile\n@@ -1 +1 @@\n-a\n+b\n", "is malformed"),
        (b"--- a/.GIT/config\n+++ b/.GIT/config\n@@ -1 +1 @@\n-a\n+b\n", "escapes the tree"),
    ],
    ids=[
        "empty",
        "blank",
        "prose",
        "truncated-hunk",
        "traversal",
        "dot-git",
        "absolute",
        "binary",
        "dot-component",
        "trailing-slash",
        "empty-component",
        "dot-git-upper-case",
    ],
)
def test_bad_patches_are_rejected_before_anything_runs(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.patch"
    path.write_bytes(content)
    with pytest.raises(PatchError, match=message):
        Patch.load(path)


def test_missing_patch(tmp_path: Path) -> None:
    with pytest.raises(PatchError, match="does not exist"):
        Patch.load(tmp_path / "nope.patch")


def test_non_git_directory_still_works(tmp_path: Path, patch: Patch) -> None:
    tree = tmp_path / "plain"
    tree.mkdir()
    (tree / "Dockerfile").write_bytes(UPSTREAM)
    journals = tmp_path / "journals"
    apply(tree, patch, journals=journals)
    assert status(tree, patch, journals=journals).state == State.APPLIED
    revert(tree, patch, journals=journals)
    assert (tree / "Dockerfile").read_bytes() == UPSTREAM


ZERO_CONTEXT = b"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line 4 patched\n line 5\n"
ZERO_CONTEXT += b"@@ -20 +20 @@\n-line 20\n+line 20 patched\n"


def test_a_hunk_git_refuses_shows_gits_reason_not_applies(make_repo: MakeRepo, tmp_path: Path) -> None:
    """A hunk without context has its lines in the file, but git apply refuses it (no --unidiff-zero): the
    conflict says git's reason at that hunk, never "applies" beside "conflict"."""
    repo = make_repo({"Dockerfile": UPSTREAM})
    (tmp_path / "zero.patch").write_bytes(ZERO_CONTEXT)
    report = status(repo, Patch.load(tmp_path / "zero.patch"))
    assert report.state == State.CONFLICT
    first, second = report.hunks
    assert (first.status, first.refused) == ("exact", None), "the hunk git names nothing against still applies"
    assert second.status == "conflict"
    assert second.refused is not None and "patch failed: Dockerfile:20" in second.refused
    assert report.reason == second.describe()
    assert "git apply refuses it: patch failed: Dockerfile:20" in report.reason
