"""Where each hunk of a patch applies in a file, or the first line that does not match: the detail users act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from harness.patch.patchfile import Patch

HunkStatus = Literal["exact", "offset", "applied", "conflict"]


@dataclass(frozen=True, kw_only=True)
class HunkReport:
    file: str
    index: int
    header: str
    expected_start: int
    """First upstream line the hunk expects (1-based), from its header."""
    expected_length: int
    patch_line: int | None
    """The line of the patch file that holds this hunk's `@@` header."""
    status: HunkStatus
    found_at: int | None = None
    offset: int | None = None
    mismatch_line: int | None = None
    """For a conflict: the first line of the file that did not match."""
    mismatch_expected: str | None = None
    mismatch_found: str | None = None
    refused: str | None = None
    """For a conflict where the hunk's lines are there but git apply refuses it (a hunk without context, say):
    what git says."""

    def describe(self) -> str:
        where = f"{self.file} hunk #{self.index} {self.header}"
        if self.status == "exact":
            return f"{where}: applies at line {self.found_at}"
        if self.status == "offset":
            return f"{where}: applies at line {self.found_at} (offset {self.offset:+d})"
        if self.status == "applied":
            return f"{where}: already applied at line {self.found_at}"
        if self.refused is not None:
            return f"{where}: conflict; git apply refuses it: {self.refused}"
        return (
            f"{where}: conflict; line {self.mismatch_line} is {self.mismatch_found!r}, "
            f"the patch expects {self.mismatch_expected!r}"
        )


class _Lines:
    """A file's lines, and the same lines as one string with one character per distinct line: a block of lines is
    then a substring, found by str.find at C speed rather than compared at every start, hunk after hunk.

    The file is at most MAX_INPUT_BYTES long, so it has fewer distinct lines than there are characters.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._ids: dict[str, str] = {}
        self.text = "".join(self._ids.setdefault(line, chr(len(self._ids))) for line in lines)

    def known_prefix(self, block: list[str]) -> str:
        """The leading lines of `block` that occur in the file, as a substring to look for."""
        found: list[str] = []
        for line in block:
            if line not in self._ids:
                break
            found.append(self._ids[line])
        return "".join(found)

    def nearest(self, pattern: str, near: int) -> int | None:
        """The start of `pattern` nearest to line `near`, the earlier on a tie, as git apply searches outwards."""
        after = self.text.find(pattern, max(near, 0))
        before = self.text.rfind(pattern, 0, near + len(pattern)) if near >= 0 else -1
        if before >= 0 and (after < 0 or near - before <= after - near):
            return before
        return after if after >= 0 else None


def _find_block(lines: _Lines, block: list[str], near: int) -> int | None:
    """The start of `block` in the file nearest to `near`, searching outwards as git apply does."""
    if not block:
        return min(max(near, 0), len(lines.lines))
    pattern = lines.known_prefix(block)
    return lines.nearest(pattern, near) if len(pattern) == len(block) else None


def _first_mismatch(lines: _Lines, block: list[str], near: int) -> tuple[int, str, str]:
    """Align `block` where most of its leading lines match (nearest to `near`), and return the first line that
    does not."""
    if not lines.lines:
        return near + 1, block[-1].rstrip("\n"), "<end of file>"
    known = lines.known_prefix(block)
    # The longest leading part of the block that occurs anywhere: if k lines occur, so do k - 1.
    low, high = 0, len(known)
    while low < high:
        middle = (low + high + 1) // 2
        if known[:middle] in lines.text:
            low = middle
        else:
            high = middle - 1
    matched = low
    start = lines.nearest(known[:matched], near) if matched else None
    if start is None:
        start = min(max(near, 0), len(lines.lines) - 1)
    at = start + matched
    found = lines.lines[at] if at < len(lines.lines) else "<end of file>"
    return at + 1, block[min(matched, len(block) - 1)].rstrip("\n"), found.rstrip("\n")


def hunk_reports(patch: Patch, contents: Mapping[str, bytes | None]) -> list[HunkReport]:
    reports: list[HunkReport] = []
    for name, patched in zip(patch.files, patch.patchset, strict=True):
        data = contents.get(name)
        lines = _Lines(data.decode("utf-8", "surrogateescape").splitlines(keepends=True) if data is not None else [])
        drift = 0
        for index, hunk in enumerate(patched, start=1):
            before = [line.value for line in hunk if line.is_context or line.is_removed]
            after = [line.value for line in hunk if line.is_context or line.is_added]
            expected = hunk.source_start - 1
            header = str(hunk).splitlines()[0]
            unlocated = HunkReport(
                file=name,
                index=index,
                header=header,
                expected_start=hunk.source_start,
                expected_length=hunk.source_length,
                patch_line=hunk[0].diff_line_no - 1 if len(hunk) and hunk[0].diff_line_no else None,
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
            elif wanted.rstrip("\r") == found and wanted.endswith("\r"):
                found += "  (LF line ending; the patch has CRLF)"
            reports.append(replace(unlocated, mismatch_line=line_no, mismatch_expected=wanted, mismatch_found=found))
    return reports
