"""A series of patches on repositories the tests make: in order, all or nothing, each patch judged on the tree the
ones before it leave."""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import BadInput
from harness.patch import apply as patch_apply
from harness.patch.apply import (
    SeriesConflict,
    State,
    apply,
    apply_series,
    revert_series,
    series_status,
    status,
)
from harness.patch.journal import JOURNAL
from harness.patch.patchfile import Patch
from tests.support import MakeRepo, git
from tests.support.numbered import AFTER_SECOND, DEBUG, FIRST, SECOND, UPSTREAM, disk_full_at_the_second_write

A, B, C, APPLIED = FIRST, SECOND, DEBUG, AFTER_SECOND


def _load(directory: Path, name: str, data: bytes) -> Patch:
    (directory / name).write_bytes(data)
    return Patch.load(directory / name)


@pytest.fixture
def series(tmp_path: Path) -> tuple[Patch, Patch]:
    return _load(tmp_path, "a.patch", A), _load(tmp_path, "b.patch", B)


def _snapshot(tree: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(tree)): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(tree).parts
    }


def _journal(repo: Path) -> Path:
    return repo / git(repo, "rev-parse", "--git-path", JOURNAL)


def test_the_second_patch_is_judged_on_what_the_first_leaves(make_repo: MakeRepo, series: tuple[Patch, Patch]) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    second = series[1]
    assert status(repo, second).state == State.CONFLICT, "alone, the second patch does not fit the pristine file"
    report = series_status(repo, series)
    assert report.state == State.APPLIES
    assert [r.state for r in report.reports] == [State.APPLIES, State.APPLIES]
    assert [h.status for h in report.reports[1].hunks] == ["exact", "exact"]
    result = apply_series(repo, series)
    assert (result.action, result.message) == ("applied", f"applied the series a.patch, b.patch to {repo}")
    assert (repo / "Dockerfile").read_bytes() == APPLIED
    applied = series_status(repo, series)
    assert applied.state == State.APPLIED
    assert [r.state for r in applied.reports] == [State.APPLIED, State.APPLIED]


def test_applying_an_applied_series_is_a_no_op(make_repo: MakeRepo, series: tuple[Patch, Patch]) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    apply_series(repo, series)
    before = _snapshot(repo)
    again = apply_series(repo, series)
    assert (again.action, again.message) == ("no-op", "the series a.patch, b.patch is already applied")
    assert _snapshot(repo) == before
    assert not _journal(repo).exists()


def test_revert_undoes_the_last_patch_first_and_restores_every_byte(
    make_repo: MakeRepo, tmp_path: Path, series: tuple[Patch, Patch]
) -> None:
    """The second patch's hunk sits on the first's line: reverting the first patch first would not go through."""
    repo = make_repo({"Dockerfile": UPSTREAM, "Dockerfile.debug": UPSTREAM, "other.txt": b"upstream\n"})
    (repo / "other.txt").write_bytes(b"local edit\n")
    (repo / "Dockerfile").chmod(0o600)
    three = (*series, _load(tmp_path, "c.patch", C))
    before = _snapshot(repo)
    apply_series(repo, three)
    assert _snapshot(repo) != before
    result = revert_series(repo, three)
    assert (result.action, result.message) == ("reverted", f"reverted the series a.patch, b.patch, c.patch in {repo}")
    assert _snapshot(repo) == before
    assert (repo / "Dockerfile").stat().st_mode & 0o777 == 0o600
    assert git(repo, "status", "--porcelain") == "M other.txt"
    assert revert_series(repo, three).action == "no-op"


def test_a_second_patch_that_conflicts_writes_nothing_and_is_named_with_its_hunk(
    make_repo: MakeRepo, series: tuple[Patch, Patch]
) -> None:
    drifted = UPSTREAM.replace(b"line 22\n", b"line 22 changed upstream\n")
    repo = make_repo({"Dockerfile": drifted})
    before = _snapshot(repo)
    with pytest.raises(SeriesConflict, match=r"conflict: b\.patch \(2 of 2\): Dockerfile hunk #2 .*line 22") as raised:
        apply_series(repo, series)
    report = raised.value.report
    assert report.state == State.CONFLICT
    assert [r.state for r in report.reports] == [State.APPLIES, State.CONFLICT]
    assert [h.status for h in report.reports[1].hunks] == ["exact", "conflict"]
    assert report.reports[1].hunks[1].mismatch_line == 22
    assert _snapshot(repo) == before, "the first patch, which applies, was not written either"
    assert not _journal(repo).exists()


