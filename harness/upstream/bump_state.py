"""The user's git state a bump writes, recorded first and put back byte for byte when the bump does not complete.

`mas-harness bump` is the one command that writes the user's git state: it moves the submodule's HEAD (a
detached checkout, as `git submodule update` leaves it), writes the patch files and stages the gitlink and
the patches. `snapshot` records, before any of it, where the submodule was checked out (and on which branch),
the superproject's index file and each patch file's bytes; `restore` puts every one of them back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput
from harness.files import atomic_write
from harness.proc import git, run


@dataclass(frozen=True, kw_only=True)
class GitState:
    root: Path
    """The superproject's work tree."""
    submodule: Path
    """The submodule's work tree."""
    head: str
    branch: str | None
    """The branch the submodule had checked out (`refs/heads/...`), None when detached."""
    index_file: Path
    index: bytes | None
    """The superproject's index file, None when it had none."""
    files: tuple[tuple[Path, bytes | None], ...]
    """Each file the bump may write, with its bytes (None: it did not exist)."""


def _ok(*args: str, cwd: Path) -> str | None:
    proc = run("git", *args, cwd=cwd, check=False)
    return proc.stdout.decode().rstrip("\n") if proc.returncode == 0 else None


def _z_paths(out: str) -> list[str]:
    return [p for p in out.split("\0") if p]


def dirty_paths(work_tree: Path) -> list[str]:
    """Tracked files of a work tree with changes, staged or not (untracked files a checkout leaves alone)."""
    out = git("status", "--porcelain=v1", "-z", "--untracked-files=no", "--no-renames", cwd=work_tree)
    return [entry[3:] for entry in _z_paths(out)]


def staged_paths(root: Path) -> list[str]:
    """Paths whose staged content differs from the superproject's HEAD (all of the index before a first commit)."""
    if _ok("rev-parse", "--verify", "--quiet", "HEAD", cwd=root) is None:
        return _z_paths(git("ls-files", "-z", cwd=root))
    return _z_paths(git("diff", "--cached", "--name-only", "-z", "--no-renames", cwd=root))


def unstaged_paths(root: Path, paths: list[str]) -> list[str]:
    """Of `paths` (relative to the superproject), those whose work tree file differs from the index."""
    if not paths:
        return []
    return _z_paths(git("diff", "--name-only", "-z", "--", *paths, cwd=root))


def snapshot(root: Path, submodule: Path, files: list[Path]) -> GitState:
    index_file = Path(git("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=root))
    return GitState(
        root=root,
        submodule=submodule,
        head=git("rev-parse", "--verify", "HEAD", cwd=submodule),
        branch=_ok("symbolic-ref", "--quiet", "HEAD", cwd=submodule),
        index_file=index_file,
        index=index_file.read_bytes() if index_file.exists() else None,
        files=tuple((path, path.read_bytes() if path.exists() else None) for path in files),
    )


def restore(state: GitState) -> None:
    """Everything the bump may have changed, as `snapshot` found it: patch files, the index, the submodule."""
    for path, data in state.files:
        if data is None:
            path.unlink(missing_ok=True)
        elif not path.exists() or path.read_bytes() != data:
            atomic_write(path, data)
    if state.index is None:
        state.index_file.unlink(missing_ok=True)
    elif state.index_file.read_bytes() != state.index:
        atomic_write(state.index_file, state.index)
    if git("rev-parse", "HEAD", cwd=state.submodule) != state.head or state.branch is not None:
        # The bump detaches HEAD and never moves a branch: the branch, if any, still points where it did.
        target = state.branch.removeprefix("refs/heads/") if state.branch else state.head
        detach = [] if state.branch else ["--detach"]
        git("-c", "advice.detachedHead=false", "checkout", "--quiet", *detach, target, cwd=state.submodule)


def has_commit(work_tree: Path, commit: str) -> bool:
    return _ok("cat-file", "-e", f"{commit}^{{commit}}", cwd=work_tree) is not None


def fetch_into(work_tree: Path, *, commit: str, tag: str | None) -> None:
    """Fetch a commit into the submodule's repository from its `origin`: by its tag when it has one (the tag is
    created there too), else by id. Only objects and that tag are added: nothing checked out changes."""
    spec = f"+refs/tags/{tag}:refs/tags/{tag}" if tag else commit
    git("fetch", "--quiet", "--no-tags", "origin", spec, cwd=work_tree)
    if not has_commit(work_tree, commit):
        raise BadInput(f"fetching {tag or commit} into {work_tree} did not bring commit {commit[:12]}")


def check_out(work_tree: Path, commit: str) -> None:
    git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit, cwd=work_tree)


def stage(root: Path, paths: list[str]) -> None:
    git("add", "--", *paths, cwd=root)


def commit(root: Path, message: str) -> str:
    """Commit the index with `message`, as the user (their git identity, not the harness's); the new commit's id."""
    identity: dict[str, str] = {}
    for key, setting in (("NAME", "user.name"), ("EMAIL", "user.email")):
        value = _ok("config", "--get", setting, cwd=root)
        for role in ("AUTHOR", "COMMITTER"):
            variable = f"GIT_{role}_{key}"
            if value and variable not in os.environ:
                identity[variable] = value
    run("git", "commit", "--quiet", "--file=-", cwd=root, env=identity, input_bytes=message.encode())
    return git("rev-parse", "HEAD", cwd=root)
