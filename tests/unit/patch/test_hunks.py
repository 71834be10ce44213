"""Where each hunk applies, or the first line that does not match: the same answer as a scan of every start, and an
answer at the size limits (a 1 MB Dockerfile, 2,000 hunks) without a scan per hunk."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.patch.hunks import _find_block, _first_mismatch, _Lines, hunk_reports
from harness.patch.patchfile import Patch


def _scan_find_block(lines: list[str], block: list[str], near: int) -> int | None:
    """The reference: compare the block at every start, outwards from `near` (earlier first), as git apply does."""
    if not block:
        return min(max(near, 0), len(lines))
    last_start = len(lines) - len(block)
    for distance in range(max(near, last_start - near) + 1):
        for start in (near - distance, near + distance) if distance else (near,):
            if 0 <= start <= last_start and lines[start : start + len(block)] == block:
                return start
    return None


def _scan_first_mismatch(lines: list[str], block: list[str], near: int) -> tuple[int, str, str]:
    """The reference: at every start count the matching leading lines; the most, nearest to `near`, wins."""
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


@pytest.mark.parametrize("seed", range(40))
def test_the_index_finds_what_a_scan_of_every_start_finds(seed: int) -> None:
    chance = random.Random(seed)
    alphabet = [f"{word}\n" for word in ("a", "b", "c", "RUN x", "")][: chance.randint(2, 5)]
    lines = [chance.choice(alphabet) for _ in range(chance.randint(1, 60))]
    index = _Lines(lines)
    for _ in range(50):
        block = [chance.choice([*alphabet, "absent\n"]) for _ in range(chance.randint(1, 6))]
        near = chance.randint(-1, len(lines) + 2)
        assert _find_block(index, block, near) == _scan_find_block(lines, block, near), (lines, block, near)
        if _scan_find_block(lines, block, near) is None:
            assert _first_mismatch(index, block, near) == _scan_first_mismatch(lines, block, near), (lines, block, near)


def test_an_empty_block_applies_where_it_is_asked_to() -> None:
    index = _Lines(["a\n", "b\n"])
    assert [_find_block(index, [], near) for near in (-1, 1, 5)] == [0, 1, 2]


def test_two_thousand_hunks_that_match_nothing_in_a_1_mb_dockerfile_are_each_a_conflict_at_their_line() -> None:
    """The documented limits at once: each hunk's report names the line where it expected its text."""
    lines = [f"RUN echo line {n}\n".encode() for n in range(1, 60_000)]
    data = b"".join(lines)[:1_000_000]
    data = data[: data.rfind(b"\n") + 1]
    hunks = b"".join(b"@@ -%d +%d @@\n-no such line %d\n+y\n" % (25 * k + 1, 25 * k + 1, k) for k in range(2000))
    patch = Patch.parse(b"--- a/Dockerfile\n+++ b/Dockerfile\n" + hunks, path=Path("many.patch"))

    reports = hunk_reports(patch, {"Dockerfile": data})

    assert len(reports) == 2000
    assert {report.status for report in reports} == {"conflict"}
    assert [(r.mismatch_line, r.mismatch_found, r.mismatch_expected) for r in reports[::500]] == [
        (25 * k + 1, f"RUN echo line {25 * k + 1}", f"no such line {k}") for k in range(0, 2000, 500)
    ]


def test_hunks_found_in_a_1_mb_dockerfile_report_their_offsets() -> None:
    lines = [f"RUN echo line {n}\n".encode() for n in range(1, 50_000)]
    data = b"".join(lines)
    hunks = b"".join(
        b"@@ -%d +%d @@\n-RUN echo line %d\n+y\n" % (20 * k + 1, 20 * k + 1, 20 * k + 4) for k in range(2000)
    )
    patch = Patch.parse(b"--- a/Dockerfile\n+++ b/Dockerfile\n" + hunks, path=Path("offset.patch"))

    reports = hunk_reports(patch, {"Dockerfile": data})

    assert {(r.status, r.offset) for r in reports} == {("offset", 3)}
    assert reports[-1].found_at == 20 * 1999 + 4
