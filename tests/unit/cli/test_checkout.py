"""status, apply and revert of a series in a superproject, as users run them: exit codes, the JSON, the JUnit and the
annotations naming each patch, and a crash in the middle of a series' apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from harness.cli.main import main
from harness.files import TEMP_SUFFIX
from harness.patch.journal import JOURNAL
from tests.support import MakeRepo, git
from tests.support.crash import killed_at_rename
from tests.support.numbered import AFTER_SECOND, DEBUG, DEBUG_PATCHED, FIRST, SECOND, UPSTREAM
from tests.support.superproject import PATCH, SUBMODULE, make_superproject, use_series

A = FIRST
# Made on the tree the first patch leaves: its first hunk does not fit the pristine Dockerfile.
B = SECOND + DEBUG
DOCKERFILE = AFTER_SECOND
PATCHES = Path(PATCH).parent


@pytest.fixture
def upstream(make_repo: MakeRepo) -> Path:
    repo = make_repo({"Dockerfile": UPSTREAM, "Dockerfile.debug": UPSTREAM}, name="upstream")
    git(repo, "tag", "v1.0.0")
    return repo


@pytest.fixture
def chat(upstream: Path, tmp_path: Path) -> Path:
    """The users' superproject with the series a.patch, b.patch for its submodule."""
    root = make_superproject(tmp_path / "chat", upstream=upstream, tag="v1.0.0", patch=A)
    use_series(root, {"a.patch": A, "b.patch": B})
    return root


def _files(root: Path) -> tuple[bytes, bytes]:
    return (root / SUBMODULE / "Dockerfile").read_bytes(), (root / SUBMODULE / "Dockerfile.debug").read_bytes()


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int) -> dict[str, Any]:
    assert main([*argv, "--json"]) == code
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def _states(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(Path(entry["patch"]).name, entry["state"]) for entry in document["patches"]]