def test_the_patches_after_a_conflict_are_not_checked(
    make_repo: MakeRepo, tmp_path: Path, series: tuple[Patch, Patch]
) -> None:
    drifted = UPSTREAM.replace(b"line 22\n", b"line 22 changed upstream\n")
    repo = make_repo({"Dockerfile": drifted, "Dockerfile.debug": UPSTREAM})
    report = series_status(repo, (*series, _load(tmp_path, "c.patch", C)))
    assert [r.state for r in report.reports] == [State.APPLIES, State.CONFLICT, State.NOT_CHECKED]
    assert report.reports[2].hunks == ()
    assert "b.patch (2 of 3) before it does not apply" in report.reports[2].reason


def test_a_partly_applied_series_is_reported_and_refused_both_ways(
    make_repo: MakeRepo, series: tuple[Patch, Patch]
) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM})
    apply(repo, series[0])
    report = series_status(repo, series)
    assert report.state == State.PARTLY_APPLIED
    assert [r.state for r in report.reports] == [State.APPLIED, State.APPLIES]
    assert "a.patch (1 of 2) applied, b.patch (2 of 2) not" in report.reason
    before = _snapshot(repo)
    for change in (apply_series, revert_series):
        with pytest.raises(SeriesConflict, match=r"partly-applied: a\.patch \(1 of 2\) applied, b\.patch"):
            change(repo, series)
        assert _snapshot(repo) == before


def test_a_patch_applied_out_of_order_is_a_conflict_saying_so(make_repo: MakeRepo, tmp_path: Path) -> None:
    a = _load(tmp_path, "a.patch", A)
    c = _load(tmp_path, "c.patch", C)
    repo = make_repo({"Dockerfile": UPSTREAM, "Dockerfile.debug": UPSTREAM})
    apply(repo, c)
    report = series_status(repo, (a, c))
    assert report.state == State.CONFLICT
    assert [r.state for r in report.reports] == [State.APPLIES, State.APPLIED]
    assert (
        report.reason == "c.patch (2 of 2) is applied, but a.patch (1 of 2) before it is not: a series applies in order"
    )


def test_a_patch_upstream_already_has_is_upstreamed_and_refused(
    make_repo: MakeRepo, series: tuple[Patch, Patch]
) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM.replace(b"line 4\n", b"line 4 patched\n")})
    report = series_status(repo, series)
    assert report.state == State.UPSTREAMED
    assert [r.state for r in report.reports] == [State.UPSTREAMED, State.APPLIES]
    assert report.reason.startswith("a.patch (1 of 2): the committed upstream file already has the change")
    with pytest.raises(SeriesConflict, match=r"upstreamed: a\.patch \(1 of 2\)"):
        apply_series(repo, series)


# The trap's pre-image is at line 10, but its header says line 3, where its post-image already is: it applies (at
# an offset) and reverse-checks, yet reversing it would undo lines 3-5, not the lines it changed.
TRAP_FILE = b"x1\nx2\na\nNEW\nc\nx3\nx4\nx5\nx6\na\nOLD\nc\nj\nk\nl\n"
TRAP = b"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -3,3 +3,3 @@\n a\n-OLD\n+NEW\n c\n"
AFTER_TRAP = b"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -13,3 +13,3 @@\n j\n-k\n+k patched\n l\n"


