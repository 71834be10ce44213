"""Merging a patch's changes onto another version of its file, one run of -/+ lines at a time.

Each change of each hunk is merged on its own, with `git merge-file`, into the ref's
file alone: that tells which hunk a conflict belongs to, where the change or the
conflict now is in the ref's file, and what each side has there.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from unidiff.constants import LINE_TYPE_NO_NEWLINE
from unidiff.patch import Hunk, PatchedFile

from harness.errors import CommandFailed, PatchError
from harness.patch.patchfile import Patch, file_name
from harness.proc import run

ChangeStatus = Literal["clean", "upstream", "conflict"]
"""clean: merges; upstream: the ref already has this change; conflict: needs a human."""
ConflictKind = Literal["same-place", "adjacent", "overlap"]
RefreshStatus = Literal["clean", "conflict", "upstreamed", "resolved", "patch-side"]

CONFLICT_REASONS: Mapping[ConflictKind, str] = {
    "same-place": "upstream and the patch both insert lines at this point",
    "adjacent": "upstream added lines right next to the lines the patch changes",
    "overlap": "upstream changed lines that the patch changes too",
}

# Markers of the per-change merges, which are parsed, never shown.
_OURS, _BASE, _THEIRS = "upstream", "base", "patch"
_INDEX = re.compile(r"^index ([0-9a-f]{4,40})\.\.([0-9a-f]{4,40})(?: ([0-7]{6}))?\s*$")


def isolated_git_env(root: Path) -> dict[str, str]:
    # The user's git config (diff.algorithm, diff.noprefix, diff.context, ...) must not shape the merge or the diff.
    return {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CEILING_DIRECTORIES": str(root.parent)}


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their endings; unlike bytes.splitlines, a lone CR stays inside its line."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def as_text(lines: Sequence[bytes]) -> tuple[str, ...]:
    return tuple(line.decode("utf-8", "replace").rstrip("\r\n") for line in lines)


def common_prefix(left: Sequence[bytes], right: Sequence[bytes]) -> int:
    count = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        count += 1
    return count


# -- the patch, taken apart ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Change:
    """One run of -/+ lines of a hunk."""

    start: int
    """0-based index of the first pre-image line it replaces, or of the line it inserts before."""
    removed: tuple[bytes, ...]
    added: tuple[bytes, ...]


def hunk_changes(hunk: Hunk) -> list[Change]:
    # A hunk of zero pre-image lines names the line it inserts after, not its first line.
    at = hunk.source_start - 1 if hunk.source_length else hunk.source_start
    changes: list[Change] = []
    start: int | None = None
    removed: list[bytes] = []
    added: list[bytes] = []
    previous: list[bytes] | None = None
    for line in hunk:
        if line.line_type == LINE_TYPE_NO_NEWLINE:
            if previous:
                previous[-1] = previous[-1].removesuffix(b"\n")
            continue
        value = line.value.encode("utf-8")
        if line.is_context:
            if start is not None:
                changes.append(Change(start=start, removed=tuple(removed), added=tuple(added)))
                start, removed, added = None, [], []
            previous = None
            at += 1
            continue
        if start is None:
            start = at
        if line.is_removed:
            removed.append(value)
            previous = removed
            at += 1
        else:
            added.append(value)
            previous = added
    if start is not None:
        changes.append(Change(start=start, removed=tuple(removed), added=tuple(added)))
    return changes


def splice(base: Sequence[bytes], changes: Sequence[Change]) -> list[bytes]:
    out = list(base)
    for change in sorted(changes, key=lambda c: c.start, reverse=True):
        out[change.start : change.start + len(change.removed)] = change.added
    return out


def index_ids(patch: Patch, patched: PatchedFile) -> tuple[str, str, str | None]:
    """(pre-image id, post-image id, mode) from the file's `index` line."""
    for line in reversed(list(patched.patch_info or ())):
        found = _INDEX.match(line)
        if found:
            return found.group(1), found.group(2), found.group(3)
    raise PatchError(
        f"patch {patch.path} has no `index` line for {file_name(patched)}: refresh needs the pre-image blob id "
        "(make patches with `git diff --full-index`)"
    )


def preimage_ids(patch: Patch) -> dict[str, str]:
    """File -> the blob id (or the abbreviation) the patch names as its pre-image."""
    return {file_name(patched): index_ids(patch, patched)[0] for patched in patch.patchset}


# -- merging -------------------------------------------------------------------------------------


