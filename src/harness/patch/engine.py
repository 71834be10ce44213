"""The patch engine: state, idempotent and atomic apply, revert, with per-hunk detail.

`git apply` is the authority on whether a patch applies (zero fuzz, as users run
it); unidiff reads the hunks so that a conflict can be explained hunk by hunk.
Every git apply runs in a private staging directory holding copies of the files
the patch touches, so a failure can never leave the user's tree half-written and
files the patch does not name are never opened for writing.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Literal

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from harness.errors import CheckFailed, CommandFailed, PatchError
from harness.proc import run

HunkStatus = Literal["exact", "offset", "applied", "conflict"]


class State(enum.StrEnum):
    APPLIES = "applies"
    """Pristine: the forward check passes."""
    APPLIED = "applied"
    """Our earlier apply: the reverse check passes, the committed file does not have the change."""
    UPSTREAMED = "upstreamed"
    """The committed upstream file already has the change: drop the patch."""
    CONFLICT = "conflict"
    """Neither forward nor reverse applies."""


def git_blob_id(data: bytes) -> str:
    """The id `git hash-object` gives these bytes, computed without a repository."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Patch:
    path: Path
    data: bytes
    files: tuple[str, ...]
    header: Mapping[str, str]
    patchset: PatchSet = field(repr=False, compare=False)

    @classmethod
    def load(cls, path: Path) -> Patch:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PatchError(f"patch {path} does not exist") from None
        except OSError as exc:
            raise PatchError(f"patch {path} cannot be read: {exc.strerror}") from None
        return cls.parse(data, path=path)

    @classmethod
    def parse(cls, data: bytes, *, path: Path) -> Patch:
        if not data.strip():
            raise PatchError(f"patch {path} is empty")
        try:
            patchset = PatchSet(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise PatchError(f"patch {path} is not UTF-8 text") from None
        except UnidiffParseError as exc:
            raise PatchError(f"patch {path} is malformed: {exc}") from None
        if not patchset or not any(len(patched) for patched in patchset):
            raise PatchError(f"patch {path} contains no hunks")
        files: list[str] = []
        for patched in patchset:
            for name in {patched.path, _strip_prefix(patched.source_file), _strip_prefix(patched.target_file)}:
                if name != "/dev/null":
                    _require_inside_tree(name, path)
            if patched.is_added_file or patched.is_removed_file:
                raise PatchError(f"patch {path} adds or removes {patched.path}; only modifications are supported")
            files.append(patched.path)
        return cls(path=path, data=data, files=tuple(files), header=_dep3_header(data), patchset=patchset)


def _strip_prefix(name: str) -> str:
    return name[2:] if name[:2] in ("a/", "b/") else name


def _require_inside_tree(name: str, patch_path: Path) -> None:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or ".git" in pure.parts or not pure.parts:
        raise PatchError(f"patch {patch_path} names {name!r}, a path that escapes the tree; refusing it")


def _dep3_header(data: bytes) -> dict[str, str]:
    """DEP-3 fields from the text before the first diff (continuation lines folded in)."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in data.decode("utf-8").splitlines():
        if line.startswith(("diff --git ", "--- ", "---\t")) or line == "---":
            break
        if line[:1] in (" ", "\t") and last:
            fields[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            if key and " " not in key:
                last = key.strip()
                fields[last] = value.strip()
    return fields


# -- hunk detail ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HunkReport:
    file: str
    index: int
    header: str
    expected_start: int
    """First upstream line the hunk expects (1-based), from its header."""
    expected_length: int
    status: HunkStatus
    found_at: int | None = None
    offset: int | None = None
    mismatch_line: int | None = None
    """For a conflict: the first line of the file that did not match."""
    mismatch_expected: str | None = None
    mismatch_found: str | None = None

    def describe(self) -> str:
        where = f"{self.file} hunk #{self.index} {self.header}"
        if self.status == "exact":
            return f"{where}: applies at line {self.found_at}"
        if self.status == "offset":
            return f"{where}: applies at line {self.found_at} (offset {self.offset:+d})"
        if self.status == "applied":
            return f"{where}: already applied at line {self.found_at}"
        return (
            f"{where}: conflict; line {self.mismatch_line} is {self.mismatch_found!r}, "
            f"the patch expects {self.mismatch_expected!r}"
        )


def _find_block(lines: list[str], block: list[str], near: int) -> int | None:
    """The start of `block` in `lines` nearest to `near`, searching outwards as git apply does."""
    if not block:
        return min(max(near, 0), len(lines))
    last_start = len(lines) - len(block)
    for distance in range(max(near, last_start - near) + 1):
        for start in (near - distance, near + distance) if distance else (near,):
            if 0 <= start <= last_start and lines[start : start + len(block)] == block:
                return start
    return None


def _first_mismatch(lines: list[str], block: list[str], near: int) -> tuple[int, str, str]:
    """Align `block` where most of its leading lines match, and return the first line that does not."""
    best_start, best_len = near, -1
    for start in range(len(lines)):
        matched = 0
        while matched < len(block) and start + matched < len(lines) and lines[start + matched] == block[matched]:
            matched += 1
        if matched > best_len or (matched == best_len and abs(start - near) < abs(best_start - near)):
            best_start, best_len = start, matched
    at = best_start + max(best_len, 0)
    found = lines[at] if at < len(lines) else "<end of file>"
    return at + 1, block[min(best_len, len(block) - 1)].rstrip("\n"), found.rstrip("\n")


def hunk_reports(patch: Patch, contents: Mapping[str, bytes | None]) -> list[HunkReport]:
    reports: list[HunkReport] = []
    for patched in patch.patchset:
        data = contents.get(patched.path)
        lines = data.decode("utf-8", "surrogateescape").splitlines(keepends=True) if data is not None else []
        drift = 0
        for index, hunk in enumerate(patched, start=1):
            before = [line.value for line in hunk if line.is_context or line.is_removed]
            after = [line.value for line in hunk if line.is_context or line.is_added]
            expected = hunk.source_start - 1
            header = str(hunk).splitlines()[0]
            unlocated = HunkReport(
                file=patched.path,
                index=index,
                header=header,
                expected_start=hunk.source_start,
                expected_length=hunk.source_length,
                status="conflict",
            )
            start = _find_block(lines, before, expected + drift)
            if start is not None:
                drift = start - expected
                status: HunkStatus = "exact" if start == expected else "offset"
                reports.append(replace(unlocated, status=status, found_at=start + 1, offset=start - expected))
                continue
            start = _find_block(lines, after, hunk.target_start - 1 + drift)
            if start is not None:
                offset = start - (hunk.target_start - 1)
                reports.append(replace(unlocated, status="applied", found_at=start + 1, offset=offset))
                continue
            line_no, wanted, found = _first_mismatch(lines, before, expected + drift)
            if data is None:
                found = "<file missing>"
            elif found.rstrip("\r") == wanted and found.endswith("\r"):
                found += "  (CRLF line ending; the patch has LF)"
            reports.append(replace(unlocated, mismatch_line=line_no, mismatch_expected=wanted, mismatch_found=found))
    return reports


# -- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PatchReport:
    state: State
    hunks: tuple[HunkReport, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    action: Literal["applied", "reverted", "no-op"]
    report: PatchReport
    message: str


class PatchConflict(CheckFailed):
    def __init__(self, message: str, report: PatchReport) -> None:
        super().__init__(message)
        self.report = report


def read_files(tree: Path, patch: Patch) -> dict[str, bytes | None]:
    contents: dict[str, bytes | None] = {}
    for name in patch.files:
        try:
            contents[name] = (tree / name).read_bytes()
        except FileNotFoundError:
            contents[name] = None
    return contents


@contextlib.contextmanager
def _staging(contents: Mapping[str, bytes | None]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mas-harness-apply-") as tmp:
        root = Path(tmp)
        for name, data in contents.items():
            if data is not None:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
        yield root


def _git_apply(root: Path, patch: Patch, *flags: str) -> tuple[bool, str]:
    # The ceiling keeps git from discovering a repository above the staging directory.
    proc = run(
        "git",
        "apply",
        *flags,
        "-",
        cwd=root,
        check=False,
        input_bytes=patch.data,
        env={"GIT_CEILING_DIRECTORIES": str(root.parent)},
    )
    return proc.returncode == 0, proc.stderr.decode(errors="replace").strip()


def _checks(contents: Mapping[str, bytes | None], patch: Patch) -> tuple[bool, bool]:
    with _staging(contents) as root:
        forward, _ = _git_apply(root, patch, "--check")
        reverse, _ = _git_apply(root, patch, "--check", "--reverse")
    return forward, reverse


def evaluate(
    contents: Mapping[str, bytes | None],
    patch: Patch,
    *,
    committed: Mapping[str, bytes | None] | None = None,
) -> PatchReport:
    """The state of `contents` with respect to `patch`.

    `committed` is the same files as the commit they were checked out from has
    them. When the reverse check passes, it tells our own earlier apply (the
    commit lacks the change) from upstream having taken it (the commit has it).
    For a ref read straight from upstream, pass the contents themselves; None
    means there is no commit to compare with, and the change is taken as ours.
    """
    hunks = tuple(hunk_reports(patch, contents))
    forward, reverse = _checks(contents, patch)
    if forward:
        return PatchReport(state=State.APPLIES, hunks=hunks, reason="the forward check passes")
    if reverse:
        if committed is None:
            return PatchReport(
                state=State.APPLIED,
                hunks=hunks,
                reason="the reverse check passes (no commit to compare with: taken as our apply)",
            )
        if committed == contents or _checks(committed, patch)[1]:
            return PatchReport(
                state=State.UPSTREAMED,
                hunks=hunks,
                reason="the committed upstream file already has the change: drop the patch",
            )
        return PatchReport(
            state=State.APPLIED, hunks=hunks, reason="the reverse check passes and the commit does not have the change"
        )
    conflicts = [h.describe() for h in hunks if h.status == "conflict"]
    reason = "; ".join(conflicts) if conflicts else "git apply rejects the patch in both directions"
    return PatchReport(state=State.CONFLICT, hunks=hunks, reason=reason)


def committed_files(tree: Path, names: Sequence[str]) -> dict[str, bytes | None] | None:
    """These files as HEAD has them, or None when `tree` is not a git work tree's top."""
    probe = run("git", "rev-parse", "--show-toplevel", cwd=tree, check=False)
    if probe.returncode != 0 or Path(probe.stdout.decode().strip()).resolve() != tree.resolve():
        return None
    contents: dict[str, bytes | None] = {}
    for name in names:
        shown = run("git", "show", f"HEAD:{name}", cwd=tree, check=False)
        contents[name] = shown.stdout if shown.returncode == 0 else None
    return contents


def status(tree: Path, patch: Patch) -> PatchReport:
    return evaluate(read_files(tree, patch), patch, committed=committed_files(tree, patch.files))


def patched_contents(patch: Patch, contents: Mapping[str, bytes | None], *, reverse: bool = False) -> dict[str, bytes]:
    """The files as applying (or reversing) the patch leaves them, computed off the tree."""
    flags = ("--reverse",) if reverse else ()
    with _staging(contents) as root:
        ok, error = _git_apply(root, patch, *flags)
        if not ok:
            raise CommandFailed(["git", "apply", *flags], 1, error)
        return {name: (root / name).read_bytes() for name in patch.files}


def _replace_all(tree: Path, originals: Mapping[str, bytes | None], updated: Mapping[str, bytes]) -> None:
    """Write every file or none: each goes through a temp file and os.replace, rolled back on failure."""
    done: list[str] = []
    try:
        for name, data in updated.items():
            _atomic_write(tree / name, data)
            done.append(name)
    except BaseException:
        for name in done:
            original = originals[name]
            if original is not None:
                _atomic_write(tree / name, original)
        raise


def _atomic_write(target: Path, data: bytes) -> None:
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".mas-harness")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).chmod(mode)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def apply(tree: Path, patch: Patch) -> ApplyResult:
    """Apply once: a second call is a reported no-op; on any failure the tree is unchanged."""
    contents = read_files(tree, patch)
    report = evaluate(contents, patch, committed=committed_files(tree, patch.files))
    if report.state == State.APPLIED:
        return ApplyResult(action="no-op", report=report, message=f"{patch.path.name} is already applied")
    if report.state != State.APPLIES:
        raise PatchConflict(f"{patch.path.name} cannot be applied to {tree}: {report.state}: {report.reason}", report)
    updated = patched_contents(patch, contents)
    with _staging(updated) as check_root:
        reversible, _ = _git_apply(check_root, patch, "--check", "--reverse")
    if not reversible:
        raise PatchConflict(
            f"{patch.path.name} applies to {tree} but its result does not reverse-check; tree left unchanged", report
        )
    _replace_all(tree, contents, updated)
    return ApplyResult(action="applied", report=report, message=f"applied {patch.path.name} to {tree}")


def revert(tree: Path, patch: Patch) -> ApplyResult:
    """Undo an apply; a tree without the patch is a reported no-op."""
    contents = read_files(tree, patch)
    report = evaluate(contents, patch, committed=committed_files(tree, patch.files))
    if report.state == State.APPLIES:
        return ApplyResult(action="no-op", report=report, message=f"{patch.path.name} is not applied")
    if report.state != State.APPLIED:
        raise PatchConflict(f"{patch.path.name} cannot be reverted in {tree}: {report.state}: {report.reason}", report)
    updated = patched_contents(patch, contents, reverse=True)
    _replace_all(tree, contents, updated)
    return ApplyResult(action="reverted", report=report, message=f"reverted {patch.path.name} in {tree}")
