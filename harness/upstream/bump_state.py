"""The user's git state a bump writes, recorded first and put back byte for byte when the bump does not complete.

`mas-harness bump` is the one command that writes the user's git state: it moves the submodule's HEAD (a
detached checkout, as `git submodule update` leaves it), writes the patch files and stages the gitlink and
the patches. `snapshot` records, before any of it, where the submodule was checked out (and on which branch),
the superproject's index file and each patch file's bytes; `restore` puts every one of them back.

The record is also a journal, written durably in the superproject's git directory (`git rev-parse --git-path
mas-harness-bump-journal`) before the first write and removed once the bump is made or undone: a bump killed
midway (SIGKILL, a power cut) leaves it, and the next `bump` undoes what the killed one did first, unless the
superproject changed since (another commit, other staged changes, a patch file that is neither the old one
nor the bump's), when it stops and says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
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
    after: tuple[tuple[Path, bytes], ...] = ()
    """The bytes the bump writes to those of them it knows in advance (the patch)."""
    superproject_head: str | None = None
    staged: tuple[str, ...] = ()
    """What the bump stages (relative to the superproject)."""
    journal: Path | None = None

    def to_bytes(self) -> bytes:
        def b64(data: bytes | None) -> str | None:
            return None if data is None else base64.b64encode(data).decode()

        return json.dumps(
            {
                "format": JOURNAL_FORMAT,
                "root": str(self.root),
                "submodule": str(self.submodule),
                "head": self.head,
                "branch": self.branch,
                "index_file": str(self.index_file),
                "index": b64(self.index),
                "files": [[str(path), b64(data)] for path, data in self.files],
                "after": [[str(path), b64(data)] for path, data in self.after],
                "superproject_head": self.superproject_head,
                "staged": list(self.staged),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, journal: Path) -> GitState:
        def unb64(text: str | None) -> bytes | None:
            return None if text is None else base64.b64decode(text, validate=True)

        def not_ours(why: object) -> BadInput:
            return BadInput(f"the bump journal {journal} is not one this harness wrote ({why}): remove it")

        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise not_ours(exc) from None
        if not isinstance(doc, dict) or doc.get("format") != JOURNAL_FORMAT:
            raise not_ours("another format")
        try:
            return cls(
                root=Path(doc["root"]),
                submodule=Path(doc["submodule"]),
                head=doc["head"],
                branch=doc["branch"],
                index_file=Path(doc["index_file"]),
                index=unb64(doc["index"]),
                files=tuple((Path(p), unb64(d)) for p, d in doc["files"]),
                after=tuple((Path(p), unb64(d) or b"") for p, d in doc["after"]),
                superproject_head=doc["superproject_head"],
                staged=tuple(doc["staged"]),
                journal=journal,
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise not_ours(exc) from None


def _ok(*args: str, cwd: Path) -> str | None:
    proc = run("git", *args, cwd=cwd, check=False)
    # git prints paths as their bytes: one that is not UTF-8 (a checkout named under the C locale) is decoded as a
    # file name, as harness.proc.git decodes it.
    return os.fsdecode(proc.stdout).rstrip("\n") if proc.returncode == 0 else None


def _z_paths(out: str) -> list[str]:
    return [p for p in out.split("\0") if p]


def dirty_paths(work_tree: Path) -> list[str]:
    """Tracked files of a work tree with changes, staged or not (untracked files a checkout leaves alone)."""
    out = git(
        "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=no", "--no-renames", cwd=work_tree
    )
    return [entry[3:] for entry in _z_paths(out)]


def from_top(root: Path, paths: list[str]) -> list[str]:
    """`paths` relative to `root` as git names them in its listings: relative to the top of the work tree."""
    prefix = git("rev-parse", "--show-prefix", cwd=root)
    return [f"{prefix}{path}" for path in paths]


def staged_paths(root: Path) -> list[str]:
    """Paths whose staged content differs from the superproject's HEAD (all of the index before a first commit)."""
    if _ok("rev-parse", "--verify", "--quiet", "HEAD", cwd=root) is None:
        return _z_paths(git("ls-files", "-z", cwd=root))
    return _z_paths(git("--no-optional-locks", "diff", "--cached", "--name-only", "-z", "--no-renames", cwd=root))


