"""A patch file: read, parsed with unidiff, its paths checked, its DEP-3 header read.

The harness changes the content of files that exist, as `git apply` would; a patch
that asks for anything else (a mode change, a rename or copy, an added or deleted
file, a symbolic link, a binary diff) is refused before anything runs, rather than
carried out in part.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

from harness.errors import PatchError
from harness.files import MAX_INPUT_BYTES, read_input, size_text

MAX_HUNKS = 2000
"""Likewise for hunks: the patch has a handful, and unidiff's cost grows with every one."""

# Extended header lines of `git diff` that ask for more than a content change, and what they ask for.
_REFUSED_HEADERS = {
    "old mode": "a mode change",
    "new mode": "a mode change",
    "new file mode": "a new file",
    "deleted file mode": "a deleted file",
    "rename from": "a rename",
    "rename to": "a rename",
    "copy from": "a copy",
    "copy to": "a copy",
    "GIT binary patch": "a binary diff",
    "Binary files": "a binary diff",
}
_INDEX_LINE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+(?: (?P<mode>\d+))?$")
_REGULAR_MODES = ("100644", "100755")


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
        # Only a regular file, and one byte past the limit at most: /dev/zero or a pipe costs no more than a patch.
        data = read_input(path, "patch", limit=MAX_INPUT_BYTES, error=PatchError)
        if data is None:
            raise PatchError(f"patch {path} does not exist")
        return cls.parse(data, path=path)

    @classmethod
    def parse(cls, data: bytes, *, path: Path) -> Patch:
        if len(data) > MAX_INPUT_BYTES:
            raise PatchError(_too_big(path, len(data)))
        if not data.strip():
            raise PatchError(f"patch {path} is empty")
        hunks = data.count(b"\n@@ ") + data.startswith(b"@@ ")
        if hunks > MAX_HUNKS:
            raise PatchError(
                f"patch {path} has {hunks:,} hunks, more than the {MAX_HUNKS:,} a Dockerfile patch plausibly has "
                "(a few): is it the right file?"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PatchError(f"patch {path} is not UTF-8 text") from None
        _refuse_extended_headers(text, path)
        try:
            patchset = PatchSet(text)
        except UnidiffParseError as exc:
            raise PatchError(f"patch {path} is malformed: {exc}") from None
        if not patchset or not any(len(patched) for patched in patchset):
            raise PatchError(f"patch {path} contains no hunks")
        files: list[str] = []
        for patched in patchset:
            name = file_name(patched)
            before, after = _strip_prefix(patched.source_file), _strip_prefix(patched.target_file)
            for named in {name, before, after}:
                if named != "/dev/null":
                    _require_inside_tree(named, path)
            if "/dev/null" in (before, after) or patched.is_added_file or patched.is_removed_file:
                raise PatchError(f"patch {path} adds or removes {name}; only modifications are supported")
            if _is_git_diff(patched) and before != after:
                # git apply reads different names in a git diff as a rename (a plain diff names its target).
                raise PatchError(
                    f"patch {path} renames {before} to {after}; the harness changes files in place only: "
                    "make the patch without the rename (git diff --no-renames)"
                )
            files.append(name)
        return cls(path=path, data=data, files=tuple(files), header=_dep3_header(data), patchset=patchset)


def _too_big(path: Path, size: int) -> str:
    return (
        f"patch {path} is {size_text(size)}, more than the {size_text(MAX_INPUT_BYTES)} a Dockerfile patch "
        "plausibly has (a few KB): is it the right file?"
    )


def file_name(patched: PatchedFile) -> str:
    """The path a patched file names in the tree; a patch saved with CRLF line endings has a CR after it, which
    git apply drops too."""
    return str(patched.path).removesuffix("\r")


def _is_git_diff(patched: PatchedFile) -> bool:
    return any(str(line).startswith("diff --git ") for line in patched.patch_info or ())


def _strip_prefix(name: str) -> str:
    name = name.removesuffix("\r")
    return name[2:] if name[:2] in ("a/", "b/") else name


def _refuse_extended_headers(text: str, path: Path) -> None:
    """Refuse what `git diff` headers ask beyond a content change, naming the line; only lines from the first
    `diff --git` on are headers (the DEP-3 text before it is prose)."""
    in_git_diff = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if line.startswith("diff --git "):
            in_git_diff = True
            continue
        if not in_git_diff or line[:1] in (" ", "+", "-", "\\", "@", ""):
            continue
        asked = next((what for prefix, what in _REFUSED_HEADERS.items() if line.startswith(prefix)), None)
        index = _INDEX_LINE.match(line)
        if index and index.group("mode") not in (None, *_REGULAR_MODES):
            asked = f"a file of mode {index.group('mode')} (a symbolic link or a submodule)"
        if asked is not None:
            raise PatchError(
                f"patch {path} line {number} (`{line}`) asks for {asked}; the harness applies content changes to "
                "regular files only: remove it from the patch"
            )


def _require_inside_tree(name: str, patch_path: Path) -> None:
    # PurePosixPath drops a '.' or an empty component ('a/./Dockerfile', 'Dockerfile/'): judge the text itself.
    components = name.split("/")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in components or not pure.parts:
        raise PatchError(f"patch {patch_path} names {name!r}, a path that escapes the tree; refusing it")
    if any(component.casefold() == ".git" for component in components):
        raise PatchError(f"patch {patch_path} names {name!r}, a path that escapes the tree; refusing it")
    if any(component in ("", ".") for component in components):
        raise PatchError(
            f"patch {patch_path} is malformed: it names {name!r}, which is not a plain path of a file (a '.' or an "
            f"empty component), and git apply refuses it too; name the file {pure.as_posix()!r}"
        )


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