def test_apply_refuses_a_series_that_reversed_would_not_give_back_the_files(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo({"Dockerfile": TRAP_FILE})
    patches = (_load(tmp_path, "trap.patch", TRAP), _load(tmp_path, "after.patch", AFTER_TRAP))
    assert series_status(repo, patches).state == State.APPLIES
    with pytest.raises(SeriesConflict, match=r"does not reverse-check \(reversing it, .*does not give back the files"):
        apply_series(repo, patches)
    assert (repo / "Dockerfile").read_bytes() == TRAP_FILE


def test_one_patch_is_held_to_the_same_reverse_check(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo({"Dockerfile": TRAP_FILE})
    with pytest.raises(patch_apply.PatchConflict, match="its result does not reverse-check; tree left unchanged"):
        apply(repo, _load(tmp_path, "trap.patch", TRAP))
    assert (repo / "Dockerfile").read_bytes() == TRAP_FILE


def test_a_series_of_one_is_the_patch_itself(make_repo: MakeRepo, series: tuple[Patch, Patch]) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM.replace(b"line 22\n", b"line 22 changed upstream\n")})
    one = series_status(repo, series[1:])
    assert (one.state, one.reason, one.reports) == (
        State.CONFLICT,
        status(repo, series[1]).reason,
        (status(repo, series[1]),),
    )


def test_a_failed_write_of_a_series_rolls_back_every_file(
    make_repo: MakeRepo, tmp_path: Path, series: tuple[Patch, Patch], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo({"Dockerfile": UPSTREAM, "Dockerfile.debug": UPSTREAM})
    three = (*series, _load(tmp_path, "c.patch", C))
    before = _snapshot(repo)
    calls = disk_full_at_the_second_write(monkeypatch)
    with pytest.raises(BadInput, match=r"Dockerfile\.debug: No space left on device; nothing was changed"):
        apply_series(repo, three)
    assert calls == ["Dockerfile", "Dockerfile.debug", "Dockerfile"], "one write per file, then the first undone"
    assert _snapshot(repo) == before
    assert not _journal(repo).exists()


# -- the property: any series of edits, applied then reverted, gives back the files --------------------------------


def _diff(before: list[bytes], after: list[bytes]) -> bytes:
    lines = difflib.unified_diff(
        [line.decode() for line in before], [line.decode() for line in after], "a/Dockerfile", "b/Dockerfile"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines).encode()


@st.composite
def _edited_series(draw: st.DrawFn) -> tuple[bytes, list[bytes], bytes]:
    """A file of distinct lines and 1-3 patches, each made on the lines the ones before it leave: it replaces some
    lines (those of an earlier patch too) and may insert one. Every new line is new text, so no patch's pre-image
    comes back later and each tree tells the patches apart."""
    count = draw(st.integers(min_value=8, max_value=40))
    lines = [b"upstream %d\n" % n for n in range(count)]
    original = b"".join(lines)
    patches = []
    for number in range(draw(st.integers(min_value=1, max_value=3))):
        edited = list(lines)
        replaced = draw(st.sets(st.integers(min_value=0, max_value=len(lines) - 1), min_size=1, max_size=3))
        for index in replaced:
            edited[index] = b"patch %d replaced %d\n" % (number, index)
        if draw(st.booleans()):
            edited.insert(draw(st.integers(min_value=0, max_value=len(edited))), b"patch %d inserted\n" % number)
        patches.append(_diff(lines, edited))
        lines = edited
    return original, patches, b"".join(lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_edited_series())
def test_any_series_applied_then_reverted_gives_back_the_files(case: tuple[bytes, list[bytes], bytes]) -> None:
    original, datas, patched = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tree, journals = root / "tree", root / "journals"
        tree.mkdir()
        (tree / "Dockerfile").write_bytes(original)
        patches = tuple(_load(root, f"{n}.patch", data) for n, data in enumerate(datas))
        assert series_status(tree, patches, journals=journals).state == State.APPLIES
        assert apply_series(tree, patches, journals=journals).action == "applied"
        assert (tree / "Dockerfile").read_bytes() == patched
        assert series_status(tree, patches, journals=journals).state == State.APPLIED
        assert apply_series(tree, patches, journals=journals).action == "no-op"
        assert revert_series(tree, patches, journals=journals).action == "reverted"
        assert (tree / "Dockerfile").read_bytes() == original
        assert sorted(p.name for p in tree.iterdir()) == ["Dockerfile"]
