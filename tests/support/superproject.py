"""A users' superproject made by a test: MAS as a real git submodule at a tag, the patch beside it, and
[tool.mas-harness] in pyproject.toml, as the users' repositories are laid out."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from tests.support import git

SUBMODULE = "docker/chat/mas/repo"
PATCH = "docker/chat/mas/patches/patch-dockerfile.patch"
CONFIG = f'[project]\nname = "chat"\n\n[tool.mas-harness]\nsubmodule = "{SUBMODULE}"\npatch = "{PATCH}"\n'


def clone_upstream(bundle: Path, dest: Path) -> Path:
    """A clone of the bundle: the repository the users' submodule points at."""
    subprocess.run(["git", "clone", "--quiet", str(bundle), str(dest)], check=True, capture_output=True)
    return dest


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)


def make_superproject(root: Path, *, upstream: Path, tag: str, patch: bytes) -> Path:
    """The users' repository at `root`: the submodule (a clone of `upstream`) at `tag`, `patch` beside it."""
    root.mkdir(parents=True)
    git(root, "init", "--quiet")
    git(root, "config", "user.email", "test@localhost")
    git(root, "config", "user.name", "test")
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "--quiet", str(upstream), SUBMODULE)
    git(root / SUBMODULE, "checkout", "--quiet", tag)
    (root / PATCH).parent.mkdir(parents=True)
    (root / PATCH).write_bytes(patch)
    (root / "pyproject.toml").write_text(CONFIG)
    commit_all(root, f"MAS submodule at {tag} with its patch")
    return root


def use_series(root: Path, patches: Mapping[str, bytes], *, series_file: bool = False) -> list[Path]:
    """The superproject takes a series instead of its one patch, committed: each patch beside where that one was,
    named in order by `patches = [...]`, or by a quilt-style `series` file beside them with `series_file`."""
    directory = PurePosixPath(PATCH).parent
    (root / PATCH).unlink()
    paths = []
    for name, data in patches.items():
        (root / str(directory) / name).write_bytes(data)
        paths.append(root / str(directory) / name)
    if series_file:
        (root / str(directory) / "series").write_text("".join(f"{name}\n" for name in patches))
        key = f'series = "{directory}/series"'
    else:
        key = "patches = [" + ", ".join(f'"{directory}/{name}"' for name in patches) + "]"
    (root / "pyproject.toml").write_text(CONFIG.replace(f'patch = "{PATCH}"', key))
    commit_all(root, "a series of patches")
    return paths


def git_state(root: Path, files: Sequence[str] = (PATCH,)) -> dict[str, object]:
    """What a bump may write: the submodule's HEAD and work tree, the superproject's index and `files` (the
    patches, relative to `root`)."""
    submodule = root / SUBMODULE
    return {
        "status": git(root, "status", "--porcelain", "--untracked-files=all"),  # refreshes the index's stat data
        "index": (root / ".git" / "index").read_bytes(),
        "staged": git(root, "ls-files", "--stage"),
        "submodule HEAD": git(submodule, "rev-parse", "HEAD"),
        "submodule branch": git(submodule, "rev-parse", "--abbrev-ref", "HEAD"),
        "Dockerfile": (submodule / "Dockerfile").read_bytes(),
        **{name: (root / name).read_bytes() for name in files},
        "HEAD": git(root, "rev-parse", "HEAD"),
    }


def assert_git_state_unchanged(root: Path, before: dict[str, object], files: Sequence[str] = (PATCH,)) -> None:
    """The index file is compared before anything else runs git there: `git status` rewrites the stat data the
    index caches when a file was written back (a new inode), which is git's bookkeeping, not the user's state."""
    index = (root / ".git" / "index").read_bytes()
    assert index == before["index"]
    assert {**git_state(root, files), "index": index} == before
