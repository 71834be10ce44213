"""Test doubles of a patched tree: a Dockerfile of thirty numbered lines, and small patches of it that a series
of them applies in order (the second made on the tree the first leaves)."""

from __future__ import annotations

from pathlib import Path

import pytest

UPSTREAM = b"".join(b"line %d\n" % n for n in range(1, 31))
"""A stand-in for upstream's Dockerfile (and Dockerfile.debug): thirty numbered lines."""

FIRST = b"""Description: the first patch of the series
---
--- a/Dockerfile
+++ b/Dockerfile
@@ -3,3 +3,3 @@
 line 3
-line 4
+line 4 patched
 line 5
"""
SECOND = b"""Description: the second patch, made on the tree the first leaves
---
--- a/Dockerfile
+++ b/Dockerfile
@@ -3,3 +3,3 @@
 line 3
-line 4 patched
+line 4 patched again
 line 5
@@ -20,3 +20,4 @@
 line 20
 line 21
+inserted after 21
 line 22
"""
DEBUG = b"""--- a/Dockerfile.debug
+++ b/Dockerfile.debug
@@ -9,3 +9,3 @@
 line 9
-line 10
+line 10 patched
 line 11
"""
AFTER_SECOND = UPSTREAM.replace(b"line 4\n", b"line 4 patched again\n").replace(
    b"line 21\n", b"line 21\ninserted after 21\n"
)
"""The Dockerfile once FIRST and then SECOND are applied."""
DEBUG_PATCHED = UPSTREAM.replace(b"line 10\n", b"line 10 patched\n")
"""Dockerfile.debug once DEBUG is applied."""


def disk_full_at_the_second_write(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A test double of a full disk: the patch engine's second file write fails with ENOSPC (the others, the
    rollback's included, go through). The names written, in order, are returned as they are written."""
    from harness.patch import apply as patch_apply  # noqa: PLC0415  # patched where the engine looks it up

    real = patch_apply.write_in_tree  # type: ignore[attr-defined]
    calls: list[str] = []

    def write(tree: Path, name: str, data: bytes) -> None:
        calls.append(name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(tree, name, data)

    monkeypatch.setattr(patch_apply, "write_in_tree", write)
    return calls
