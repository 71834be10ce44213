"""Reads and writes stay inside the checkout: no symbolic link is followed, only regular files are touched.

Each case is one the users' `git apply` refuses too ("beyond a symbolic link", "wrong type"):
the harness refuses it with exit 2 before anything is written, and `status` does not read
through the link either.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import BadInput, PatchError
from harness.files import MAX_INPUT_BYTES, atomic_write, read_in_tree, read_input, write_in_tree
from harness.patch.apply import apply, revert, status
from harness.patch.patchfile import Patch
from tests.support import MakeRepo, git

UPSTREAM = b"".join(b"line %d\n" % n for n in range(1, 31))
HUNK = b"@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line 4 patched\n line 5\n"


def _patch_for(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "p.patch"
    path.write_bytes(b"".join(b"--- a/%s\n+++ b/%s\n" % (n.encode(), n.encode()) + HUNK for n in names))
    return path


def _snapshot(*roots: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry under the roots: file contents and link targets, so a rewrite anywhere shows."""
    seen: dict[str, tuple[str, bytes | str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if ".git" in path.relative_to(root).parts:
                continue
            if path.is_symlink():
                seen[str(path)] = ("link", str(path.readlink()))
            elif path.is_file():
                seen[str(path)] = ("file", path.read_bytes())
    return seen


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory outside the checkout with a Dockerfile the patch would apply to."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "Dockerfile").write_bytes(UPSTREAM)
    return outside


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()


@pytest.mark.parametrize("command", ["status", "apply", "revert"])
def test_a_directory_that_is_a_symbolic_link_is_refused(
    make_repo: MakeRepo, tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    (repo / "sub").symlink_to(elsewhere)
    patch = _patch_for(tmp_path, "sub/Dockerfile")
    before = _snapshot(repo, elsewhere)
    code, err = _run([command, "--checkout", str(repo), "--patch", str(patch)], capsys)
    assert code == 2
    assert len(err) == 1
    assert "beyond a symbolic link (sub -> " in err[0]
    assert _snapshot(repo, elsewhere) == before, "nothing written, in the checkout or outside it"
    users = subprocess.run(
        ["git", "apply", "--check", str(patch)], cwd=repo, capture_output=True, text=True, check=False
    )
    assert "beyond a symbolic link" in users.stderr, "git apply refuses it as well"


@pytest.mark.parametrize("command", ["status", "apply", "revert"])
def test_a_dockerfile_that_is_a_symbolic_link_is_neither_read_nor_replaced(
    make_repo: MakeRepo, tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    repo = make_repo({"README": b"x\n"})
    (repo / "Dockerfile").symlink_to(elsewhere / "Dockerfile")
    patch = _patch_for(tmp_path, "Dockerfile")
    before = _snapshot(repo, elsewhere)
    code, err = _run([command, "--checkout", str(repo), "--patch", str(patch)], capsys)
    assert code == 2
    assert len(err) == 1
    assert "Dockerfile is a symbolic link (-> " in err[0]
    assert (repo / "Dockerfile").is_symlink(), "the link was not replaced by a regular file"
    assert _snapshot(repo, elsewhere) == before


def test_without_a_patch_the_variant_lookup_does_not_read_through_a_link_either(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Dockerfile").symlink_to(elsewhere / "Dockerfile")
    code, err = _run(["status", "--checkout", str(tree)], capsys)
    assert (code, len(err)) == (2, 1)
    assert "is a symbolic link" in err[0]


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda path: path.mkdir(), "is a directory"),
        (os.mkfifo, "is a named pipe"),
    ],
    ids=["directory", "fifo"],
)
def test_a_dockerfile_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], None], what: str
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    make(tree / "Dockerfile")
    code, err = _run(["status", "--checkout", str(tree), "--patch", str(_patch_for(tmp_path, "Dockerfile"))], capsys)
    assert (code, len(err)) == (2, 1)
    assert what in err[0]