def unstaged_paths(root: Path, paths: list[str]) -> list[str]:
    """Of `paths` (relative to the superproject), those whose work tree file differs from the index.

    Compared by content (the staged blob against `git hash-object`): `git diff` would refresh the stat data the
    index caches and write the index file, which a bump that is not made must leave as it was.
    """
    changed = []
    for path in paths:
        staged = git("ls-files", "--stage", "-z", "--", path, cwd=root).split("\0")[0]
        if not staged:
            continue  # not in the index: nothing staged to differ from
        blob = staged.split()[1]
        now = git("hash-object", "--", path, cwd=root) if (root / path).exists() else None
        if now != blob:
            changed.append(path)
    return changed


JOURNAL = "mas-harness-bump-journal"
JOURNAL_FORMAT = "mas-harness-bump-journal/1"


def journal_path(root: Path) -> Path:
    return Path(git("rev-parse", "--path-format=absolute", "--git-path", JOURNAL, cwd=root))


def snapshot(
    root: Path, submodule: Path, files: list[Path], *, staged: list[str], after: Mapping[Path, bytes]
) -> GitState:
    """Record what the bump may change, in memory and in the journal, before it changes anything."""
    index_file = Path(git("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=root))
    journal = journal_path(root)
    if journal.exists():
        raise BadInput(f"an interrupted bump left {journal}: run `mas-harness bump` (not --dry-run) to undo it first")
    state = GitState(
        root=root,
        submodule=submodule,
        head=git("rev-parse", "--verify", "HEAD", cwd=submodule),
        branch=_ok("symbolic-ref", "--quiet", "HEAD", cwd=submodule),
        index_file=index_file,
        index=index_file.read_bytes() if index_file.exists() else None,
        files=tuple((path, path.read_bytes() if path.exists() else None) for path in files),
        after=tuple(after.items()),
        superproject_head=_ok("rev-parse", "--verify", "--quiet", "HEAD", cwd=root),
        staged=tuple(staged),
        journal=journal,
    )
    atomic_write(journal, state.to_bytes(), mode=0o600, replace=False)
    return state


def finish(state: GitState) -> None:
    """The bump is made: its journal goes."""
    if state.journal is not None:
        state.journal.unlink(missing_ok=True)


def recover(root: Path) -> GitState | None:
    """Undo a bump that was killed midway, from its journal; None when there is none.

    Only when nothing else changed since: the same superproject commit, nothing staged but what the bump stages,
    and each file it writes either as it was or as the bump writes it.
    """
    journal = journal_path(root)
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return None
    state = GitState.from_bytes(data, journal=journal)
    keep = f"remove {journal} to keep things as they are"
    if _ok("rev-parse", "--verify", "--quiet", "HEAD", cwd=root) != state.superproject_head:
        raise BadInput(f"an interrupted bump left {journal}, and {root} was committed since: {keep}")
    others = [p for p in staged_paths(root) if p not in state.staged]
    if others:
        raise BadInput(f"an interrupted bump left {journal}, and {', '.join(others[:5])} were staged since: {keep}")
    written = dict(state.after)
    for path, before in state.files:
        now = path.read_bytes() if path.exists() else None
        if now != before and (path not in written or now != written[path]):
            raise BadInput(f"an interrupted bump left {journal}, and {path} was changed since: {keep}")
    restore(state)
    return state


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
    finish(state)


def gitlink_at(root: Path, revision: str, path: str) -> str | None:
    """The commit a superproject's `revision` records for the submodule at `path`; None without one."""
    listing = _ok("ls-tree", revision, "--", path, cwd=root) or ""
    for line in listing.splitlines():
        meta, _, name = line.partition("\t")
        fields = meta.split()
        if name == path and len(fields) == 3 and fields[1] == "commit":
            return fields[2]
    return None


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
