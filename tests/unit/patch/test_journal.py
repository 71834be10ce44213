"""An apply or a revert is all-or-nothing even when the process is killed between two renames.

The crash is real (tests.support.crash): a child process runs the console entry point and
is killed with SIGKILL the moment it is about to rename a chosen file into place. A second
run must recover: finish the interrupted change from the journal, and remove the temporary
files it left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import BadInput
from harness.files import TEMP_SUFFIX, locked_tree
from harness.patch import apply as patch_apply
from harness.patch.journal import JOURNAL, Journal, JournalEntry
from harness.patch.patchfile import Patch
from tests.support import MakeRepo, git
from tests.support.crash import killed_at_rename
from tests.support.numbered import UPSTREAM, disk_full_at_the_second_write

PATCHED = UPSTREAM.replace(b"line 4\n", b"line 4 patched\n")
HUNK = b"@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line 4 patched\n line 5\n"
FILES = ("Dockerfile", "Dockerfile.debug")


@pytest.fixture
def two_file_patch(tmp_path: Path) -> Path:
    path = tmp_path / "two.patch"
    path.write_bytes(b"".join(b"--- a/%s\n+++ b/%s\n" % (n.encode(), n.encode()) + HUNK for n in FILES))
    return path


def _contents(tree: Path) -> tuple[bytes, ...]:
    return tuple((tree / name).read_bytes() for name in FILES)


def _temps(tree: Path) -> list[str]:
    return sorted(p.name for p in tree.iterdir() if p.name.endswith(TEMP_SUFFIX))


def _journal(repo: Path) -> Path:
    return repo / git(repo, "rev-parse", "--git-path", JOURNAL)


def _crash_mid_apply(repo: Path, patch: Path) -> None:
    """Kill an apply after the first file is renamed into place and before the second is."""
    killed_at_rename("Dockerfile.debug", "apply", "--checkout", str(repo), "--patch", str(patch))
    assert _contents(repo) == (PATCHED, UPSTREAM), "the crash left the patch half-applied"
    temps = _temps(repo)
    assert temps and all(name.startswith(".Dockerfile.debug.") for name in temps), temps
    assert _journal(repo).is_file()


def test_a_crash_between_renames_is_finished_by_the_next_apply(
    make_repo: MakeRepo, two_file_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    _crash_mid_apply(repo, two_file_patch)
    assert main(["apply", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 0
    assert "finished the apply of two.patch" in capsys.readouterr().err
    assert _contents(repo) == (PATCHED, PATCHED)
    assert _temps(repo) == []
    assert not _journal(repo).exists()
    assert main(["status", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 0
    assert "state: applied" in capsys.readouterr().out


def test_a_crash_between_renames_is_finished_then_undone_by_revert(make_repo: MakeRepo, two_file_patch: Path) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    _crash_mid_apply(repo, two_file_patch)
    assert main(["revert", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 0
    assert _contents(repo) == (UPSTREAM, UPSTREAM)
    assert (_temps(repo), _journal(repo).exists()) == ([], False)
    assert git(repo, "status", "--porcelain") == ""


def test_status_after_a_crash_says_so_and_writes_nothing(
    make_repo: MakeRepo, two_file_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    _crash_mid_apply(repo, two_file_patch)
    temps = _temps(repo)
    assert main(["status", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "the apply of two.patch" in err[0] and "was interrupted" in err[0]
    assert (_contents(repo), _temps(repo), _journal(repo).is_file()) == ((PATCHED, UPSTREAM), temps, True)


def test_a_crash_in_a_revert_is_finished_by_the_next_run(make_repo: MakeRepo, two_file_patch: Path) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    assert main(["apply", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 0
    killed_at_rename("Dockerfile.debug", "revert", "--checkout", str(repo), "--patch", str(two_file_patch))
    assert _contents(repo) == (UPSTREAM, PATCHED)
    assert main(["revert", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 0, "finished, then a no-op"
    assert _contents(repo) == (UPSTREAM, UPSTREAM)
    assert _temps(repo) == []


def test_a_crash_before_the_journal_is_in_place_changed_nothing(make_repo: MakeRepo, two_file_patch: Path) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    killed_at_rename(JOURNAL, "apply", "--checkout", str(repo), "--patch", str(two_file_patch))
    git_dir = _journal(repo).parent
    assert _contents(repo) == (UPSTREAM, UPSTREAM)
    assert not _journal(repo).exists()
    assert [p.name for p in git_dir.iterdir() if p.name.endswith(TEMP_SUFFIX)] != [], "the journal's own temp file"
    assert main(["apply", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 0
    assert _contents(repo) == (PATCHED, PATCHED)
    assert [p.name for p in git_dir.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []


def test_a_file_changed_after_the_crash_is_not_overwritten(
    make_repo: MakeRepo, two_file_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    _crash_mid_apply(repo, two_file_patch)
    (repo / "Dockerfile.debug").write_bytes(b"edited by hand\n")
    assert main(["apply", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "Dockerfile.debug changed after the apply of two.patch was interrupted" in err[0]
    assert _contents(repo) == (PATCHED, b"edited by hand\n")
    assert _journal(repo).is_file(), "kept: it holds both versions of the file"


def test_a_directory_outside_git_keeps_its_journal_in_the_state_directory(
    tmp_path: Path, two_file_patch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the checkout, where nothing an upstream ships can be: the XDG state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    tree = tmp_path / "plain"
    tree.mkdir()
    for name in FILES:
        (tree / name).write_bytes(UPSTREAM)
    killed_at_rename("Dockerfile.debug", "apply", "--checkout", str(tree), "--patch", str(two_file_patch))
    assert _contents(tree) == (PATCHED, UPSTREAM)
    assert sorted(p.name for p in tree.iterdir() if not p.name.endswith(TEMP_SUFFIX)) == sorted(FILES)
    [journal] = (tmp_path / "state" / "mas-harness" / "journals").iterdir()
    assert journal.name.endswith(JOURNAL)
    assert main(["apply", "--checkout", str(tree), "--patch", str(two_file_patch)]) == 0
    assert _contents(tree) == (PATCHED, PATCHED)
    assert sorted(p.name for p in tree.iterdir()) == sorted(FILES)
    assert not journal.exists()


def test_a_journal_shipped_inside_a_checkout_is_never_read(
    tmp_path: Path, two_file_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release exported without git can carry any file, `.mas-harness-journal` too: it is not the journal."""
    tree = tmp_path / "plain"
    tree.mkdir()
    for name in FILES:
        (tree / name).write_bytes(UPSTREAM)
    (tree / "victim").write_bytes(b"the user's\n")
    planted = Journal(
        action="apply",
        patches=("two.patch",),
        entries=(JournalEntry(name="victim", before=b"the user's\n", after=b"upstream's\n"),),
    )
    (tree / f".{JOURNAL}").write_bytes(planted.to_bytes())
    assert main(["apply", "--checkout", str(tree), "--patch", str(two_file_patch)]) == 0
    assert _contents(tree) == (PATCHED, PATCHED)
    assert (tree / "victim").read_bytes() == b"the user's\n"