def test_a_link_that_appears_under_a_patched_path_is_refused_at_write_time(tmp_path: Path, elsewhere: Path) -> None:
    """The write walks the path again: a directory swapped for a link after the read does not redirect it."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "Dockerfile").write_bytes(UPSTREAM)
    assert read_in_tree(tree, "sub/Dockerfile", limit=MAX_INPUT_BYTES) == UPSTREAM
    (tree / "sub" / "Dockerfile").unlink()
    (tree / "sub").rmdir()
    (tree / "sub").symlink_to(elsewhere)
    with pytest.raises(BadInput, match="beyond a symbolic link"):
        write_in_tree(tree, "sub/Dockerfile", b"patched\n")
    assert (elsewhere / "Dockerfile").read_bytes() == UPSTREAM


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", ""])
def test_names_that_leave_the_tree_are_refused_by_the_tree_functions_too(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput, match="not a path inside the checkout"):
        read_in_tree(tmp_path, name, limit=10)
    with pytest.raises(BadInput, match="not a path inside the checkout"):
        write_in_tree(tmp_path, name, b"x")


def test_a_real_subdirectory_is_patched_in_place(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM, "sub/Dockerfile": UPSTREAM})
    patch = Patch.load(_patch_for(tmp_path, "Dockerfile", "sub/Dockerfile"))
    assert status(repo, patch).state == "applies"
    apply(repo, patch)
    patched = UPSTREAM.replace(b"line 4\n", b"line 4 patched\n")
    assert (repo / "Dockerfile").read_bytes() == (repo / "sub/Dockerfile").read_bytes() == patched
    revert(repo, patch)
    assert git(repo, "status", "--porcelain") == ""


def test_a_checkout_dockerfile_beyond_1_mib_is_refused_with_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    huge = UPSTREAM + b"# padding\n" * (MAX_INPUT_BYTES // 10)
    (tree / "Dockerfile").write_bytes(huge)
    for command in ("status", "apply"):
        code, err = _run([command, "--checkout", str(tree), "--patch", str(_patch_for(tmp_path, "Dockerfile"))], capsys)
        assert (code, len(err)) == (2, 1)
        assert f"{len(huge):,} bytes" in err[0]
    assert (tree / "Dockerfile").read_bytes() == huge


def test_atomic_write_keeps_its_contract(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic_write(target, b"one")
    target.chmod(0o600)
    atomic_write(target, b"two")
    assert (target.read_bytes(), target.stat().st_mode & 0o777) == (b"two", 0o600)
    with pytest.raises(BadInput, match="exists: refusing to overwrite it"):
        atomic_write(target, b"three", replace=False)
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"], "no temporary file is left behind"


# -- an input the user names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (os.mkfifo, "a named pipe"),
        (lambda path: path.mkdir(), "a directory"),
        (lambda path: path.symlink_to("/dev/zero"), "a device"),
    ],
    ids=["fifo", "directory", "link-to-a-device"],
)
def test_an_input_that_is_not_a_regular_file_is_refused_without_reading_it(
    tmp_path: Path, make: Callable[[Path], None], kind: str
) -> None:
    path = tmp_path / "input"
    make(path)
    with pytest.raises(BadInput, match=f"^pins file {path} is {kind}, not a regular file"):
        read_input(path, "pins file")


def test_an_input_is_read_whole_through_a_link_and_none_when_absent(tmp_path: Path) -> None:
    (tmp_path / "real.toml").write_bytes(UPSTREAM)
    (tmp_path / "link.toml").symlink_to("real.toml")
    assert read_input(tmp_path / "link.toml", "pins file") == UPSTREAM
    assert read_input(tmp_path / "absent.toml", "pins file") is None


def test_an_input_past_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(BadInput, match=r"is 1,048,577 bytes \(1.0 MiB\), more than the 1,048,576 bytes"):
        read_input(path, "pins file")
    assert read_input(path, "pins file", limit=MAX_INPUT_BYTES + 1) == bytes(MAX_INPUT_BYTES + 1)


def test_an_input_is_refused_with_the_error_its_caller_names(tmp_path: Path) -> None:
    with pytest.raises(PatchError, match="is a directory"):
        read_input(tmp_path, "patch", error=PatchError)