def test_a_series_is_applied_once_and_reverted_byte_for_byte(chat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--superproject", str(chat)]
    before = _json(capsys, ["status", *where], 0)
    assert (before["state"], before["action"]) == ("applies", None)
    assert _states(before) == [("a.patch", "applies"), ("b.patch", "applies")]
    assert "patch" not in before and "hunks" not in before, "a series has no one patch to name there"
    assert [h["status"] for h in before["patches"][1]["hunks"]] == ["exact", "exact", "exact"]

    applied = _json(capsys, ["apply", *where], 0)
    assert applied["action"] == "applied"
    assert _files(chat) == (DOCKERFILE, DEBUG_PATCHED)
    again = _json(capsys, ["apply", *where], 0)
    assert again["action"] == "no-op"
    assert again["results"][0]["reason"] == "the series a.patch, b.patch is already applied"
    after = _json(capsys, ["status", *where], 0)
    assert (after["state"], _states(after)) == ("applied", [("a.patch", "applied"), ("b.patch", "applied")])

    reverted = _json(capsys, ["revert", *where], 0)
    assert reverted["action"] == "reverted"
    assert _files(chat) == (UPSTREAM, UPSTREAM)
    assert git(chat / SUBMODULE, "status", "--porcelain") == ""


def test_a_series_file_is_applied_and_reverted_in_its_order(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_superproject(tmp_path / "chat", upstream=upstream, tag="v1.0.0", patch=A)
    use_series(root, {"a.patch": A, "b.patch": B}, series_file=True)
    assert _json(capsys, ["apply", "--superproject", str(root)], 0)["action"] == "applied"
    assert _files(root) == (DOCKERFILE, DEBUG_PATCHED)
    reverted = _json(capsys, ["revert", "--superproject", str(root)], 0)
    assert reverted["results"][0]["reason"].startswith("reverted the series a.patch, b.patch in ")
    assert _files(root) == (UPSTREAM, UPSTREAM)


def test_a_partly_applied_series_fails_status_and_apply_names_each_patch(
    chat: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--superproject", str(chat)]
    assert main(["apply", *where, "--patch", str(chat / PATCHES / "a.patch")]) == 0, "--patch: that patch alone"
    capsys.readouterr()
    files = _files(chat)
    status = _json(capsys, ["status", *where], 1)
    assert status["state"] == "partly-applied"
    assert _states(status) == [("a.patch", "applied"), ("b.patch", "applies")]
    assert status["results"][0]["status"] == "failed"
    refused = _json(capsys, ["apply", *where], 1)
    assert refused["action"] == "refused"
    assert "partly-applied: a.patch (1 of 2) applied, b.patch (2 of 2) not" in refused["results"][0]["reason"]
    assert _files(chat) == files


def test_a_conflicting_second_patch_is_named_in_json_junit_and_annotations(
    chat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drifted = UPSTREAM.replace(b"line 22\n", b"line 22 changed upstream\n")
    (chat / SUBMODULE / "Dockerfile").write_bytes(drifted)
    report, junit = tmp_path / "apply.json", tmp_path / "apply.xml"
    argv = ["apply", "--superproject", str(chat), "--output", str(report), "--junit", str(junit)]
    assert main([*argv, "--github-annotations"]) == 1
    assert _files(chat) == (drifted, UPSTREAM), "nothing written: not even the first patch, which applies"
    b_patch = str(chat / PATCHES / "b.patch")
    at = B.split(b"\n").index(b"@@ -20,3 +20,4 @@") + 1

    document = json.loads(report.read_text())
    assert (document["state"], document["action"]) == ("conflict", "refused")
    assert _states(document) == [("a.patch", "applies"), ("b.patch", "conflict")]
    assert [h["status"] for h in document["patches"][1]["hunks"]] == ["exact", "conflict", "exact"]
    assert "conflict: b.patch (2 of 2): Dockerfile hunk #2" in document["results"][0]["reason"]

    verdicts = {
        case.get("name"): (case.find("failure") is not None, case.get("file"), case.get("line"))
        for case in ElementTree.parse(junit).getroot().iter("testcase")
    }
    assert verdicts == {
        "apply": (True, None, None),
        "a.patch (1 of 2)": (False, None, None),
        "a.patch (1 of 2) Dockerfile #1": (False, None, None),
        "b.patch (2 of 2)": (True, None, None),
        "b.patch (2 of 2) Dockerfile #1": (False, None, None),
        "b.patch (2 of 2) Dockerfile #2": (True, b_patch, str(at)),
        "b.patch (2 of 2) Dockerfile.debug #1": (False, None, None),
    }

    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::error")]
    assert len(annotations) == 1, "one conflict, one annotation"
    title = "apply.repo b.patch (2 of 2) Dockerfile #2"
    assert annotations[0].startswith(f"::error file={b_patch},line={at},title={title}::")


def test_one_patch_in_a_superproject_is_reported_as_it_always_was(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_superproject(tmp_path / "chat", upstream=upstream, tag="v1.0.0", patch=A)
    junit = tmp_path / "status.xml"
    document = _json(capsys, ["status", "--superproject", str(root), "--junit", str(junit)], 0)
    assert list(document)[-6:] == ["checkout", "patch", "state", "reason", "action", "hunks"]
    assert (document["patch"], document["state"]) == (str(root / PATCH), "applies")
    assert [case.get("name") for case in ElementTree.parse(junit).getroot().iter("testcase")] == ["status"]


def test_a_crash_in_the_middle_of_a_series_is_finished_by_the_next_apply(
    chat: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submodule = chat / SUBMODULE
    journal = submodule / git(submodule, "rev-parse", "--git-path", JOURNAL)
    killed_at_rename("Dockerfile.debug", "apply", "--superproject", str(chat))
    assert _files(chat) == (DOCKERFILE, UPSTREAM), "killed between the two files of one change"
    recorded = json.loads(journal.read_bytes())
    assert recorded["patch"] == ["a.patch", "b.patch"]
    assert [entry["name"] for entry in recorded["files"]] == ["Dockerfile", "Dockerfile.debug"]

    assert main(["status", "--superproject", str(chat)]) == 2
    assert "the apply of a.patch, b.patch in" in capsys.readouterr().err
    assert main(["apply", "--superproject", str(chat)]) == 0
    assert "finished the apply of a.patch, b.patch" in capsys.readouterr().err
    assert _files(chat) == (DOCKERFILE, DEBUG_PATCHED)
    assert not journal.exists()
    assert [p.name for p in submodule.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []
    assert _json(capsys, ["status", "--superproject", str(chat)], 0)["state"] == "applied"
