"""A patch file: read, parsed with unidiff, its paths checked, its DEP-3 header read."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from harness.errors import PatchError


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