def test_a_journal_naming_a_file_the_patch_does_not_change_is_refused(
    make_repo: MakeRepo, two_file_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({**dict.fromkeys(FILES, UPSTREAM), "victim": b"the user's\n"})
    stray = JournalEntry(name="victim", before=b"the user's\n", after=b"someone else's\n")
    _journal(repo).write_bytes(Journal(action="apply", patches=("two.patch",), entries=(stray,)).to_bytes())
    assert main(["apply", "--checkout", str(repo), "--patch", str(two_file_patch)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names victim, which the patch does not change" in err[0], err
    assert (repo / "victim").read_bytes() == b"the user's\n"
    assert _contents(repo) == (UPSTREAM, UPSTREAM)


def test_a_checkout_outside_git_without_a_journal_directory_is_refused(tmp_path: Path, two_file_patch: Path) -> None:
    tree = tmp_path / "plain"
    tree.mkdir()
    for name in FILES:
        (tree / name).write_bytes(UPSTREAM)
    with pytest.raises(BadInput, match="no directory was given for its journal"):
        patch_apply.apply(tree, Patch.load(two_file_patch))
    assert _contents(tree) == (UPSTREAM, UPSTREAM)


def test_a_corrupt_journal_is_bad_input_naming_it(make_repo: MakeRepo, two_file_patch: Path) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    _journal(repo).write_text("{not json")
    with pytest.raises(BadInput, match=f"{JOURNAL} is not a journal this harness can read"):
        patch_apply.apply(repo, Patch.load(two_file_patch))
    assert _contents(repo) == (UPSTREAM, UPSTREAM)


def test_a_failed_write_rolls_back_and_removes_the_journal(
    make_repo: MakeRepo, two_file_patch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    calls = disk_full_at_the_second_write(monkeypatch)
    with pytest.raises(BadInput, match=r"Dockerfile\.debug: No space left on device; nothing was changed"):
        patch_apply.apply(repo, Patch.load(two_file_patch))
    assert calls == ["Dockerfile", "Dockerfile.debug", "Dockerfile"], "the first file was written back"
    assert _contents(repo) == (UPSTREAM, UPSTREAM)
    assert (_temps(repo), _journal(repo).exists()) == ([], False)


def test_two_runs_never_write_one_checkout_at_once(make_repo: MakeRepo, two_file_patch: Path) -> None:
    repo = make_repo(dict.fromkeys(FILES, UPSTREAM))
    with locked_tree(repo), pytest.raises(BadInput, match="another mas-harness run is writing"):
        patch_apply.apply(repo, Patch.load(two_file_patch))
    assert _contents(repo) == (UPSTREAM, UPSTREAM)
    assert patch_apply.apply(repo, Patch.load(two_file_patch)).action == "applied", "the lock went with its holder"


def test_a_journal_of_one_patch_names_it_by_a_string_as_before_series(tmp_path: Path) -> None:
    """The format older harnesses wrote and read: `patch` is the file name."""
    entry = JournalEntry(name="Dockerfile", before=UPSTREAM, after=PATCHED)
    data = Journal(action="apply", patches=("two.patch",), entries=(entry,)).to_bytes()
    assert json.loads(data)["patch"] == "two.patch"
    assert Journal.from_bytes(data, where=tmp_path / JOURNAL).patches == ("two.patch",)


def test_a_journal_of_a_series_names_every_patch_in_order(tmp_path: Path) -> None:
    entry = JournalEntry(name="Dockerfile", before=UPSTREAM, after=PATCHED)
    journal = Journal(action="revert", patches=("b.patch", "a.patch"), entries=(entry,))
    data = journal.to_bytes()
    assert json.loads(data)["patch"] == ["b.patch", "a.patch"]
    read = Journal.from_bytes(data, where=tmp_path / JOURNAL)
    assert (read, read.patch) == (journal, "b.patch, a.patch")


def test_a_journal_naming_no_patch_is_unreadable(tmp_path: Path) -> None:
    data = json.loads(Journal(action="apply", patches=("a.patch",), entries=()).to_bytes())
    with pytest.raises(BadInput, match=r"not a journal this harness can read \(it names no patch\)"):
        Journal.from_bytes(json.dumps({**data, "patch": []}).encode(), where=tmp_path / JOURNAL)