def merge_file(
    ours: bytes, base: bytes, theirs: bytes, *, labels: tuple[str, str, str], style: str
) -> tuple[bytes, int]:
    """`git merge-file` on three texts: the merged text (with markers) and the number of conflicts."""
    with tempfile.TemporaryDirectory(prefix="mas-harness-merge-") as tmp:
        root = Path(tmp)
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            (root / name).write_bytes(data)
        argv = ["git", "merge-file", "--stdout", style]
        for label in labels:
            argv += ["-L", label]
        proc = run(*argv, "ours", "base", "theirs", cwd=root, check=False, env=isolated_git_env(root))
    # The exit status is the number of conflicts (at most 127); a failure is negative, i.e. above 127.
    if proc.returncode > 127:
        raise CommandFailed(argv, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout, proc.returncode


@dataclass(frozen=True, kw_only=True)
class ChangeMerge:
    """One run of -/+ lines of a hunk, merged on its own into the ref's file."""

    base_line: int
    """1-based: the first pre-image line it replaces, or the line it inserts before."""
    removed: int
    added: int
    status: ChangeStatus
    new_line: int | None
    """Clean: where the change now starts in the ref's file. Conflict: the first line of the region there."""
    kind: ConflictKind | None = None
    upstream_lines: tuple[str, ...] = ()
    """Conflict: what the ref has in the region."""
    base_lines: tuple[str, ...] = ()
    """Conflict: what the pre-image had there."""
    patch_lines: tuple[str, ...] = ()
    """Conflict: what the patch puts there."""

    @property
    def region(self) -> str:
        if self.new_line is None:
            return "-"
        last = self.new_line + max(len(self.upstream_lines), 1) - 1
        return f"{self.new_line}" if last == self.new_line else f"{self.new_line}-{last}"

    def describe(self) -> str:
        if self.status == "clean":
            return f"pre-image line {self.base_line} merges at line {self.new_line}"
        if self.status == "upstream":
            return f"pre-image line {self.base_line}: upstream already has this change"
        assert self.kind is not None
        return f"{'lines' if '-' in self.region else 'line'} {self.region}: {CONFLICT_REASONS[self.kind]}"


def merge_change(ours: list[bytes], base: list[bytes], change: Change) -> ChangeMerge:
    theirs = splice(base, [change])
    merged_data, conflicts = merge_file(
        b"".join(ours), b"".join(base), b"".join(theirs), labels=(_OURS, _BASE, _THEIRS), style="--diff3"
    )
    merged = split_lines(merged_data)
    unmerged = ChangeMerge(
        base_line=change.start + 1,
        removed=len(change.removed),
        added=len(change.added),
        status="upstream",
        new_line=None,
    )
    if conflicts == 0:
        if merged == ours:
            return unmerged
        # Both first differences slide the same way when the change's edges repeat the lines around it.
        offset = common_prefix(ours, merged) - common_prefix(base, theirs)
        return replace(unmerged, status="clean", new_line=change.start + offset + 1)
    # Only this change differs from the base on the patch's side, so it makes the one conflict,
    # and everything before the marker is the ref's own text.
    stripped = [line.rstrip(b"\r\n") for line in merged]
    start = stripped.index(b"<" * 7 + b" " + _OURS.encode())
    middle = stripped.index(b"|" * 7 + b" " + _BASE.encode(), start)
    separator = stripped.index(b"=" * 7, middle)
    end = stripped.index(b">" * 7 + b" " + _THEIRS.encode(), separator)
    upstream_lines, base_lines = merged[start + 1 : middle], merged[middle + 1 : separator]
    kind: ConflictKind
    if not base_lines:
        kind = "same-place"
    elif len(upstream_lines) > len(base_lines) and base_lines in (
        upstream_lines[: len(base_lines)],
        upstream_lines[len(upstream_lines) - len(base_lines) :],
    ):
        kind = "adjacent"
    else:
        kind = "overlap"
    return replace(
        unmerged,
        status="conflict",
        new_line=start + 1,
        kind=kind,
        upstream_lines=as_text(upstream_lines),
        base_lines=as_text(base_lines),
        patch_lines=as_text(merged[separator + 1 : end]),
    )


@dataclass(frozen=True, kw_only=True)
class HunkMerge:
    file: str
    index: int
    header: str
    """The input hunk's `@@` line."""
    old_start: int
    status: ChangeStatus
    """conflict if any change conflicts, upstream if the ref has every change, else clean."""
    new_start: int | None
    """Clean: where the hunk now starts in the ref's file (its first line of context)."""
    offset: int | None
    changes: tuple[ChangeMerge, ...]
    new_header: str | None = None
    """The `@@` line of the candidate patch's hunk that carries this hunk's change."""

    @property
    def conflicts(self) -> tuple[ChangeMerge, ...]:
        return tuple(change for change in self.changes if change.status == "conflict")

    def describe(self) -> str:
        where = f"{self.file} hunk #{self.index} {self.header}"
        if self.status == "clean":
            return f"{where}: merges cleanly at line {self.new_start} (offset {self.offset:+d})"
        if self.status == "upstream":
            return f"{where}: upstream already has it"
        return f"{where}: needs a human: " + "; ".join(change.describe() for change in self.conflicts)


def hunk_merge(name: str, index: int, hunk: Hunk, changes: tuple[ChangeMerge, ...]) -> HunkMerge:
    statuses = {change.status for change in changes}
    status: ChangeStatus = "conflict" if "conflict" in statuses else "upstream" if statuses == {"upstream"} else "clean"
    first = next((c for c in changes if c.status == "clean"), None)
    offset = first.new_line - first.base_line if first and first.new_line is not None and status == "clean" else None
    return HunkMerge(
        file=name,
        index=index,
        header=str(hunk).splitlines()[0],
        old_start=hunk.source_start,
        status=status,
        new_start=hunk.source_start + offset if offset is not None else None,
        offset=offset,
        changes=changes,
    )
